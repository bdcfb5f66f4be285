// `npm run db:diff` as a newcomer calls it: help, and bad arguments answered with the usage.
import { describe, expect, it } from 'vitest';
import { runScript } from '../support/command.ts';

const dbDiff = (args: string[]) => runScript('scripts/schema-ddl.ts', args);

describe('npm run db:diff', { timeout: 60_000 }, () => {
  it('prints its usage on --help', async () => {
    const { code, stdout } = await dbDiff(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: npm run db:diff [-- --from <schema.prisma>]');
  });

  it.each([
    ['an unknown option', ['--to', 'x.prisma'], "Unknown option '--to'"],
    ['a positional argument', ['old.prisma'], "Unexpected argument 'old.prisma'"],
    ['a --from file that does not exist', ['--from', 'no-such.prisma'], '--from: no such file "no-such.prisma"'],
  ])('exits 2 with usage for %s', async (_name, args, problem) => {
    const { code, stdout, stderr } = await dbDiff(args);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.split('\n')[0]).toContain(problem);
    expect(stderr).toContain('Usage: npm run db:diff');
    expect(stderr).not.toMatch(/^\s+at /m);
  });
});
