import { useEffect, useState } from 'react';
import { ApiError, graphql, outcome } from '../api.ts';
import {
  ACTIVATE_NODE,
  CLOSE_AE,
  DEACTIVATE_NODE,
  END_MAINTENANCE,
  NODE,
  NODE_CHANGED,
  RELEASE_NODE,
  RESTART_NODE,
  START_MAINTENANCE,
} from '../documents.ts';
import { useQuery } from '../hooks.ts';
import { Confirm } from '../parts/Confirm.tsx';
import { ago, shortId, time } from '../parts/format.ts';
import { type Crash, HealthPlot, type Sample } from '../parts/HealthPlot.tsx';
import { StateBadge } from '../parts/status.tsx';
import { useSession } from '../session.tsx';

const RANGES = [
  { label: 'Last hour', ms: 3_600_000 },
  { label: 'Last 24 hours', ms: 86_400_000 },
  { label: 'Last 30 days', ms: 30 * 86_400_000 },
] as const;

interface NodeDetail {
  id: string;
  name: string;
  region: string;
  status: string;
  nodeKind: string;
  nodeIp: string;
  workerPort: number;
  currentAeVersion: string;
  availableAeVersions: string[];
  nodeAgentVersion: string | null;
  ramGb: number;
  cpuCores: number;
  priority: number;
  isActive: boolean;
  acceptsNewJobs: boolean;
  lastHeartbeatAt: string | null;
  currentJobId: string | null;
  currentFrame: number | null;
  lastCpuPct: number;
  lastRamAvailableMb: number;
  aeRunning: boolean;
  lastAeMemoryMb: number | null;
  cacheUsedGb: number;
  cachedTemplateCount: number;
  lifetimeTaskCount: string;
  lifetimeCrashCount: number;
  consecutiveFailures: number;
  lastMaintenanceAt: string | null;
  maintenanceReason: string | null;
  currentFrameJob: { id: string; startFrame: number; endFrame: number } | null;
}

interface Command {
  id: string;
  type: string;
  status: string;
  renderJobId: string | null;
  deliveryCount: number;
  createdAt: string;
  deliveredAt: string | null;
  acknowledgedAt: string | null;
  completedAt: string | null;
}

interface NodeAnswer {
  renderNode: NodeDetail;
  renderNodeHealthHistory: Sample[];
  renderNodeCrashes: (Crash & { renderJobId: string | null; lastKnownFrame: number | null; recoveryAction: string | null; autoRecovered: boolean })[];
  renderNodeCommands: Command[];
}

interface Action {
  key: string;
  label: string;
  question: string;
  /** When the action makes sense for the node as it stands. */
  offered(node: NodeDetail): boolean;
  mutation: string;
  withReason?: boolean;
}

const ACTIONS: Action[] = [
  {
    key: 'maintenance',
    label: 'Start maintenance',
    question: 'The node finishes the work it runs and is given nothing new until maintenance ends.',
    offered: (node) => node.status !== 'Maintenance' && node.status !== 'Updating',
    mutation: START_MAINTENANCE,
    withReason: true,
  },
  {
    key: 'end-maintenance',
    label: 'End maintenance',
    question: 'The node is Online again and takes work once its agent heartbeats.',
    offered: (node) => node.status === 'Maintenance',
    mutation: END_MAINTENANCE,
  },
  {
    key: 'restart',
    label: 'Restart node',
    question: 'The node reboots with its next heartbeat; its work moves to other nodes at once.',
    offered: () => true,
    mutation: RESTART_NODE,
  },
  {
    key: 'release',
    label: 'Release work',
    question: 'All work is taken from the node; only frames it never rendered are rendered again elsewhere.',
    offered: () => true,
    mutation: RELEASE_NODE,
  },
  {
    key: 'close-ae',
    label: 'Close After Effects',
    question: 'After Effects is killed on the node; a chunk it renders fails and is rendered again.',
    offered: (node) => node.aeRunning,
    mutation: CLOSE_AE,
  },
  {
    key: 'deactivate',
    label: 'Deactivate',
    question: 'An inactive node is given no work until it is made active again.',
    offered: (node) => node.isActive,
    mutation: DEACTIVATE_NODE,
  },
  {
    key: 'activate',
    label: 'Make active',
    question: 'The node takes work again.',
    offered: (node) => !node.isActive,
    mutation: ACTIVATE_NODE,
  },
];

type ActionResult = { __typename: string; commandId?: string | null; recutChunks?: number };

