import { z } from 'zod';
import { ValidationError } from './errors.ts';

// No input of any service nests this deep, so a schema refuses whatever lies deeper; stopping
// there keeps a hostile JSON body of nested arrays from exhausting the stack.
const MAX_INPUT_DEPTH = 32;

/** Paths of the strings in input that hold a NUL character: PostgreSQL text cannot store one. */
function nulPaths(value: unknown, path: string[] = []): string[] {
  if (typeof value === 'string') return value.includes('\u0000') ? [path.join('.')] : [];
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || path.length >= MAX_INPUT_DEPTH) return [];
  return Object.entries(value).flatMap(([key, member]) => nulPaths(member, [...path, key]));
}

/** Parses input with a schema and turns every problem into one ValidationError. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const nul = nulPaths(input);
  if (nul.length > 0) throw new ValidationError(`Invalid ${what}`, nul.map((path) => ({ path, message: 'must not contain NUL characters' })));
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new ValidationError(
    `Invalid ${what}`,
    result.error.issues.flatMap((issue) =>
      // One problem per unknown field, named by its path, so that callers can point at it.
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => ({ path: [...issue.path, key].join('.'), message: 'is not a known field' }))
        : [{ path: issue.path.join('.'), message: issue.message }],
    ),
  );
}

export const uuid = z.uuid({ message: 'must be a UUID' });

/** The UUIDs among ids: a lookup of many leaves the others out, like ids that match no row. */
export function uuidsAmong(ids: readonly string[]): string[] {
  return ids.filter((id) => uuid.safeParse(id).success);
}

/**
 * A whole number, also given as query-string text. Only decimal digits count as one: Number()
 * would also read "0x10", "1e2", " 5 " or "" (as 0).
 */
const wholeNumber = (min: number, max: number) =>
  z.preprocess(
    (value) => (typeof value === 'string' && /^-?\d{1,15}$/.test(value) ? Number(value) : value),
    z
      .number({ message: 'must be a whole number' })
      .int({ message: 'must be a whole number' })
      .min(min, { message: `must be at least ${min}` })
      .max(max, { message: `must be at most ${max}` }),
  );

/** The most items one page may hold, on REST (page_size) and GraphQL (first, last) alike. */
export const MAX_PAGE_SIZE = 100;

/** Page-number pagination as the REST contract has it. */
export const pageSchema = z.object({
  page: wholeNumber(1, 100_000).default(1),
  pageSize: wholeNumber(1, MAX_PAGE_SIZE).default(20),
});
export type PageInput = z.input<typeof pageSchema>;

export interface PageMeta {
  page: number;
  pageSize: number;
  total: number;
  hasMore: boolean;
}

export function pageMeta(page: z.output<typeof pageSchema>, total: number): PageMeta {
  return { page: page.page, pageSize: page.pageSize, total, hasMore: page.page * page.pageSize < total };
}
