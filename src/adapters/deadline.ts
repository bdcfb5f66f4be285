// A deadline for a call to a shared store on the request path (Redis): past it the caller goes on
// without the answer. A plain timer rather than a per-command AbortSignal, which costs more CPU
// than the command it guards at thousands of agent requests a second; the late answer, if it
// ever comes, is dropped.
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