export function NodePage({ id }: { id: string }) {
  const { token, live } = useSession();
  const [range, setRange] = useState<number>(RANGES[0].ms);
  // The window moves with each poll, so the plot keeps up with new samples.
  const [to, setTo] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setTo(Date.now()), 5_000);
    return () => clearInterval(timer);
  }, []);
  const from = to - range;
  const answer = useQuery<NodeAnswer>(NODE, { id, from: new Date(from).toISOString(), to: new Date(to).toISOString() });
  const [asking, setAsking] = useState<Action>();
  const [reason, setReason] = useState('');
  const [message, setMessage] = useState<{ text: string; failed: boolean }>();

  useEffect(
    () =>
      live.follow<{ nodeStatusChanged: { id: string } }>(NODE_CHANGED, () => ({}), {
        next: ({ nodeStatusChanged }) => {
          if (nodeStatusChanged.id === id) answer.refetch();
        },
        resumed: answer.refetch,
      }),
    [live, id, answer.refetch],
  );

  const act = async (action: Action) => {
    setAsking(undefined);
    try {
      const variables = { id, ...(action.withReason ? { reason: reason.trim() || null } : {}) };
      const { result } = await graphql<{ result: ActionResult }>(token, action.mutation, variables);
      const done = outcome(result);
      setMessage({
        text:
          `${action.label}: done.` +
          (done.commandId ? ` Command ${shortId(done.commandId)} is delivered with the next heartbeat.` : '') +
          (done.recutChunks ? ` ${done.recutChunks} chunk(s) moved to other nodes.` : ''),
        failed: false,
      });
    } catch (error) {
      setMessage({ text: `${action.label} refused: ${error instanceof ApiError ? error.message : String(error)}`, failed: true });
    }
    setReason('');
    answer.refetch();
  };

  if (answer.error) return <p role="alert" className="error">{answer.error.message}</p>;
  if (!answer.data) return <p>Loading the node…</p>;
  const { renderNode: node, renderNodeHealthHistory: samples, renderNodeCrashes: crashes, renderNodeCommands: commands } = answer.data;

  return (
    <section aria-labelledby="node-title">
      <p className="breadcrumb">
        <a href="#/fleet">Fleet</a> / {node.region}
      </p>
      <h1 id="node-title">
        {node.name} <StateBadge state={node.status} />
      </h1>
      <dl className="facts">
        <dt>Region</dt>
        <dd>{node.region}</dd>
        <dt>Kind</dt>
        <dd>{node.nodeKind}</dd>
        <dt>Address</dt>
        <dd>
          {node.nodeIp}:{node.workerPort}
        </dd>
        <dt>After Effects</dt>
        <dd>
          {node.currentAeVersion} {node.aeRunning ? `(running${node.lastAeMemoryMb === null ? '' : `, ${node.lastAeMemoryMb} MB`})` : '(not running)'}
        </dd>
        <dt>Agent</dt>
        <dd>{node.nodeAgentVersion ?? 'unknown'}</dd>
        <dt>Hardware</dt>
        <dd>
          {node.cpuCores} cores, {node.ramGb} GB
        </dd>
        <dt>Last heartbeat</dt>
        <dd>{ago(node.lastHeartbeatAt)}</dd>
        <dt>Work</dt>
        <dd>
          {node.currentJobId ? (
            <a href={`#/jobs/${node.currentJobId}`}>
              job {shortId(node.currentJobId)}
              {node.currentFrameJob ? `, frames ${node.currentFrameJob.startFrame}–${node.currentFrameJob.endFrame}` : ''}
            </a>
          ) : (
            'none'
          )}
        </dd>
        <dt>Takes work</dt>
        <dd>{node.isActive && node.acceptsNewJobs ? 'yes' : 'no'}</dd>
        <dt>Tasks / crashes</dt>
        <dd>
          {node.lifetimeTaskCount} / {node.lifetimeCrashCount} ({node.consecutiveFailures} failures in a row)
        </dd>
        {node.status === 'Maintenance' && (
          <>
            <dt>Maintenance</dt>
            <dd>{node.maintenanceReason ?? 'no reason given'}</dd>
          </>
        )}
      </dl>

      <h2>Actions</h2>
      <div className="actions">
        {ACTIONS.filter((action) => action.offered(node)).map((action) => (
          <button key={action.key} type="button" onClick={() => setAsking(action)}>
            {action.label}
          </button>
        ))}
      </div>
      {message && (
        <p role="status" className={message.failed ? 'error' : 'notice'}>
          {message.text}
        </p>
      )}
      {asking && (
        <Confirm title={`${asking.label} on ${node.name}?`} confirmLabel={asking.label} onConfirm={() => void act(asking)} onCancel={() => setAsking(undefined)}>
          <p>{asking.question}</p>
          {asking.withReason && (
            <label className="reason">
              Reason (optional){' '}
              <input value={reason} onChange={(event) => setReason(event.target.value)} maxLength={500} />
            </label>
          )}
        </Confirm>
      )}

      <h2 id="health-title">Health</h2>
      <div className="range" role="group" aria-labelledby="health-title">
        {RANGES.map((option) => (
          <button key={option.ms} type="button" aria-pressed={range === option.ms} onClick={() => setRange(option.ms)}>
            {option.label}
          </button>
        ))}
      </div>
      <HealthPlot samples={samples} crashes={crashes} from={from} to={to} ramGb={node.ramGb} />

      <h2>Crashes</h2>
      {crashes.length === 0 ? (
        <p className="muted">No crash reported.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>When</th>
              <th>Signal</th>
              <th>Job</th>
              <th>Last frame</th>
              <th>Recovery</th>
            </tr>
          </thead>
          <tbody>
            {crashes.map((crash) => (
              <tr key={crash.id}>
                <td>{time(crash.crashedAt)}</td>
                <td>{crash.crashSignal || '–'}</td>
                <td>{crash.renderJobId ? <a href={`#/jobs/${crash.renderJobId}`}>{shortId(crash.renderJobId)}</a> : '–'}</td>
                <td>{crash.lastKnownFrame ?? '–'}</td>
                <td>
                  {crash.recoveryAction ?? '–'}
                  {crash.autoRecovered ? ' (automatic)' : ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <h2>Recent commands</h2>
      {commands.length === 0 ? (
        <p className="muted">No command sent yet.</p>
      ) : (
        <table className="commands">
          <thead>
            <tr>
              <th>Created</th>
              <th>Command</th>
              <th>Status</th>
              <th>Job</th>
              <th>Deliveries</th>
              <th>Finished</th>
            </tr>
          </thead>
          <tbody>
            {commands.map((command) => (
              <tr key={command.id} data-command={command.type}>
                <td>{time(command.createdAt)}</td>
                <td>{command.type}</td>
                <td>{command.status}</td>
                <td>{command.renderJobId ? <a href={`#/jobs/${command.renderJobId}`}>{shortId(command.renderJobId)}</a> : '–'}</td>
                <td>{command.deliveryCount}</td>
                <td>{time(command.completedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
