import { describe, expect, it } from 'vitest';
import { crashAction } from '../../src/domain/scheduling/failure-policy.ts';
import { type NodeCandidate, placeWork, type WorkItem } from '../../src/domain/scheduling/placement.ts';

const node = (id: string, overrides: Partial<NodeCandidate> = {}): NodeCandidate => ({
  id,
  region: 'eu',
  aeVersions: new Set(['24.1']),
  templates: new Set(),
  priority: 0,
  cpuPct: 10,
  ...overrides,
});

let order = 0;
const item = (key: string, overrides: Partial<WorkItem> = {}): WorkItem => ({
  key,
  jobId: `job-${key}`,
  queueRank: 1,
  queuedAt: 1000,
  order: order++,
  aeVersion: null,
  templateMd5: null,
  preferredRegion: null,
  blockedNodeIds: new Set(),
  ...overrides,
});

const assigned = (items: WorkItem[], nodes: NodeCandidate[]) =>
  Object.fromEntries(placeWork(items, nodes).map((placement) => [placement.item.key, placement.nodeId]));

describe('placement', () => {
  it('gives each free node at most one piece of work, in queue order', () => {
    const result = placeWork(
      [item('late', { queuedAt: 3000 }), item('early', { queuedAt: 1000 }), item('urgent', { queueRank: 0, queuedAt: 5000 })],
      [node('a'), node('b')],
    );
    expect(result.map((p) => p.item.key)).toEqual(['urgent', 'early']);
    expect(new Set(result.map((p) => p.nodeId)).size).toBe(2);
  });

  it('prefers the preferred region over a cached template, a cached template over priority, priority over load', () => {
    const nodes = [
      node('busy-high', { priority: 5, cpuPct: 90 }),
      node('idle-high', { priority: 5, cpuPct: 5 }),
      node('cached', { templates: new Set(['md5']) }),
      node('regional', { region: 'us' }),
    ];
    expect(assigned([item('x', { preferredRegion: 'us', templateMd5: 'md5' })], nodes)).toEqual({ x: 'regional' });
    expect(assigned([item('x', { templateMd5: 'md5' })], nodes)).toEqual({ x: 'cached' });
    expect(assigned([item('x')], nodes)).toEqual({ x: 'idle-high' });
    expect(assigned([item('x', { preferredRegion: 'us' }), item('y', { preferredRegion: 'us' })], nodes)).toEqual({
      x: 'regional',
      y: 'idle-high',
    });
  });

  it('prefers a node with both the region and the template', () => {
    const nodes = [node('region-only', { region: 'us', priority: 9 }), node('both', { region: 'us', templates: new Set(['t']) })];
    expect(assigned([item('x', { preferredRegion: 'us', templateMd5: 't' })], nodes)).toEqual({ x: 'both' });
  });

  it('needs the After Effects version the job asks for and keeps blocked nodes off the job', () => {
    const nodes = [node('old', { priority: 9 }), node('new', { aeVersions: new Set(['24.1', '25.0']) })];
    expect(assigned([item('x', { aeVersion: '25.0' })], nodes)).toEqual({ x: 'new' });
    expect(assigned([item('x', { aeVersion: '26.0' })], nodes)).toEqual({});
    expect(assigned([item('x', { blockedNodeIds: new Set(['old']) })], nodes)).toEqual({ x: 'new' });
  });

  it('places nothing without nodes or work', () => {
    expect(placeWork([], [node('a')])).toEqual([]);
    expect(placeWork([item('x')], [])).toEqual([]);
  });
});

describe('crash policy', () => {
  it('restarts a sick node, reassigns work a node keeps failing, otherwise resets After Effects', () => {
    expect(crashAction({ consecutiveFailures: 1, crashesInLastHour: 1, failuresOnThisJob: 1 })).toBe('ResetAndRestart');
    expect(crashAction({ consecutiveFailures: 2, crashesInLastHour: 3, failuresOnThisJob: 3 })).toBe('ReassignWork');
    expect(crashAction({ consecutiveFailures: 5, crashesInLastHour: 5, failuresOnThisJob: 1 })).toBe('RestartNode');
    expect(crashAction({ consecutiveFailures: 1, crashesInLastHour: 10, failuresOnThisJob: 3 })).toBe('RestartNode');
  });
});
