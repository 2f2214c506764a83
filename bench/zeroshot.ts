/**
 * Zero-shot evaluation throughput on a TinyLlama-1.1B-shaped random bf16 model with the Llama 2
 * tokenizer (TinyLlama's): examples/s and tokens/s on real task examples, scored
 *   shared      each example's context run once (contexts of several examples batched), its
 *               choices continued together from the context's KV cache
 *   per-choice  every (context, choice) pair a full sequence, batched the same way (the
 *               harness's way: no sharing)
 * in the same run, so the ratio is the saving from sharing the context.
 *   npm run bench:zeroshot [-- --layers 22 --docs 8 --tasks hellaswag,arc_easy,piqa]
 */
import { randomModel, TINYLLAMA_CONFIG } from '../src/bench/random-model.js';
import { LlamaRunner } from '../src/model/llama.js';
import { EngineScorer } from '../src/eval/loglikelihood.js';
import { loadBuiltinTask, encodeDocPairs } from '../src/eval/zeroshot/index.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { sharedDir, hasShared } from '../src/util/shared.js';
import type { LoglikelihoodRequest } from '../src/eval/loglikelihood-types.js';
import { argNumber, argString } from '../src/util/args.js';

if (!hasShared()) { console.error('needs ../shared (Llama 2 tokenizer and task data)'); process.exit(1); }
const layers = argNumber('layers', 22), nDocs = argNumber('docs', 8);
const tasks = argString('tasks', 'hellaswag,arc_easy,piqa').split(',');
const tok = loadTokenizer(sharedDir('tokenizers/llama2'));
const model = randomModel({ ...TINYLLAMA_CONFIG, num_hidden_layers: layers }, 'bf16');
const run = new LlamaRunner(model);
console.log(`TinyLlama-1.1B shapes (${layers} layers, bf16), ${nDocs} examples per task`);
await run.forward(Int32Array.from([1, 2, 3, 4]), 1, 4); // warm-up

console.log('\ntask        mode      examples/s   tokens/s   tokens run   seconds   saving');
for (const name of tasks) {
  const task = loadBuiltinTask(name, sharedDir('data/eval/zeroshot'), 'skip');
  const docs = task.docs.slice(0, nDocs);
  const reqs: LoglikelihoodRequest[] = docs.flatMap((d) => encodeDocPairs(tok, d.pairs));
  const res: Record<string, { s: number; tokens: number }> = {};
  for (const mode of ['shared', 'per-choice'] as const) {
    const scorer = new EngineScorer(run, { shareContext: mode === 'shared' });
    const t0 = performance.now();
    await scorer.score(reqs);
    const s = (performance.now() - t0) / 1000;
    res[mode] = { s, tokens: scorer.stats.tokensComputed };
    console.log(`${task.name.padEnd(11)} ${mode.padEnd(10)} ${(docs.length / s).toFixed(2).padStart(9)} ${(scorer.stats.tokensComputed / s).toFixed(0).padStart(10)} ${String(scorer.stats.tokensComputed).padStart(12)} ${s.toFixed(2).padStart(9)}   ${mode === 'per-choice' ? `${(res['per-choice']!.s / res['shared']!.s).toFixed(2)}x time, ${(res['per-choice']!.tokens / res['shared']!.tokens).toFixed(2)}x tokens` : ''}`);
  }
}
