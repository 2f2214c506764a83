/**
 * Depth pruning of the real stories260K model, every criterion side by side: per-block scores,
 * the blocks each criterion removes for 1 and 2 blocks, and the TinyStories perplexity of each
 * pruned model on held-out text, in one table (Markdown + JSON in runs/stories260k-prune/).
 * stories260K has 5 blocks, so the "+" heuristic (which would protect all of them) is off.
 *   npm run build && node dist/scripts/stories260k-prune-table.js
 */
import fs from 'node:fs';
import path from 'node:path';
import { importLlama2c } from '../src/io/llama2c.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { loadModel } from '../src/io/model-folder.js';
import { LlamaRunner } from '../src/model/llama.js';
import { pruneModelDir } from '../src/prune/pipeline.js';
import { CRITERIA } from '../src/prune/score.js';
import { perplexity, pplWindows } from '../src/eval/ppl.js';
import { sharedDir, projectDir, hasShared } from '../src/util/shared.js';

if (!hasShared()) { console.error('needs ../shared (stories260K and TinyStories text)'); process.exit(1); }
const out = projectDir('runs', 'stories260k-prune');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const base = path.join(out, 'stories260K');
importLlama2c({ model: sharedDir('models/stories260K/stories260K.bin'), tokenizer: sharedDir('models/stories260K/tok512.bin'), out: base });

// calibration: the first 90% of the TinyStories paragraphs; evaluation: the last 10%
const paras = fs.readFileSync(sharedDir('data/train/tinystories_val_subset.txt'), 'utf8').split(/\n\s*\n/).map((p) => p.replace(/\n/g, ' ').trim()).filter(Boolean);
const cut = Math.floor(paras.length * 0.9);
const calibFile = path.join(out, 'calib.txt');
fs.writeFileSync(calibFile, paras.slice(0, cut).join('\n') + '\n');
const heldOut = paras.slice(cut);
const tok = loadTokenizer(base);
const windows = pplWindows(heldOut, tok, 128, 'first');
const ppl = async (dir: string) => (await perplexity(new LlamaRunner(loadModel(dir)), windows, 16)).ppl;

const basePpl = await ppl(base);
const rows: Record<string, unknown>[] = [];
for (const criterion of CRITERIA) {
  for (const n of [1, 2]) {
    const dir = path.join(out, `${criterion}-${n}`);
    const t0 = performance.now();
    const r = await pruneModelDir(base, dir, criterion, { data: calibFile, n: 10, seqLen: 128, seed: 1234 }, { remove: n, protect: [0, 0] });
    const secs = (performance.now() - t0) / 1000;
    rows.push({ criterion, removed: n, blocks: r.removed, scores: r.score!.result.scores, ppl: await ppl(dir), scoreSeconds: secs });
    console.log(`${criterion} -${n}: removed ${r.removed.join(',')}  ppl ${(rows[rows.length - 1]!['ppl'] as number).toFixed(3)}`);
  }
}
const fmt = (x: number) => (Number.isFinite(x) ? x.toPrecision(5) : '—');
const md = [
  `# stories260K depth pruning: every criterion`,
  ``,
  `Held-out TinyStories perplexity (last 10% of paragraphs, ${windows.length} windows of 128 tokens, BOS first). Unpruned: **${basePpl.toFixed(3)}**.`,
  `Calibration: 10 samples x 128 tokens drawn (seed 1234) from the first 90% of paragraphs. "+" heuristic off (5 blocks).`,
  ``,
  `| criterion | scores per block (higher = more important) | removed (1) | PPL (1 removed) | removed (2) | PPL (2 removed) |`,
  `|---|---|---|---|---|---|`,
  ...CRITERIA.map((c) => {
    const [a, b] = [rows.find((r) => r['criterion'] === c && r['removed'] === 1)!, rows.find((r) => r['criterion'] === c && r['removed'] === 2)!];
    return `| ${c} | ${(a['scores'] as number[]).map(fmt).join(', ')} | ${(a['blocks'] as number[]).join(', ')} | ${(a['ppl'] as number).toFixed(3)} | ${(b['blocks'] as number[]).join(', ')} | ${(b['ppl'] as number).toFixed(3)} |`;
  }),
  ``,
].join('\n');
fs.writeFileSync(path.join(out, 'table.md'), md);
fs.writeFileSync(path.join(out, 'table.json'), JSON.stringify({ basePpl, rows }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
fs.writeFileSync(path.join(out, 'ppl-base.json'), JSON.stringify({ kind: 'ppl', model: base, label: 'stories260K', removedBlocks: 0, retraining: 'none', dataset: 'tinystories-heldout', ppl: basePpl, nll: Math.log(basePpl), tokens: windows.length * 127 }, null, 2));
for (const r of rows) {
  fs.writeFileSync(path.join(out, `ppl-${r['criterion']}-${r['removed']}.json`), JSON.stringify({ kind: 'ppl', model: path.join(out, `${r['criterion']}-${r['removed']}`), label: `${r['criterion']}-${r['removed']}`, removedBlocks: r['removed'], criterion: r['criterion'], retraining: 'none', dataset: 'tinystories-heldout', ppl: r['ppl'], nll: Math.log(r['ppl'] as number), tokens: windows.length * 127 }, null, 2));
}
console.log('\n' + md);
