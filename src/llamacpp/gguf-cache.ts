/**
 * GGUF exports cached for the llama.cpp engine: the first `--engine llama.cpp` run on a model
 * exports it (atomically) into the cache folder, later runs reuse the file. The key covers what the
 * export depends on: the format version, dtype, the model folder's path, its config and tokenizer
 * files' contents and its weight files' sizes and modification times. The model folder itself is
 * only read.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../io/model-folder.js';
import { exportGguf, type GgufDtype } from '../export/gguf-llama.js';
import type { LlamaModel } from '../model/weights.js';

/** Bump when the exporter's output changes, so old cached files are not reused. */
const EXPORT_VERSION = 1;

export function defaultCacheDir(): string {
  return process.env['SHORTENED_GGUF_CACHE'] ?? path.resolve('runs', 'gguf-cache');
}

function folderKey(dir: string, dtype: GgufDtype): string {
  const h = crypto.createHash('sha256');
  h.update(`v${EXPORT_VERSION}\0${dtype}\0${path.resolve(dir)}\0`);
  for (const f of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, f);
    const st = fs.statSync(p);
    if (!st.isFile()) continue;
    if (f.endsWith('.json') || f.endsWith('.jinja')) h.update(`${f}\0`).update(fs.readFileSync(p));
    else if (f.endsWith('.safetensors')) h.update(`${f}\0${st.size}\0${st.mtimeMs}\0`);
  }
  return h.digest('hex').slice(0, 16);
}

/** Path of the cached GGUF of a model folder, exported first if missing. */
export function cachedGgufForFolder(dir: string, dtype: GgufDtype, cacheDir = defaultCacheDir(), log: (s: string) => void = (s) => process.stderr.write(s + '\n')): string {
  const name = path.basename(path.resolve(dir));
  const file = path.join(cacheDir, `${name}-${folderKey(dir, dtype)}-${dtype}.gguf`);
  if (!fs.existsSync(file)) {
    log(`llama.cpp: exporting ${dir} to ${file}`);
    exportGguf(loadModel(dir), file, { dtype, tokenizerDir: dir, name });
  }
  return file;
}

/** Path of the cached GGUF of a generated model (e.g. seeded random weights) named by `key`; built only if missing. */
export function cachedGgufForModel(build: () => LlamaModel, key: string, dtype: GgufDtype, cacheDir = defaultCacheDir()): string {
  const file = path.join(cacheDir, `${key.replace(/[^A-Za-z0-9._-]/g, '_')}-v${EXPORT_VERSION}-${dtype}.gguf`);
  if (!fs.existsSync(file)) exportGguf(build(), file, { dtype, tokenizerDir: null, name: key });
  return file;
}
