import { Prisma } from '../generated/prisma/client.ts';

/** A transaction's client: services write several rows that must land together or not at all. */
export type Tx = Prisma.TransactionClient;

export function isUniqueViolation(error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002';
}
