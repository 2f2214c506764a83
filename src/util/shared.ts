/** Where the read-only shared data lives: ../shared beside the project, or $SHORTENED_SHARED. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export function projectDir(...parts: string[]): string {
  return path.join(projectRoot, ...parts);
}

export function sharedDir(...parts: string[]): string {
  const base = process.env['SHORTENED_SHARED'] ?? path.resolve(projectRoot, '..', 'shared');
  return path.join(base, ...parts);
}

export function hasShared(): boolean {
  return fs.existsSync(sharedDir('README.md'));
}
