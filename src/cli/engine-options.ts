/**
 * `--engine ours|llama.cpp` for the commands that run a model forward (generate, ppl, eval, bench).
 * Our engine is the default; llama.cpp runs a cached GGUF export of the same model.
 */
import type { Command } from 'commander';
import { GGUF_DTYPES, type GgufDtype } from '../export/gguf-llama.js';
import { LlamaCppEngine } from '../llamacpp/engine.js';
import { cachedGgufForFolder } from '../llamacpp/gguf-cache.js';
import { int, oneOf } from './options.js';

export const ENGINES = ['ours', 'llama.cpp'] as const;
export type EngineName = (typeof ENGINES)[number];

export interface EngineOpts {
  engine: EngineName;
  ggufDtype?: GgufDtype;
  ggufCache?: string;
  threads?: number;
}

export function engineOptions(cmd: Command, defaultDtype: string): Command {
  return cmd
    .option('--engine <name>', 'inference engine: ours or llama.cpp (through node-llama-cpp, on a cached GGUF export)', oneOf('--engine', ENGINES), 'ours')
    .option('--gguf-dtype <t>', `llama.cpp: dtype of the GGUF export (f32, f16, bf16; default ${defaultDtype})`, oneOf('--gguf-dtype', GGUF_DTYPES))
    .option('--threads <n>', 'llama.cpp: CPU threads (default: all cores)', int('--threads'))
    .option('--gguf-cache <dir>', 'llama.cpp: folder of cached GGUF exports (default runs/gguf-cache or $SHORTENED_GGUF_CACHE)');
}

/**
 * llama.cpp on the model folder's cached GGUF. f32 exports also get a float32 KV cache, so that
 * results match our engine's float32 arithmetic; other dtypes run as llama.cpp runs by default.
 */
export async function openLlamaCpp(modelDir: string, o: EngineOpts, defaultDtype: GgufDtype, contextSize?: number): Promise<LlamaCppEngine> {
  const dtype = o.ggufDtype ?? defaultDtype;
  const file = cachedGgufForFolder(modelDir, dtype, o.ggufCache);
  return LlamaCppEngine.open(file, { contextSize, f32Cache: dtype === 'f32', threads: o.threads });
}
