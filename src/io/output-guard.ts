/**
 * Outputs never touch inputs. Every command that writes a folder checks, before any work, that
 * its output neither is, nor contains, nor sits inside any of its inputs (paths compared after
 * resolving symbolic links), with or without --force. And --force only ever replaces a folder
 * that shorten wrote: each output folder carries a small marker file, so a user's own folder (a
 * downloaded model, a project) is never deleted because of a mistyped --out.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';

/** The marker every output folder of shorten carries. */
export const OUTPUT_MARKER = '.shorten-output';

/** Absolute path with symbolic links resolved as far as the path exists. */
export function resolvedPath(p: string): string {
  let head = path.resolve(p);
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(head), ...tail);
    } catch {
      const up = path.dirname(head);
      if (up === head) return path.join(head, ...tail);
      tail.unshift(path.basename(head));
      head = up;
    }
  }
}

const inside = (child: string, parent: string): boolean => child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);

/**
 * Refuse `out` if it is, contains, or lies inside one of `inputs` (undefined entries are skipped).
 * `insideOk` allows an output inside an input folder (a report written into the folder of results
 * it reads). `flag` names the option in the message.
 */
export function guardOutput(out: string, inputs: readonly (string | undefined)[], flag = '--out', insideOk = false): void {
  const o = resolvedPath(out);
  for (const input of inputs) {
    if (input === undefined) continue;
    const i = resolvedPath(input);
    const why = o === i ? 'is' : inside(o, i) && !insideOk ? 'is inside' : inside(i, o) ? 'contains' : null;
    if (why) throw new UserError(`${flag} ${out} ${why} the input ${input}: outputs are never written over or into an input (choose another ${flag})`);
  }
}

/** Whether `dir` may be replaced by --force: a folder shorten wrote (it has the marker), or an empty one. */
export function isReplaceableOutput(dir: string): boolean {
  if (!fs.statSync(dir).isDirectory()) return false;
  return fs.existsSync(path.join(dir, OUTPUT_MARKER)) || fs.readdirSync(dir).length === 0;
}

/** Throw unless an existing `dir` may be replaced with --force. */
export function checkReplaceable(dir: string, flag = '--out'): void {
  if (fs.existsSync(dir) && !isReplaceableOutput(dir)) {
    throw new UserError(`${flag} ${dir} exists and was not written by shorten (no ${OUTPUT_MARKER}): --force only replaces earlier outputs; remove it yourself or choose another ${flag}`);
  }
}

/** Mark `dir` as an output of shorten. */
export function writeOutputMarker(dir: string): void {
  fs.writeFileSync(path.join(dir, OUTPUT_MARKER), JSON.stringify({ written_by: 'shorten' }) + '\n');
}

/**
 * Everything a command checks before any work when it will write the folder `out`: no overlap
 * with an input, an existing folder only with --force, and then only one that shorten wrote.
 */
export function checkOutputFolder(out: string, force: boolean, inputs: readonly (string | undefined)[]): void {
  guardOutput(out, inputs);
  if (fs.existsSync(out) && !force) throw new UserError(`output folder exists: ${out} (use --force to replace it)`);
  checkReplaceable(out);
}
