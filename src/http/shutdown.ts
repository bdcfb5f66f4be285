// The order the HTTP server's parts close in, on shutdown and when start-up fails half-way (what
// start-up opened must close again, or the process could not exit). WebSockets close first:
// Apollo's stop drains every open connection and would wait on theirs. Fastify closes last, once
// nothing is left that could still answer a request.
export type Stage = 'sockets' | 'graphql' | 'app';

const CLOSING_ORDER: readonly Stage[] = ['sockets', 'graphql', 'app'];

export interface Shutdown {
  /** Within a stage, what was opened last closes first. */
  add(stage: Stage, close: () => Promise<void>): void;
  /** Closes everything added so far; a close that fails is reported and the others still run. */
  close(onError: (error: unknown) => void): Promise<void>;
}

export function createShutdown(): Shutdown {
  const stages = new Map<Stage, Array<() => Promise<void>>>(CLOSING_ORDER.map((stage) => [stage, []]));
  return {
    add(stage, close) {
      stages.get(stage)?.push(close);
    },
    async close(onError) {
      for (const stage of CLOSING_ORDER) {
        for (const close of [...(stages.get(stage) ?? [])].reverse()) await close().catch(onError);
      }
    },
  };
}
