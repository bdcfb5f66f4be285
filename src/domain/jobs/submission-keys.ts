// Idempotent render submissions. A caller that never heard the answer to a submission (a cut
// connection, a timeout) sends it again with the same key and is answered the job the first one
// made, created and charged once. The key is claimed by inserting its row first in the
// transaction that creates and charges the job: another submission with the same key waits on
// that row's primary key until the transaction ends, then answers its job, or claims the key
// itself if it rolled back. A refused submission keeps no key: it changed nothing, so sending it
// again with its key tries again.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Prisma, PrismaClient, RenderJob, SubmissionKey } from '../../generated/prisma/client.ts';
import type { Tx } from '../db.ts';
import { ConflictError } from '../errors.ts';
import { parseInput } from '../validation.ts';

/** How long a key answers with its job at least; the hourly log retention loop deletes older ones. */
export const SUBMISSION_KEY_RETENTION_HOURS = 24;
export const MAX_SUBMISSION_KEY_LENGTH = 255;

const keySchema = z.strictObject({
  idempotencyKey: z
    .string()
    .regex(
      new RegExp(`^[\\x21-\\x7e]{1,${MAX_SUBMISSION_KEY_LENGTH}}$`),
      `must be 1 to ${MAX_SUBMISSION_KEY_LENGTH} visible ASCII characters (no spaces)`,
    ),
});

/** A submission's hold on its key. */
export interface SubmissionClaim {
  userId: string;
  key: string;
  /** sha256 of the canonical request: tells a retry from another request under the same key. */
  requestHash: string;
}

/**
 * The claim of a submission (null without a key), its key checked. The request is the parsed
 * submission, so the same render asked with its fields in another order or spelling (REST's
 * snake_case, GraphQL's camelCase) or with a default written out is the same request.
 */
export function submissionClaim(userId: string, key: string | undefined, request: Record<string, unknown>): SubmissionClaim | null {
  if (key === undefined) return null;
  const { idempotencyKey } = parseInput(keySchema, { idempotencyKey: key }, 'idempotency key');
  const canonical = JSON.stringify(request, Object.keys(request).sort());
  return { userId, key: idempotencyKey, requestHash: createHash('sha256').update(canonical).digest('hex') };
}

// JSON has no BigInt or Date: the answered job's fields of those types are stored tagged, so that
// a replay answers exactly what the first submission did.
type StoredValue = string | number | boolean | null | { bigint: string } | { date: string };

function storedJob(job: RenderJob): Prisma.InputJsonObject {
  return Object.fromEntries(
    Object.entries(job).map(([field, value]: [string, unknown]) => [
      field,
      typeof value === 'bigint' ? { bigint: value.toString() } : value instanceof Date ? { date: value.toISOString() } : value,
    ]),
  ) as Prisma.InputJsonObject;
}

function answeredJob(answer: Prisma.JsonValue): RenderJob {
  return Object.fromEntries(
    Object.entries(answer as Record<string, StoredValue>).map(([field, value]) => [
      field,
      value === null || typeof value !== 'object' ? value : 'bigint' in value ? BigInt(value.bigint) : new Date(value.date),
    ]),
  ) as unknown as RenderJob;
}

const keyOf = (claim: SubmissionClaim) => ({ userId_idempotencyKey: { userId: claim.userId, idempotencyKey: claim.key } });

/** The job the key's first submission made, as it was answered; CONFLICT when that one asked for another render. */
function replay(row: SubmissionKey, claim: SubmissionClaim): RenderJob {
  if (row.requestHash !== claim.requestHash) {
    throw new ConflictError(
      `Idempotency key ${claim.key} was already used for a different render request (job ${row.renderJobId}); send a new key with a new request`,
      { idempotency_key: claim.key, render_job_id: row.renderJobId },
    );
  }
  return answeredJob(row.answer);
}

/** Before any work: the answer of an earlier submission with this key, so a plain retry costs one read. */
export async function earlierAnswer(prisma: PrismaClient, claim: SubmissionClaim): Promise<RenderJob | null> {
  const row = await prisma.submissionKey.findUnique({ where: keyOf(claim) });
  return row && replay(row, claim);
}

/**
 * First in the transaction that creates the job: claims the key and answers null, or answers the
 * job of the submission that holds it once that one committed (the insert waits for it).
 */
export async function claimSubmission(tx: Tx, claim: SubmissionClaim, now: Date): Promise<RenderJob | null> {
  const { count } = await tx.submissionKey.createMany({
    data: [{ userId: claim.userId, idempotencyKey: claim.key, requestHash: claim.requestHash, createdAt: now }],
    skipDuplicates: true,
  });
  if (count === 1) return null;
  return replay(await tx.submissionKey.findUniqueOrThrow({ where: keyOf(claim) }), claim);
}

/** Last in that transaction: the job as answered, for the key's retries to answer again. */
export async function recordSubmission(tx: Tx, claim: SubmissionClaim, job: RenderJob): Promise<void> {
  await tx.submissionKey.update({ where: keyOf(claim), data: { renderJobId: job.id, answer: storedJob(job) } });
}

/**
 * Deletes the keys older than the retention. One statement: run hourly, it finds about an hour
 * of submissions, small rows with nothing referring to them.
 */
export async function pruneSubmissionKeys(prisma: PrismaClient, now: Date): Promise<{ deleted: number }> {
  const before = new Date(now.getTime() - SUBMISSION_KEY_RETENTION_HOURS * 60 * 60 * 1000);
  const { count } = await prisma.submissionKey.deleteMany({ where: { createdAt: { lt: before } } });
  return { deleted: count };
}
