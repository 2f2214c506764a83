/**
 * `--name value` flags for the bench/ and scripts/ entry points (the CLI proper uses commander).
 * A flag given without a value, or a number flag that does not parse, is a one-line error.
 */
import { UserError } from './errors.js';

/** The value after `--name`, or undefined when the flag is absent. */
export function argValue(name: string, argv: readonly string[] = process.argv): string | undefined {
  const flag = name.startsWith('--') ? name : `--${name}`;
  const i = argv.indexOf(flag);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new UserError(`${flag} needs a value`);
  return v;
}

export function argString(name: string, def: string, argv: readonly string[] = process.argv): string {
  return argValue(name, argv) ?? def;
}

export function argNumber(name: string, def: number, argv: readonly string[] = process.argv): number {
  const v = argValue(name, argv);
  if (v === undefined) return def;
  const x = Number(v);
  if (!Number.isFinite(x)) throw new UserError(`--${name.replace(/^--/, '')} expects a number, got '${v}'`);
  return x;
}

/** True when the bare flag `--name` is present. */
export function argFlag(name: string, argv: readonly string[] = process.argv): boolean {
  return argv.includes(name.startsWith('--') ? name : `--${name}`);
}
