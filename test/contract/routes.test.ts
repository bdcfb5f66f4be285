// Every operation of the project's copy of the contract is served: a route for each method and
// path, with the contract's parameter names.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listOperations, loadContract } from '../../rest-compat/contract.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
});
afterAll(() => t.close());

// The folder store's download route exists only without S3; test/embedded.test.ts covers it.
const ONLY_EMBEDDED = new Set(['GET /objects/{key}']);

describe('the REST contract', () => {
  it('has a route for every operation', () => {
    const operations = listOperations(loadContract()).filter((o) => !ONLY_EMBEDDED.has(`${o.method} ${o.path}`));
    expect(operations.length).toBeGreaterThanOrEqual(32);
    const missing = operations.filter(
      (operation) =>
        !t.app.http.app.hasRoute({
          method: operation.method as 'GET',
          url: `/v1${operation.path.replace(/\{([a-z_]+)\}/g, ':$1')}`,
        }),
    );
    expect(missing.map((operation) => `${operation.method} ${operation.path}`)).toEqual([]);
    // The check tells a served route from one that is not.
    expect(t.app.http.app.hasRoute({ method: 'DELETE', url: '/v1/renders/:job_id' })).toBe(false);
  });
});
