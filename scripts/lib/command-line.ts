// The one way the project's commands read their arguments, so that every one of them answers
// --help on stdout with exit 0, and a bad argument with the problem and the usage on stderr with
// exit 2 (the convention of command-line tools), never with a stack trace.
import { type ParseArgsConfig, parseArgs } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Prints the problem and the usage on stderr and exits 2. */
export function usageError(usage: string, problem: string): never {
  process.stderr.write(`${problem}\n\n${usage.trimEnd()}\n`);
  process.exit(2);
}

/**
 * Parses process.argv strictly (unknown options and positionals are errors) after adding
 * `--help`/`-h`, which prints the usage and exits.
 */
export function parseCommandLine<const T extends Options>(usage: string, options: T) {
  type Values = ReturnType<typeof parseArgs<{ options: T; strict: true; allowPositionals: false }>>['values'];
  let values: Values & { help?: boolean };
  try {
    ({ values } = parseArgs({
      options: { ...options, help: { type: 'boolean', short: 'h', default: false } },
      strict: true,
      allowPositionals: false,
    }) as { values: Values & { help?: boolean } });
  } catch (error) {
    usageError(usage, error instanceof Error ? error.message : String(error));
  }
  if (values.help) {
    process.stdout.write(`${usage.trimEnd()}\n`);
    process.exit(0);
  }
  return values as Values;
}

/**
 * A numeric option: undefined when absent, otherwise a finite number that passes `check`, or a
 * usage error naming the option.
 */
export function numberOption(
  usage: string,
  name: string,
  value: string | undefined,
  check: (n: number) => boolean,
): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed) || !check(parsed)) usageError(usage, `--${name}: bad value "${value}"`);
  return parsed;
}
