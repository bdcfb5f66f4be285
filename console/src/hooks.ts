import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError, graphql, refusalOf } from './api.ts';
import { useSession } from './session.tsx';

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | undefined;
  /** Asks again now; calls while a request runs are folded into one more after it. */
  refetch(): void;
}

/**
 * A query asked when the view opens, again every `pollMs` (what no subscription reports, such as
 * heartbeats' figures) and whenever `refetch` is called. Answers that come back out of order
 * never overwrite a newer one.
 */
export function useQuery<T>(query: string, variables: Record<string, unknown>, pollMs?: number): Loaded<T> {
  const { token, signOut } = useSession();
  const [data, setData] = useState<T>();
  const [error, setError] = useState<ApiError>();
  const key = JSON.stringify(variables);
  const state = useRef({ running: false, again: false, generation: 0 });

  const run = useCallback(() => {
    const current = state.current;
    if (current.running) {
      current.again = true;
      return;
    }
    current.running = true;
    const generation = current.generation;
    graphql<T>(token, query, JSON.parse(key))
      .then((answer) => {
        if (generation !== current.generation) return;
        setData(answer);
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
        current.running = false;
        if (current.again) {
          current.again = false;
          run();
        }
      });
  }, [token, query, key, signOut]);

  useEffect(() => {
    state.current.generation += 1;
    state.current.running = false;
    state.current.again = false;
    // The old answer stays shown until the new one comes: views are keyed by what they show, so
    // a change of variables here is the same view moving on (a later window of time, a filter).
    run();
    if (!pollMs) return;
    const timer = setInterval(run, pollMs);
    return () => clearInterval(timer);
  }, [run, pollMs]);

  return { data, error, refetch: run };
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
