/** Small models and data for the training tests (no ../shared needed). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomModel } from '../src/bench/random-model.js';
import { saveModel } from '../src/io/model-folder.js';
import { projectDir } from '../src/util/shared.js';
import type { DType } from '../src/engine/dtype.js';

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A random LLaMA (hidden 32, 2 blocks unless asked) with the project's default tokenizer (vocab 4096). */
export function tinyModelDir(dir: string, dtype: DType = 'f32', tied = false, layers = 2): string {
  const cfg = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 32, intermediate_size: 64, num_hidden_layers: layers,
    num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 4096, rms_norm_eps: 1e-5, rope_theta: 10000,
    max_position_embeddings: 512, tie_word_embeddings: tied, bos_token_id: 1, eos_token_id: 2,
  };
  saveModel(randomModel(cfg, dtype, 11), dir, { sourceDir: projectDir('assets', 'default'), force: true });
  return dir;
}

const WORDS = 'the a cat dog ran sat on mat house tree big small red blue happy sad went saw found little girl boy day sun'.split(' ');

/** Plain-text documents, one a line (deterministic). */
export function writeText(file: string, docs: number, seed = 1): string {
  let s = seed;
  const w = () => WORDS[(s = (s * 1103515245 + 12345) & 0x7fffffff) % WORDS.length]!;
  const lines: string[] = [];
  for (let d = 0; d < docs; d++) lines.push(Array.from({ length: 8 + (d % 13) }, w).join(' ') + '.');
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** Alpaca records (some with input) as a .json array. */
export function writeAlpaca(file: string, n: number): string {
  const recs = Array.from({ length: n }, (_, i) => ({
    instruction: `Add the numbers ${i} and ${i + 2}.`,
    input: i % 3 === 0 ? `The first is ${i}.` : '',
    output: `The sum is ${2 * i + 2}.`,
  }));
  fs.writeFileSync(file, JSON.stringify(recs, null, 1));
  return file;
}
