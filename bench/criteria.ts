/**
 * Cost of the block-importance criteria as multiples of one forward pass, measured in one run on a
 * TinyLlama-1.1B-shaped random bf16 model with 10x128 calibration tokens. Ideal: taylor ~ 3
 * forwards (forward + backward without weight gradients outside blocks), ppl ~ L/2 forwards.
 *   npm run bench:criteria [-- --layers 22 --batch 10 --seq 128]
 */
import { randomModel, TINYLLAMA_CONFIG } from '../src/bench/random-model.js';
import { LlamaRunner } from '../src/model/llama.js';
import { taylorScores } from '../src/prune/criteria/taylor.js';
import { pplScores } from '../src/prune/criteria/ppl.js';
import { blockInfluence } from '../src/prune/criteria/hidden.js';
import { magnitudeScores } from '../src/prune/criteria/magnitude.js';
import { mulberry32 } from '../src/util/rng.js';
import { argNumber } from '../src/util/args.js';


const layers = argNumber('layers', 22), B = argNumber('batch', 10), T = argNumber('seq', 128);
console.log(`TinyLlama-1.1B shapes, ${layers} layers, bf16, calibration ${B}x${T} tokens`);
const model = randomModel({ ...TINYLLAMA_CONFIG, num_hidden_layers: layers }, 'bf16');
const run = new LlamaRunner(model);
const rng = mulberry32(3);
const ids = Int32Array.from({ length: B * T }, () => Math.floor(rng() * 32000));
const batches = [{ ids, B, T }];

async function time(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
}

await run.forward(ids.subarray(0, T), 1, T); // warm-up
const fwd = await time(() => run.forward(ids, B, T));
const rows: [string, number, string][] = [['forward (reference)', fwd, '1']];
rows.push(['magnitude', await time(async () => magnitudeScores(model)), '~0 (no forward)']);
rows.push(['bi (one forward, hidden states)', await time(() => blockInfluence(run, batches)), '1']);
rows.push(['taylor (forward + backward)', await time(() => taylorScores(run, batches)), '~3']);
rows.push(['ppl (L removals, shared prefixes)', await time(() => pplScores(run, batches)), `~${(layers / 2 + 1).toFixed(1)} (L/2 + 1)`]);
console.log('\ncriterion                            seconds   x forward   ideal');
for (const [name, s, ideal] of rows) console.log(`${name.padEnd(36)} ${s.toFixed(2).padStart(8)}   ${(s / fwd).toFixed(2).padStart(9)}   ${ideal}`);
