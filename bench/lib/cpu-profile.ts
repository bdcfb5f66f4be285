// Where a service spent its CPU, from a V8 profile written by `node --cpu-prof`: the note of a
// benchmark that misses its goal names what limits it.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  endTime: number;
}

/** Where a function lives, coarse enough to read in a table: an npm package, a project file, or V8. */
function placeOf(url: string): string {
  if (url === '') return '';
  const modules = url.lastIndexOf('node_modules/');
  if (modules !== -1) {
    const parts = url.slice(modules + 'node_modules/'.length).split('/');
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? url);
  }
  if (url.startsWith('node:')) return url;
  const project = /\/(src|rest-compat|agent-sim|bench)\/(.*)$/.exec(url);
  return project ? `${project[1]}/${project[2]}` : url;
}

export interface CpuShare {
  /** A package, project file or V8 bucket, with its busiest function. */
  what: string;
  percent: number;
}

/**
 * Self time by place (package, project file, or a V8 bucket such as garbage collection), busiest
 * first, as shares of the non-idle samples taken in the last `lastMs` of each profile in `dir`
 * (the load, not the start-up).
 */
export function topOfProfiles(dir: string, lastMs: number, count = 6): CpuShare[] {
  const places = new Map<string, { samples: number; functions: Map<string, number> }>();
  let busy = 0;
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.cpuprofile'))) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    const total = profile.timeDeltas.reduce((sum, delta) => sum + delta, 0);
    const from = profile.endTime - lastMs * 1000;
    let at = profile.endTime - total;
    profile.samples.forEach((id, index) => {
      at += profile.timeDeltas[index] ?? 0;
      const frame = byId.get(id)?.callFrame;
      if (at < from || !frame || frame.functionName === '(idle)') return;
      busy++;
      const place = placeOf(frame.url) || frame.functionName;
      const entry = places.get(place) ?? { samples: 0, functions: new Map<string, number>() };
      entry.samples++;
      const name = frame.functionName || '(anonymous)';
      entry.functions.set(name, (entry.functions.get(name) ?? 0) + 1);
      places.set(place, entry);
    });
  }
  return [...places.entries()]
    .map(([place, entry]) => {
      const [busiest] = [...entry.functions.entries()].sort((a, b) => b[1] - a[1])[0] ?? ['', 0];
      return { what: busiest && busiest !== place ? `${place} (${busiest})` : place, percent: (entry.samples * 100) / Math.max(1, busy) };
    })
    .sort((a, b) => b.percent - a.percent)
    .slice(0, count);
}

export function describeShares(shares: readonly CpuShare[]): string {
  return shares.map((share) => `${share.what} ${share.percent.toFixed(0)}%`).join(', ');
}
