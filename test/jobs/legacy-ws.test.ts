// The contract's browser WebSocket: /ws/v1/render/{job_id} streams RenderProgress as JSON.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from '../support/app.ts';
import { FREE_RENDER, submitRender } from '../support/jobs.ts';
import { until } from '../support/poll.ts';

let t: TestApp;
let owner: { id: string; token: string };
let jobId: string;

function open(path: string, headers: Record<string, string> = {}) {
  const socket = new WebSocket(`${t.url.replace('http', 'ws')}${path}`, { headers });
  const messages: Record<string, unknown>[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data))));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  return { socket, messages, closed };
}

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  owner = { id: randomUUID(), token: '' };
  owner.token = await t.token(owner.id);
  jobId = (await submitRender(t, owner.token, { ...FREE_RENDER, duration_sec: 2 })).id;
});
afterAll(() => t.close());

describe('/ws/v1/render/{job_id}', () => {
  it('sends the current progress, then every change, in the REST shape', async () => {
    const client = open(`/ws/v1/render/${jobId}?token=${owner.token}`);
    await until('the first message', () => client.messages.length >= 1);
    expect(client.messages[0]).toEqual({
      job_id: jobId,
      step: 'Queued',
      progress: 0,
      current_frame: 0,
      total_frames: 60,
      eta_seconds: null,
      preview_b64: null,
      active_nodes: 0,
      message: 'Job queued',
    });
    await t.app.services.jobs.move(jobId, { to: 'Preparing', log: { level: 'info', message: 'Preparing' } });
    const cancel = await t.rest('POST', `/v1/renders/${jobId}/cancel`, { token: owner.token, body: {} });
    expect(cancel.status).toBe(200);
    await until('three messages', () => client.messages.length >= 3);
    expect(client.messages.map((message) => message.step)).toEqual(['Queued', 'Preparing', 'Cancelled']);
    client.socket.close();
    await client.closed;
  });

  it('takes the token from the Authorization header too', async () => {
    const client = open(`/ws/v1/render/${jobId}`, { authorization: `Bearer ${owner.token}` });
    await until('the first message', () => client.messages.length >= 1);
    expect(client.messages[0]).toMatchObject({ job_id: jobId, step: 'Cancelled' });
    client.socket.close();
  });

  it("closes with 4401 without a valid token and 4404 for another user's or an unknown job", async () => {
    expect((await open(`/ws/v1/render/${jobId}`).closed).code).toBe(4401);
    expect((await open(`/ws/v1/render/${jobId}?token=garbage`).closed).code).toBe(4401);
    const stranger = await t.token(randomUUID());
    expect(await open(`/ws/v1/render/${jobId}?token=${stranger}`).closed).toEqual({ code: 4404, reason: 'NOT_FOUND' });
    expect((await open(`/ws/v1/render/${randomUUID()}?token=${owner.token}`).closed).code).toBe(4404);
    expect((await open(`/ws/v1/render/not-a-uuid?token=${owner.token}`).closed).code).toBe(4400);
  });
});
