// Which node does which piece of work: a pure function over a snapshot of the queue and the
// fleet, so it can be tested and benchmarked on its own.
//
// A node is a candidate when it accepts work, is active, healthy and free (one After Effects,
// one piece of work at a time), runs the After Effects version the job needs, and is not
// blocked from the job. Among candidates a work item prefers, in order:
//   1. the job's preferred region,
//   2. nodes that already hold the job's template (no download),
//   3. higher node priority,
//   4. the least loaded node (lowest CPU use at its last heartbeat).
// Work items are served in queue order: priority queue, then submission time, then chunk order.
//
// Cost: every node list is sorted once; each item walks its preference lists with cursors that
// only move forward past nodes already taken, so a pass is about O(items + nodes x lists).

export interface WorkItem {
  /** Caller's identity of the item (a chunk id, or a job id for prepare/encode). */
  key: string;
  jobId: string;
  /** Lower runs first (Priority queue 0, Standard 1, Background 2). */
  queueRank: number;
  queuedAt: number;
  order: number;
  aeVersion: string | null;
  templateMd5: string | null;
  preferredRegion: string | null;
  blockedNodeIds: ReadonlySet<string>;
}

export interface NodeCandidate {
  id: string;
  region: string;
  aeVersions: ReadonlySet<string>;
  templates: ReadonlySet<string>;
  priority: number;
  cpuPct: number;
}

export interface Placement {
  item: WorkItem;
  nodeId: string;
}

function byQueueOrder(a: WorkItem, b: WorkItem): number {
  return a.queueRank - b.queueRank || a.queuedAt - b.queuedAt || a.order - b.order || (a.key < b.key ? -1 : 1);
}

function byNodePreference(a: NodeCandidate, b: NodeCandidate): number {
  return b.priority - a.priority || a.cpuPct - b.cpuPct || (a.id < b.id ? -1 : 1);
}

class Cursor {
  private position = 0;
  constructor(private readonly nodes: NodeCandidate[]) {}

  /** The first node in this list that is free and fits; taken nodes are skipped for good. */
  find(taken: ReadonlySet<string>, fits: (node: NodeCandidate) => boolean): NodeCandidate | undefined {
    while (this.position < this.nodes.length && taken.has(this.nodes[this.position]!.id)) this.position++;
    for (let index = this.position; index < this.nodes.length; index++) {
      const node = this.nodes[index]!;
      if (!taken.has(node.id) && fits(node)) return node;
    }
    return undefined;
  }
}

function group(nodes: NodeCandidate[], keysOf: (node: NodeCandidate) => Iterable<string>): Map<string, NodeCandidate[]> {
  const groups = new Map<string, NodeCandidate[]>();
  for (const node of nodes) {
    for (const key of keysOf(node)) {
      let list = groups.get(key);
      if (!list) groups.set(key, (list = []));
      list.push(node);
    }
  }
  return groups;
}

export function placeWork(items: readonly WorkItem[], nodes: readonly NodeCandidate[]): Placement[] {
  const sorted = [...nodes].sort(byNodePreference);
  const byRegion = group(sorted, (node) => [node.region]);
  const byTemplate = group(sorted, (node) => node.templates);
  const byRegionAndTemplate = group(sorted, (node) => [...node.templates].map((md5) => `${node.region}\u0000${md5}`));
  const cursors = new Map<string, Cursor>();
  const cursorFor = (name: string, list: NodeCandidate[] | undefined): Cursor | undefined => {
    if (!list) return undefined;
    let cursor = cursors.get(name);
    if (!cursor) cursors.set(name, (cursor = new Cursor(list)));
    return cursor;
  };

  const taken = new Set<string>();
  const placements: Placement[] = [];
  for (const item of [...items].sort(byQueueOrder)) {
    if (taken.size === sorted.length) break;
    const fits = (node: NodeCandidate) =>
      !item.blockedNodeIds.has(node.id) && (item.aeVersion === null || node.aeVersions.has(item.aeVersion));
    const region = item.preferredRegion;
    const md5 = item.templateMd5;
    const preferences: Array<Cursor | undefined> = [
      region !== null && md5 !== null ? cursorFor(`rt:${region}\u0000${md5}`, byRegionAndTemplate.get(`${region}\u0000${md5}`)) : undefined,
      region !== null ? cursorFor(`r:${region}`, byRegion.get(region)) : undefined,
      md5 !== null ? cursorFor(`t:${md5}`, byTemplate.get(md5)) : undefined,
      cursorFor('all', sorted),
    ];
    for (const cursor of preferences) {
      const node = cursor?.find(taken, fits);
      if (node) {
        taken.add(node.id);
        placements.push({ item, nodeId: node.id });
        break;
      }
    }
  }
  return placements;
}
