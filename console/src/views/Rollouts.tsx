import { ROLLOUTS } from '../documents.ts';
import { useQuery } from '../hooks.ts';
import { time } from '../parts/format.ts';
import { StateBadge, StateIcon } from '../parts/status.tsx';

interface Target {
  nodeId: string;
  wave: number;
  status: string;
  skipReason: string | null;
  sentAt: string | null;
  appliedAt: string | null;
  node: { id: string; name: string; status: string; nodeAgentVersion: string | null; currentAeVersion: string };
}

interface Rollout {
  id: string;
  status: string;
  currentWave: number;
  haltReason: string | null;
  waveDeadlineAt: string | null;
  createdAt: string;
  createdBy: string | null;
  update: { id: string; updateNumber: number; updateFileName: string; targetAeVersion: string; description: string };
  targets: Target[];
}

function countBy(values: string[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts].sort(([a], [b]) => a.localeCompare(b));
}

export function Rollouts() {
  const answer = useQuery<{ rollouts: Rollout[]; renderNodes: { nodeAgentVersion: string | null; currentAeVersion: string }[] }>(ROLLOUTS, {}, 5_000);
  if (answer.error) return <p role="alert" className="error">{answer.error.message}</p>;
  if (!answer.data) return <p>Loading the rollouts…</p>;
  const { rollouts, renderNodes } = answer.data;

  return (
    <section aria-labelledby="rollouts-title">
      <h1 id="rollouts-title">Rollouts</h1>
      <div className="versions">
        <section aria-label="Nodes by agent version">
          <h2>Agent versions</h2>
          <ul>
            {countBy(renderNodes.map((node) => node.nodeAgentVersion ?? 'unknown')).map(([version, count]) => (
              <li key={version}>
                {version}: <strong>{count}</strong> nodes
              </li>
            ))}
          </ul>
        </section>
        <section aria-label="Nodes by After Effects version">
          <h2>After Effects versions</h2>
          <ul>
            {countBy(renderNodes.map((node) => node.currentAeVersion)).map(([version, count]) => (
              <li key={version}>
                {version}: <strong>{count}</strong> nodes
              </li>
            ))}
          </ul>
        </section>
      </div>
      {rollouts.length === 0 && <p className="muted">No rollout yet. Start one with the rolloutNodeUpdate mutation.</p>}
      {rollouts.map((rollout) => {
        const waves = [...new Set(rollout.targets.map((target) => target.wave))].sort((a, b) => a - b);
        return (
          <article key={rollout.id} className="rollout" data-rollout={rollout.id} aria-label={`Rollout of update ${rollout.update.updateNumber}`}>
            <h2>
              Update {rollout.update.updateNumber} ({rollout.update.updateFileName}, After Effects {rollout.update.targetAeVersion}){' '}
              <StateBadge state={rollout.status} />
            </h2>
            <p className="muted">
              Started {time(rollout.createdAt)}
              {rollout.createdBy ? ` by ${rollout.createdBy}` : ''} · wave {rollout.currentWave}
              {rollout.waveDeadlineAt ? ` · wave deadline ${time(rollout.waveDeadlineAt)}` : ''}
            </p>
            {rollout.haltReason && (
              <p className="error" role="note">
                Halted at wave {rollout.currentWave}: {rollout.haltReason}
              </p>
            )}
            <div className="waves">
              {waves.map((wave) => (
                <section key={wave} className={`wave${wave === rollout.currentWave && rollout.status !== 'Completed' ? ' current' : ''}`}>
                  <h3>{wave === 0 ? 'Canary' : `Wave ${wave}`}</h3>
                  <ul>
                    {rollout.targets
                      .filter((target) => target.wave === wave)
                      .map((target) => (
                        <li key={target.nodeId} data-target={target.node.name} data-status={target.status}>
                          <StateIcon state={target.status} /> <a href={`#/nodes/${target.nodeId}`}>{target.node.name}</a> {target.status}
                          {target.skipReason ? ` (${target.skipReason})` : ''} · agent {target.node.nodeAgentVersion ?? 'unknown'}
                        </li>
                      ))}
                  </ul>
                </section>
              ))}
            </div>
          </article>
        );
      })}
    </section>
  );
}
