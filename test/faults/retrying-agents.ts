// Render node agents for fault tests: they run every command they are given and, as the agent
// protocol asks, send a report again when the service answers 503 (after Retry-After) or cannot
// be reached, each time signed anew. What they were told was accepted is what the database must hold afterwards.
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentCommand, HttpAnswer, TestApp, TestNode } from '../support/app.ts';

const MIN_RETRY_DELAY_MS = 1_000;
const GIVE_UP_AFTER_MS = 30_000;
const HEARTBEAT_EVERY_MS = 300;

export interface AgentTally {
  /** Requests sent, retries included. */
  sent: number;
  /** Requests answered 503, or with no answer at all, and sent again. */
  retried: number;
  /** Answers other than 2xx, 409 (stale lease) and 503: none are expected. */
  unexpected: { path: string; status: number; body: unknown }[];
  /** Frames the service accepted (204), per job. */
  acceptedFrames: Map<string, Set<number>>;
}

export interface RetryingFleet {
  nodes: TestNode[];
  tally: AgentTally;
  stop(): Promise<void>;
}

/** Starts one agent per node; frameDelayMs paces the frames so work spans the injected fault. */
export function startRetryingAgents(t: TestApp, nodes: TestNode[], options: { frameDelayMs: number }): RetryingFleet {
  const tally: AgentTally = { sent: 0, retried: 0, unexpected: [], acceptedFrames: new Map() };
  let running = true;

  const send = async (node: TestNode, method: string, path: string, body?: unknown): Promise<HttpAnswer> => {
    const deadline = Date.now() + GIVE_UP_AFTER_MS;
    for (;;) {
      tally.sent++;
      const answer = await t.signed(node, method, path, body).catch(() => undefined);
      if (answer && answer.status !== 503) {
        if (answer.status >= 300 && answer.status !== 409) tally.unexpected.push({ path, status: answer.status, body: answer.body });
        return answer;
      }
      if (Date.now() > deadline) throw new Error(`${method} ${path} was not accepted within ${GIVE_UP_AFTER_MS} ms`);
      tally.retried++;
      // A retry signed within the same second as the refused attempt would carry the same
      // signature, which the service refuses as a replay: wait at least a second.
      const retryAfter = Number(answer?.headers.get('retry-after') ?? 0);
      await sleep(Math.max(retryAfter * 1_000, MIN_RETRY_DELAY_MS));
    }
  };

  const run = async (node: TestNode, command: AgentCommand) => {
    const jobPath = `/v1/internal/render/jobs/${command.job_id}`;
    if (command.type === 'prepare_replica') {
      await send(node, 'POST', `${jobPath}/replica-ready`, { node_id: node.id, replica_path: `D:/replicas/${command.job_id}.aep`, lease: command.lease });
    } else if (command.type === 'render_chunk') {
      for (let frame = Number(command.start_frame); frame <= Number(command.end_frame) && running; frame++) {
        await sleep(options.frameDelayMs);
        const answer = await send(node, 'POST', `${jobPath}/frames`, {
          frame_job_id: command.frame_job_id,
          frame_number: frame,
          file_size_bytes: 1024,
          lease: command.lease,
        });
        if (answer.status === 409) return;
        if (answer.status !== 204) continue;
        const accepted = tally.acceptedFrames.get(String(command.job_id)) ?? new Set<number>();
        accepted.add(frame);
        tally.acceptedFrames.set(String(command.job_id), accepted);
      }
      if (running) await send(node, 'POST', `${jobPath}/chunks/${command.frame_job_id}/complete`, { lease: command.lease });
    } else if (command.type === 'encode') {
      const upload = await send(node, 'PUT', `${jobPath}/outputs/mp4?lease=${command.lease}`, Buffer.from(`video of ${command.job_id}`));
      if (upload.status !== 204) return;
      await send(node, 'POST', `${jobPath}/encoded`, { lease: command.lease, width: 1280, height: 720, duration_sec: 1, formats: ['mp4'] });
    }
  };

  const agent = async (node: TestNode) => {
    const done = new Set<string>();
    let beat = 0;
    while (running) {
      const answer = await send(node, 'POST', `/v1/internal/nodes/${node.id}/heartbeat`, {
        recorded_at: new Date(Date.now() + beat++).toISOString(),
      }).catch(() => undefined);
      const commands = (answer?.status === 200 ? answer.body.pending_commands : []) as AgentCommand[];
      for (const command of commands) {
        await send(node, 'POST', `/v1/internal/nodes/${node.id}/commands/${command.command_id}/ack`);
        // Delivered until acknowledged: a command seen again is not run twice.
        if (done.has(command.command_id)) continue;
        done.add(command.command_id);
        await run(node, command);
      }
      if (commands.length === 0) await sleep(HEARTBEAT_EVERY_MS);
    }
  };

  const agents = nodes.map((node) => agent(node));
  return {
    nodes,
    tally,
    async stop() {
      running = false;
      await Promise.all(agents);
    },
  };
}
