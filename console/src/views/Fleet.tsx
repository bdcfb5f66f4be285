import { useEffect, useState } from 'react';
import { FLEET, FLEET_CHANGED } from '../documents.ts';
import { useChanges, useQuery } from '../hooks.ts';
import { Choice } from '../parts/Choice.tsx';
import { ago, shortId } from '../parts/format.ts';
import { NODE_STATUSES, StateBadge, StateIcon } from '../parts/status.tsx';
import { useSession } from '../session.tsx';

export interface FleetNode {
  id: string;
  name: string;
  region: string;
  status: string;
  currentAeVersion: string;
  nodeAgentVersion: string | null;
  lastHeartbeatAt: string | null;
  lastCpuPct: number;
  isActive: boolean;
  currentJobId: string | null;
  currentFrame: number | null;
  currentFrameJob: { id: string; startFrame: number; endFrame: number; framesRendered: number } | null;
}

// Heartbeats move figures that no subscription reports; status changes come live in between.
const POLL_MS = 5_000;

export function Fleet() {
  const { live } = useSession();
  const fleet = useQuery<{ renderNodes: FleetNode[] }>(FLEET, {}, POLL_MS);
  const [status, setStatus] = useState('');
  const [region, setRegion] = useState('');
  const [version, setVersion] = useState('');

  const [nodes, sawChange] = useChanges(fleet.data?.renderNodes, fleet.askedAt);
  useEffect(
    () =>
      live.follow<{ nodeStatusChanged: FleetNode }>(FLEET_CHANGED, () => ({}), {
        next: ({ nodeStatusChanged }) => sawChange(nodeStatusChanged),
        resumed: fleet.refetch,
      }),
    [live, fleet.refetch, sawChange],
  );

  const regions = [...new Set(nodes.map((node) => node.region))].sort();
  const versions = [...new Set(nodes.map((node) => node.currentAeVersion))].sort();
  const counts = new Map(NODE_STATUSES.map((name) => [name as string, nodes.filter((node) => node.status === name).length]));
  const shown = nodes.filter(
    (node) => (!status || node.status === status) && (!region || node.region === region) && (!version || node.currentAeVersion === version),
  );
  const byRegion = new Map<string, FleetNode[]>();
  for (const node of shown) byRegion.set(node.region, [...(byRegion.get(node.region) ?? []), node]);

  return (
    <section aria-labelledby="fleet-title">
      <h1 id="fleet-title">Fleet</h1>
      {fleet.error && <p role="alert" className="error">{fleet.error.message}</p>}
      <div className="counts" role="group" aria-label="Nodes by status; choose one to show only those">
        {NODE_STATUSES.map((name) => (
          <button
            key={name}
            type="button"
            className="count"
            aria-pressed={status === name}
            data-status-count={name}
            onClick={() => setStatus(status === name ? '' : name)}
          >
            <StateIcon state={name} /> {name} <strong>{counts.get(name)}</strong>
          </button>
        ))}
        <span className="total">{nodes.length} nodes</span>
      </div>
      <div className="filters">
        <Choice label="Status" value={status} options={NODE_STATUSES} onChange={setStatus} />
        <Choice label="Region" value={region} options={regions} onChange={setRegion} />
        <Choice label="After Effects" value={version} options={versions} onChange={setVersion} />
      </div>
      {fleet.data && shown.length === 0 && <p>No node matches these filters.</p>}
      {!fleet.data && !fleet.error && <p>Loading the fleet…</p>}
      {[...byRegion].map(([name, members]) => (
        <section key={name} className="region" aria-label={`Region ${name}`}>
          <h2>
            {name} <span className="muted">({members.length})</span>
          </h2>
          <ul className="tiles">
            {members.map((node) => (
              <li key={node.id}>
                <NodeTile node={node} />
              </li>
            ))}
          </ul>
        </section>
      ))}
    </section>
  );
}

function NodeTile({ node }: { node: FleetNode }) {
  const chunk = node.currentFrameJob;
  return (
    <a className="tile" href={`#/nodes/${node.id}`} data-node={node.name} data-status={node.status}>
      <span className={`tile-band status-${node.status}`} aria-hidden="true" />
      <span className="tile-name">{node.name}</span>
      <StateBadge state={node.status} label={node.isActive ? node.status : `${node.status} (inactive)`} />
      <span className="tile-work">
        {node.currentJobId ? (
          <>
            job {shortId(node.currentJobId)}
            {chunk ? ` · frames ${chunk.startFrame}–${chunk.endFrame}` : ''}
            {node.currentFrame !== null ? ` · at ${node.currentFrame}` : ''}
          </>
        ) : (
          <span className="muted">no work</span>
        )}
      </span>
      <span className="tile-meta muted">
        AE {node.currentAeVersion} · CPU {node.lastCpuPct} % · {ago(node.lastHeartbeatAt)}
      </span>
    </a>
  );
}
