// Each rule has one home, and these checks keep it there: a new path that writes a job's step or
// a node's status on its own, takes an advisory lock by number, or imports across the layers
// fails here, before it can skip what the owner does (publishing a job's events, telling its
// owner it finished, respecting a node's administrative state).
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)))
    .filter((file) => !file.startsWith('src/generated/'));
}

const files = [...sources('src'), ...sources('rest-compat')];
const text = new Map(files.map((file) => [file, readFileSync(join(ROOT, file), 'utf8')]));

/** The argument list of every call of `callee(` in the source, parentheses balanced. */
function callArguments(source: string, callee: RegExp): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(new RegExp(callee.source, 'g'))) {
    let depth = 0;
    const start = (match.index ?? 0) + match[0].length;
    for (let at = start - 1; at < source.length; at++) {
      if (source[at] === '(') depth++;
      if (source[at] === ')' && --depth === 0) {
        found.push(source.slice(start, at));
        break;
      }
    }
  }
  return found;
}

/**
 * Files that write `column` of `model` (Prisma delegate) or `table` (SQL), except SQL that sets
 * it to what the owner's `sqlRule` renders.
 */
function writersOf(model: string, table: string, column: string, sqlRule = '(?!)'): string[] {
  const delegateWrite = new RegExp(`\\.${model}\\.(update|updateMany|upsert|create|createMany)\\(`);
  const dataKey = new RegExp(`\\b${column}\\s*:`);
  const sqlWrite = new RegExp(`UPDATE\\s+${table}\\b[^;\`]*?\\bSET\\b[^;\`]*?\\b${column}\\s*=(?!\\s*\\$\\{${sqlRule}\\()`, 'i');
  return files.filter((file) => {
    const source = text.get(file) as string;
    return callArguments(source, delegateWrite).some((args) => dataKey.test(args)) || sqlWrite.test(source);
  });
}

