// The authorization matrix shared by the REST and GraphQL suites: the kinds of caller, the policies
// operations declare, the outcome each policy gives each caller, and a digest of the database that
// shows a refused request changed nothing.
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { type TestApp, type TestUser } from '../support/app.ts';
import { renderBody, submitRender } from '../support/jobs.ts';
import { syncSavedProject } from '../support/projects.ts';
import { randomMd5 } from '../support/snapshots.ts';
import { createNodeUpdate } from '../support/updates.ts';

/** Callers with a bearer credential, or none: the GraphQL door knows only these. */
export const BEARER_CALLERS = ['none', 'other', 'owner', 'admin', 'service'] as const;
/**
 * Signed agents: the node holding the work, another node, a signature made with the wrong key,
 * timestamps beyond the ±300 s window in either direction, and a replay of the agent's request.
 */
export const AGENT_CALLERS = ['agent', 'otherNode', 'wrongSignature', 'staleTimestamp', 'futureTimestamp', 'replay'] as const;
export const CALLERS = [...BEARER_CALLERS, ...AGENT_CALLERS] as const;

export type BearerCaller = (typeof BEARER_CALLERS)[number];
export type Caller = (typeof CALLERS)[number];

/**
 * Who may call an operation:
 * - public: anyone, no credential;
 * - user: any user (they see only their own rows, admins everyone's);
 * - userOrService: as user, and calling services, who read everyone's rows;
 * - owner: the user the object belongs to, or an admin; other users are told it does not exist;
 * - ownerOrService: as owner, and calling services, who read any user's object;
 * - admin: administrators only;
 * - service: calling services (saved-project sync), and admins;
 * - node: the signed agent of the node the request names or that holds the work.
 */
export type Policy = 'public' | 'user' | 'userOrService' | 'owner' | 'ownerOrService' | 'admin' | 'service' | 'node';

const ANY_USER: Policy[] = ['user', 'userOrService'];
const OWNER: Policy[] = ['owner', 'ownerOrService'];
const SERVICES: Policy[] = ['service', 'userOrService', 'ownerOrService'];

export interface Outcome {
  status: number;
  /** The error code of a refusal; undefined for an allowed call. */
  code?: string;
}

const UNAUTHENTICATED: Outcome = { status: 401, code: 'UNAUTHENTICATED' };
const FORBIDDEN: Outcome = { status: 403, code: 'FORBIDDEN' };
const NOT_FOUND: Outcome = { status: 404, code: 'NOT_FOUND' };

/**
 * The expected outcome of a caller under a policy, `allowed` being the operation's 2xx. A bearer
 * credential is no credential on the agents' door (401), and a signature none on the callers' one.
 * A node that signs correctly but is not the one named in the path or body is refused with 403;
 * rows whose work is named only by a lease override that with 409 STALE_LEASE.
 */
export function expectedOutcome(policy: Policy, caller: Caller, allowed: Outcome): Outcome {
  if (policy === 'public') return allowed;
  if (policy === 'node') {
    if (caller === 'agent') return allowed;
    if (caller === 'otherNode') return FORBIDDEN;
    return UNAUTHENTICATED;
  }
  switch (caller) {
    case 'none':
      return UNAUTHENTICATED;
    case 'admin':
      return allowed;
    case 'owner':
      return ANY_USER.includes(policy) || OWNER.includes(policy) ? allowed : FORBIDDEN;
    case 'other':
      return ANY_USER.includes(policy) ? allowed : OWNER.includes(policy) ? NOT_FOUND : FORBIDDEN;
    case 'service':
      return SERVICES.includes(policy) ? allowed : FORBIDDEN;
    default:
      return UNAUTHENTICATED;
  }
}

/** One md5 per table of the service, over every row: equal digests mean nothing was written. */
export async function databaseDigest(t: TestApp): Promise<Record<string, string>> {
  const prisma = t.app.services.db.prisma;
  const tables = await prisma.$queryRaw<{ name: string }[]>`
    SELECT table_name AS name FROM information_schema.tables
    WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> '_prisma_migrations'
    ORDER BY table_name`;
  const selects = tables.map(
    ({ name }) => `SELECT '${name}' AS name, coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '') AS digest FROM "${name}" r`,
  );
  const rows = await prisma.$queryRawUnsafe<{ name: string; digest: string }[]>(selects.join(' UNION ALL '));
  return Object.fromEntries(rows.map((row) => [row.name, row.digest]));
}

/** The tables whose digests differ. */
export function changedTables(before: Record<string, string>, after: Record<string, string>): string[] {
  return Object.keys({ ...before, ...after }).filter((name) => before[name] !== after[name]);
}


// Objects both suites make, through the REST door as their owners would.

/** A saved project of the owner, synced by the studio service. */
export async function syncProject(t: TestApp, owner: TestUser): Promise<string> {
  const projectId = randomUUID();
  await syncSavedProject(t, { owner_user_id: owner.id, name: 'Authz', duration_sec: 1, aep_file_md5: randomMd5(), ae_version: '24.1' }, projectId);
  return projectId;
}

/** A 30-frame render of the saved project. */
export const jobBody = (projectId: string) => renderBody({ saved_project_id: projectId, quality: 'Low', duration_sec: 1 });

export async function submitJob(t: TestApp, owner: TestUser, projectId: string): Promise<string> {
  return (await submitRender(t, owner.token, { saved_project_id: projectId, quality: 'Low', duration_sec: 1 })).id;
}

export async function cancelledJob(t: TestApp, owner: TestUser, projectId: string): Promise<string> {
  const id = await submitJob(t, owner, projectId);
  expect((await t.rest('POST', `/v1/renders/${id}/cancel`, { token: owner.token, body: {} })).status).toBe(200);
  return id;
}

export async function createUpdate(t: TestApp, admin: TestUser): Promise<string> {
  return (await createNodeUpdate(t, admin.token)).id;
}

export const nodeBody = () => ({ name: `authz-${randomUUID().slice(0, 8)}`, region: 'eu', node_ip: '10.0.0.9', worker_port: 9000, current_ae_version: '24.1' });

export async function registerNode(t: TestApp): Promise<string> {
  return (await t.node(nodeBody().name)).id;
}

/** A new node an admin put into maintenance: one whose maintenance can end. */
export async function nodeInMaintenance(t: TestApp, admin: TestUser): Promise<string> {
  const nodeId = await registerNode(t);
  const started = await t.rest('POST', `/v1/nodes/${nodeId}/maintenance`, { token: admin.token });
  expect(started.status, JSON.stringify(started.body)).toBe(200);
  return nodeId;
}
