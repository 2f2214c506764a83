/** Parsers for CLI option values: each rejects bad input with a one-line UserError. */
import { UserError } from '../util/errors.js';

export function int(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new UserError(`${name} must be an integer (got '${v}')`);
    return n;
  };
}

export function float(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new UserError(`${name} must be a number (got '${v}')`);
    return n;
  };
}

export function intList(name: string) {
  return (v: string): number[] => v.split(',').filter((s) => s.trim() !== '').map((s) => int(name)(s.trim()));
}

export function oneOf<T extends string>(name: string, values: readonly T[]) {
  return (v: string): T => {
    if (!(values as readonly string[]).includes(v)) throw new UserError(`${name} must be one of ${values.join(', ')} (got '${v}')`);
    return v as T;
  };
}

export function printJson(x: unknown): void {
  process.stdout.write(JSON.stringify(x, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
}