/** The modules the file imports from (type-only imports too when asked: they couple modules all the same). */
function importsOf(file: string, withTypes = false): string[] {
  const source = text.get(file) as string;
  const statement = withTypes ? /^import\s+[^;]*?from\s+'([^']+)'/gm : /^import\s+(?!type\s)[^;]*?from\s+'([^']+)'/gm;
  return [...source.matchAll(statement)].map((match) =>
    relative(ROOT, resolve(ROOT, file, '..', match[1] as string)),
  );
}

describe('one owner per rule', () => {
  it("moves a job only through the unit of work, which publishes the change and tells the owner it finished", () => {
    expect(writersOf('renderJob', 'render_jobs', 'step')).toEqual(['src/domain/jobs/job-changes.ts']);
  });

  it('moves a node only by the status table (moveNode or its SQL rendering), which keeps Maintenance and Updating', () => {
    expect(writersOf('renderNode', 'render_nodes', 'status', 'statusAfter\\w*Sql')).toEqual([]);
  });

  it("decides whose jobs, exports and snapshots a caller reads in one guard, which each of their services scopes its reads by", () => {
    expect(files.filter((file) => /\bisAdmin\s*\?\s*\{\s*\}/.test(text.get(file) as string))).toEqual(['src/domain/guards.ts']);
    expect(files.filter((file) => /\breadScope\(actor\)/.test(text.get(file) as string)).sort()).toEqual([
      'src/domain/exports/export-service.ts',
      'src/domain/jobs/job-service.ts',
      'src/domain/snapshots/snapshot-service.ts',
    ]);
  });

  it('locks jobs only in the unit of work, all of a change at once and in id order, so that no two changes deadlock', () => {
    const lockers = files.filter((file) => /\brender_jobs\b[^;`]*?\bFOR\s+(NO\s+KEY\s+)?(UPDATE|SHARE)\b/i.test(text.get(file) as string));
    expect(lockers).toEqual(['src/domain/jobs/job-changes.ts']);
  });

  it('takes advisory locks by name from the registry', () => {
    const lockers = files.filter((file) => /pg_(try_)?advisory_(xact_)?lock/.test(text.get(file) as string)).sort();
    expect(lockers).toEqual(['src/adapters/db/migrator.ts', 'src/domain/locks.ts']);
  });
});

describe('layers', () => {
  const domain = files.filter((file) => file.startsWith('src/domain/'));

  it('keeps the domain free of adapters and transports', () => {
    const outward = domain.flatMap((file) =>
      importsOf(file, true)
        .filter((target) => !target.startsWith('src/domain/') && !['src/ports.ts'].includes(target) && target.startsWith('src/') && !target.startsWith('src/generated/'))
        .map((target) => `${file} -> ${target}`),
    );
    expect(outward).toEqual([]);
  });

  it('has no transport import another: REST and GraphQL share only the transport-neutral mapping', () => {
    const transports = { 'rest-compat/': ['src/http/', 'src/graphql/'], 'src/graphql/': ['src/http/', 'rest-compat/'] };
    const crossing = Object.entries(transports).flatMap(([from, forbidden]) =>
      files
        .filter((file) => file.startsWith(from))
        .flatMap((file) => importsOf(file, true).filter((target) => forbidden.some((prefix) => target.startsWith(prefix))).map((target) => `${file} -> ${target}`)),
    );
    expect(crossing).toEqual([]);
  });

  it('has no service import another service', () => {
    const services = domain.filter((file) => file.endsWith('-service.ts'));
    const crossing = services.flatMap((file) =>
      importsOf(file)
        .filter((target) => target !== file && services.includes(target))
        .map((target) => `${file} -> ${target}`),
    );
    expect(crossing).toEqual([]);
  });
});

describe("the README's table of where rules live", () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Where rules live'));
  const table = section.slice(0, section.indexOf('\n\n', section.indexOf('| Rule')));
  const rows = [...table.matchAll(/^\| (.+?) \| (.+?) \|$/gm)].slice(2).map((match) => ({ rule: match[1] as string, file: match[2] as string }));

  it('points each rule at one file that exists', () => {
    expect(rows.length).toBeGreaterThan(0);
    for (const { rule, file } of rows) {
      expect(file, rule).toMatch(/^`[^`\s]+`$/);
      expect(text.has(file.slice(1, -1)), `${rule}: ${file}`).toBe(true);
    }
  });

  it('answers what operators ask first', () => {
    const rules = rows.map((row) => row.rule).join('\n');
    for (const rule of ["A job's price", 'goes Offline', "a dead node's chunk", 'cancel or retry', 'The retry and crash limits', 'The lease check', 'The event order guarantee']) {
      expect(rules).toContain(rule);
    }
  });

  it('is right that the rule is written in that file alone', () => {
    const owners: Array<[RegExp, string]> = [
      [/\bfunction quoteRender\b|\bBASE_RATE_PER_SECOND\s*=/, 'src/domain/billing/pricing.ts'],
      [/\bfunction checkPriceTypeAllowed\b|price_type (Plan|Reseller)/, 'src/domain/billing/pricing.ts'],
      [/\bfunction usableWhere\b|usedCount:\s*\{\s*(lt|increment)/, 'src/domain/billing/discount-codes.ts'],
      [/\bHEARTBEAT_TIMEOUT_MS\s*=|\bMISSED_HEARTBEATS_FOR_OFFLINE\s*=/, 'src/domain/nodes/node-status.ts'],
      [/\bMAX_CHUNK_ATTEMPTS\s*=|\bMAX_SNAPSHOT_ATTEMPTS\s*=|\bBLOCK_AFTER_JOB_FAILURES\s*=|\bRESTART_AFTER_\w+\s*=/, 'src/domain/scheduling/failure-policy.ts'],
      [/new StaleLeaseError\(`(Frame job|This node holds no open)/, 'src/domain/work/leases.ts'],
      [/event_seq = j\.event_seq \+ 1/, 'src/domain/jobs/job-events.ts'],
      [/\bfunction refundOnCancel\b/, 'src/domain/billing/pricing.ts'],
      [/\bfunction recutChunk\b|\bfunction releaseNodeWork\b|\bfunction fitPendingChunks\b/, 'src/domain/work/recut.ts'],
      [/\bCHUNKS_PER_NODE\s*=|\bSPLIT_FACTOR\s*=/, 'src/domain/jobs/chunking.ts'],
      [/\b(NOT_FOUND|INVALID_STATE|STALE_LEASE|PAYMENT_REQUIRED)['"]?\s*:\s*40\d\b|readonly status = 4\d\d/, 'src/transport/errors.ts'],
    ];
    for (const [rule, owner] of owners) {
      expect(files.filter((file) => rule.test(text.get(file) as string)), String(rule)).toEqual([owner]);
    }
  });
});
