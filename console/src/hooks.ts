import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, graphql, refusalOf } from './api.ts';
import { useSession } from './session.tsx';

export interface Loaded<T> {
  data: T | undefined;
  /** When the answer shown was asked for (performance.now()), 0 before the first. */
  askedAt: number;
  error: ApiError | undefined;
  /** Asks again now; calls while a request runs are folded into one more after it. */
  refetch(): void;
}

/**
 * A query asked when the view opens, whenever `refetch` is called, and again `pollMs` after each
 * answer (what no subscription reports, such as heartbeats' figures) — or ten times as long as the
 * answer took, if longer, so that consoles on a big fleet never take more than a tenth of the
 * service's time. Answers that come back out of order never overwrite a newer one.
 */
export function useQuery<T>(query: string, variables: Record<string, unknown>, pollMs?: number): Loaded<T> {
  const { token, signOut } = useSession();
  const [answer, setAnswer] = useState<{ data: T; askedAt: number }>();
  const [error, setError] = useState<ApiError>();
  const key = JSON.stringify(variables);
  const state = useRef({ running: false, again: false, generation: 0, timer: undefined as ReturnType<typeof setTimeout> | undefined });

  const run = useCallback(() => {
    const current = state.current;
    if (current.running) {
      current.again = true;
      return;
    }
    current.running = true;
    clearTimeout(current.timer);
    const generation = current.generation;
    const started = performance.now();
    graphql<T>(token, query, JSON.parse(key))
      .then((data) => {
        if (generation !== current.generation) return;
        setAnswer({ data, askedAt: started });
        setError(undefined);
      })
      .catch((failure: unknown) => {
        if (generation !== current.generation) return;
        const apiError = failure instanceof ApiError ? failure : new ApiError(String(failure), 'INTERNAL');
        const refusal = refusalOf(apiError);
        if (refusal) signOut(refusal);
        else setError(apiError);
      })
      .finally(() => {
        if (generation !== current.generation) return;
        current.running = false;
        if (current.again) {
          current.again = false;
          run();
        } else if (pollMs) {
          current.timer = setTimeout(run, Math.max(pollMs, 10 * (performance.now() - started)));
        }
      });
  }, [token, query, key, signOut, pollMs]);

  useEffect(() => {
    const current = state.current;
    current.generation += 1;
    current.running = false;
    current.again = false;
    // The old answer stays shown until the new one comes: views are keyed by what they show, so
    // a change of variables here is the same view moving on (a later window of time, a filter).
    run();
    return () => {
      current.generation += 1;
      clearTimeout(current.timer);
    };
  }, [run]);

  return { data: answer?.data, askedAt: answer?.askedAt ?? 0, error, refetch: run };
}

/**
 * The rows of a polled list with the changes a subscription brought: a change stands until an
 * answer asked for after it came replaces it, so an answer already on its way when the change
 * came never takes the view back. `saw` takes a changed row.
 */
export function useChanges<R extends { id: string }>(rows: readonly R[] | undefined, askedAt: number): [R[], (row: R) => void] {
  const [changes, setChanges] = useState<ReadonlyMap<string, { row: R; at: number }>>(new Map());
  const asked = useRef(askedAt);
  asked.current = askedAt;
  const saw = useCallback(
    (row: R) =>
      setChanges((before) => {
        const after = new Map([...before].filter(([, change]) => change.at > asked.current));
        return after.set(row.id, { row, at: performance.now() });
      }),
    [],
  );
  const merged = useMemo(
    () =>
      (rows ?? []).map((row) => {
        const change = changes.get(row.id);
        return change && change.at > askedAt ? change.row : row;
      }),
    [rows, changes, askedAt],
  );
  return [merged, saw];
}
/** `action` at most once per `ms`, the last call always honoured. */
export function useThrottled(action: () => void, ms: number): () => void {
  const latest = useRef(action);
  latest.current = action;
  const timer = useRef<ReturnType<typeof setTimeout>>();
  useEffect(() => () => clearTimeout(timer.current), []);
  return useCallback(() => {
    if (timer.current !== undefined) return;
    timer.current = setTimeout(() => {
      timer.current = undefined;
      latest.current();
    }, ms);
  }, [ms]);
}
