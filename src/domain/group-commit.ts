// Group commit: many small writes that arrive together are written in one statement, and each
// caller is answered once the batch holding its write has committed, so an answer still means
// "stored". Agents' heartbeats and frame reports go through here: thousands of nodes each sending
// a one-row write would otherwise cost a round trip, a transaction and a WAL flush per request.
//
// Batches form by themselves: writes that arrive while earlier batches are in flight wait for a
// free slot and then leave together. A lone write on a quiet service leaves at once, so batching
// adds no waiting of its own; under load a batch holds whatever arrived during the last write.

export interface GroupCommitOptions<I, O> {
  /**
   * Writes the batch and answers for each item, in order: its result, or an Error that only
   * that item's caller receives. A thrown error fails the whole batch.
   */
  write(items: I[]): Promise<Array<O | Error>>;
  /** Items with the same key never share a batch (a later one waits for the next batch). */
  keyOf?: (item: I) => string;
  maxBatch?: number;
  /** Batches written at the same time; each holds one database connection while it runs. */
  maxInFlight?: number;
}

export interface GroupCommit<I, O> {
  submit(item: I): Promise<O>;
}

interface Waiting<I, O> {
  item: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

export function groupCommit<I, O>(options: GroupCommitOptions<I, O>): GroupCommit<I, O> {
  const maxBatch = options.maxBatch ?? 500;
  const maxInFlight = options.maxInFlight ?? 2;
  let queue: Waiting<I, O>[] = [];
  let inFlight = 0;
  let flushScheduled = false;

  function take(): Waiting<I, O>[] {
    if (!options.keyOf && queue.length <= maxBatch) {
      const batch = queue;
      queue = [];
      return batch;
    }
    const batch: Waiting<I, O>[] = [];
    const rest: Waiting<I, O>[] = [];
    const keys = new Set<string>();
    for (const waiting of queue) {
      const key = options.keyOf?.(waiting.item);
      if (batch.length >= maxBatch || (key !== undefined && keys.has(key))) {
        rest.push(waiting);
        continue;
      }
      if (key !== undefined) keys.add(key);
      batch.push(waiting);
    }
    queue = rest;
    return batch;
  }

  async function run(batch: Waiting<I, O>[]): Promise<void> {
    try {
      const results = await options.write(batch.map((waiting) => waiting.item));
      batch.forEach((waiting, index) => {
        const result = results[index];
        if (result instanceof Error) waiting.reject(result);
        else waiting.resolve(result as O);
      });
    } catch (error) {
      for (const waiting of batch) waiting.reject(error);
    }
  }

  function flush(): void {
    flushScheduled = false;
    while (inFlight < maxInFlight && queue.length > 0) {
      const batch = take();
      inFlight++;
      void run(batch).finally(() => {
        inFlight--;
        flush();
      });
    }
  }

  return {
    submit(item) {
      return new Promise<O>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        // Requests parsed in the same turn of the event loop join the same batch.
        if (!flushScheduled && inFlight < maxInFlight) {
          flushScheduled = true;
          setImmediate(flush);
        }
      });
    },
  };
}
