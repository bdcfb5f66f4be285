// A client of its own process, run by limits-body.test.ts: POSTs JSON bodies over the service's
// limit with Node's fetch, some one after another and some at once, and prints how each request
// ended. In the test's own process the server would read each body before the client got to send
// the next bytes, so a connection closed too early would never show.
//
// Arguments: the URL to POST to, a bearer token, the number of requests sent one after another,
// the number sent at once, and the size of each body in bytes.
const [url = '', token = '', sequential = '0', concurrent = '0', size = '0'] = process.argv.slice(2);
const body = JSON.stringify({ saved_project_id: crypto.randomUUID(), name: 'x'.repeat(Number(size)) });

type Outcome = { status: number; body: unknown } | { failure: string };

async function post(): Promise<Outcome> {
  try {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body });
    return { status: response.status, body: await response.json() };
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return { failure: cause?.code ?? cause?.message ?? String(error) };
  }
}

const outcomes: Outcome[] = [];
for (let n = 0; n < Number(sequential); n++) outcomes.push(await post());
outcomes.push(...(await Promise.all(Array.from({ length: Number(concurrent) }, post))));
process.stdout.write(JSON.stringify(outcomes));
