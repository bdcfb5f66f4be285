// Saved projects for the snapshot tests and an agent's side of a snapshot render, each one line
// in a test; users and nodes come from the shared test app. The tests drive the scheduler and the
// clock by hand.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { ServiceClient, TestApp, TestNode, TestUser } from './app.ts';
import { syncSavedProject } from './projects.ts';

export type Command = { type: string; command_id: string; lease: string; snapshot_id: string; [field: string]: unknown };

/** Tokens that outlive the expiry tests' jumps of the clock, which the server checks tokens against. */
export const LONG_LIVED = { ttlSeconds: 60 * 24 * 3600 };

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The studio's and an agent's side of snapshots, against the service at the client's URL. */
export function snapshotAgent(t: ServiceClient) {
  /** A saved project as the studio service syncs it; owner null is a project anyone may use. */
  async function savedProject(owner: TestUser | null, md5: string = randomMd5()): Promise<{ id: string; md5: string }> {
    const { id } = await syncSavedProject(t, { owner_user_id: owner?.id ?? null, name: 'Promo', duration_sec: 10, aep_file_md5: md5, ae_version: '24.1' });
    return { id, md5 };
  }

  /** A heartbeat; the commands it delivers are acknowledged, as agents do. */
  const commandsFor = async (node: TestNode) => (await t.takeCommands(node, { cpu_pct: 10 })) as Command[];

  /** The render_snapshot command the node receives next. */
  async function snapshotCommand(node: TestNode): Promise<Command> {
    const command = (await commandsFor(node)).find((candidate) => candidate.type === 'render_snapshot');
    expect(command, 'a render_snapshot command').toBeDefined();
    return command as Command;
  }

  const upload = (node: TestNode, snapshotId: string, file: 'image' | 'thumbnail', lease: string | undefined, bytes: Buffer) =>
    t.signed(node, 'PUT', `/v1/internal/snapshots/${snapshotId}/${file}${lease === undefined ? '' : `?lease=${lease}`}`, bytes);

  const complete = (node: TestNode, command: Command, body: Record<string, unknown> = {}) =>
    t.signed(node, 'POST', `/v1/internal/snapshots/${command.snapshot_id}/complete`, {
      lease: command.lease,
      width: 1920,
      height: 1080,
      duration_ms: 4200,
      ...body,
    });

  /** The agent's whole answer to a render_snapshot command; answers the bytes it uploaded. */
  async function render(node: TestNode, command: Command): Promise<{ image: Buffer; thumbnail: Buffer }> {
    const files = { image: pngBytes(4096), thumbnail: pngBytes(512) };
    expect((await upload(node, command.snapshot_id, 'image', command.lease, files.image)).status).toBe(204);
    expect((await upload(node, command.snapshot_id, 'thumbnail', command.lease, files.thumbnail)).status).toBe(204);
    const done = await complete(node, command);
    expect(done.status, JSON.stringify(done.body)).toBe(204);
    return files;
  }

  return { savedProject, commandsFor, snapshotCommand, upload, complete, render };
}

export function snapshotFixtures(t: TestApp) {
  const prisma = t.app.services.db.prisma;
  const admin = t.user(0, { admin: true, ...LONG_LIVED });

  /**
   * Leaves the scheduler only the nodes and snapshots a test makes: earlier tests' nodes stop
   * taking work and their unfinished snapshots are closed.
   */
  async function resetFleet(): Promise<void> {
    await prisma.renderNode.updateMany({ data: { isActive: false } });
    await prisma.nodeCommand.updateMany({ where: { status: { in: ['Pending', 'Acknowledged'] } }, data: { status: 'Superseded' } });
    await prisma.snapshot.updateMany({ where: { status: { in: ['Pending', 'Rendering'] } }, data: { status: 'Failed' } });
  }

  const snapshotCommands = (md5: string) =>
    prisma.nodeCommand.findMany({ where: { type: 'render_snapshot', payload: { path: ['aep_file_md5'], equals: md5 } } });

  return { ...snapshotAgent(t), prisma, admin, resetFleet, snapshotCommands };
}

/** `count` snapshots the user asked for, as rows alone (no render, no command): enough to resolve them; their ids. */
export async function createSnapshotRows(t: TestApp, userId: string, count: number): Promise<string[]> {
  const rows = await t.app.services.db.prisma.snapshot.createManyAndReturn({
    data: Array.from({ length: count }, () => ({ userId, savedProjectId: randomUUID(), sceneKey: 'intro', frameNumber: 1, aepFileMd5: 'a'.repeat(32) })),
    select: { id: true },
  });
  return rows.map((row) => row.id);
}

export function randomMd5(): string {
  return createHash('md5').update(randomUUID()).digest('hex');
}

export function pngBytes(size: number): Buffer {
  return Buffer.concat([PNG_SIGNATURE, randomBytes(size)]);
}
