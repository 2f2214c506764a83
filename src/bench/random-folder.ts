/**
 * A random model of a given shape written to disk as a Hugging Face folder: bf16 safetensors
 * sharded at 5 GB as save_pretrained shards, tensor by tensor (the whole model is never in
 * memory), config.json, and the Llama 2 tokenizer from ../shared when it is there (ids below
 * 32000 exist in every shape here). Speed and memory depend only on shapes, so benchmarks that
 * run separate processes, or other engines, read the same weights from it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../io/config.js';
import { writeSafetensors } from '../io/safetensors.js';
import { writeOutputMarker } from '../io/output-guard.js';
import { randomTensor } from './random-model.js';
import { blockShapes, hfBlockName, type BlockWeightName } from '../model/weights.js';
import { sharedDir, hasShared } from '../util/shared.js';
import { mulberry32 } from '../util/rng.js';

/** Write the folder at `modelDir` (staged next to it, then renamed into place). */
export function writeRandomFolder(modelDir: string, rawConfig: Record<string, unknown>): void {
  const c = parseConfig(rawConfig);
  const names: [string, number[], boolean][] = [['model.embed_tokens.weight', [c.vocabSize, c.hiddenSize], false]];
  for (let i = 0; i < c.numLayers; i++) {
    for (const [nm, shape] of Object.entries(blockShapes(c, i))) names.push([hfBlockName(i, nm as BlockWeightName), shape!, nm.endsWith('Norm')]);
  }
  names.push(['model.norm.weight', [c.hiddenSize], true], ['lm_head.weight', [c.vocabSize, c.hiddenSize], false]);
  const shards: (typeof names)[] = [[]];
  let size = 0;
  for (const t of names) {
    const b = 2 * t[1].reduce((a, d) => a * d, 1);
    if (size > 0 && size + b > 5e9) { shards.push([]); size = 0; }
    shards[shards.length - 1]!.push(t);
    size += b;
  }
  const tmp = `${modelDir}.tmp-${process.pid}`;
  fs.mkdirSync(tmp, { recursive: true });
  const rng = mulberry32(1);
  const weightMap: Record<string, string> = {};
  let total = 0;
  shards.forEach((s, k) => {
    const file = `model-${String(k + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    const tensors = s.map(([name, shape, norm]) => [name, randomTensor(shape, 'bf16', rng, norm ? 0.1 : 0.02, norm ? 1 : 0)] as const);
    writeSafetensors(path.join(tmp, file), tensors.map(([a, t]) => [a, t]));
    for (const [name, t] of tensors) { weightMap[name] = file; total += t.data.byteLength; }
    console.log(`  wrote ${file} (${k + 1}/${shards.length})`);
  });
  fs.writeFileSync(path.join(tmp, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  fs.writeFileSync(path.join(tmp, 'config.json'), JSON.stringify({ ...rawConfig, torch_dtype: 'bfloat16' }, null, 2));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) if (hasShared()) fs.copyFileSync(sharedDir('tokenizers', 'llama2', f), path.join(tmp, f));
  writeOutputMarker(tmp);
  fs.renameSync(tmp, modelDir);
}
