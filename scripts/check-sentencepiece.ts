/**
 * The full-set check behind test/sentencepiece.test.ts (which samples): Llama 2's tokenizer.model,
 * converted by us in a folder that has nothing else, against Hugging Face's tokenizer.json on
 * every line of WikiText-2 (test), PTB (valid, test) and every text of the zero-shot sets.
 *   npm run build && node dist/scripts/check-sentencepiece.js
 * Prints per set: texts, tokens, mismatches, decode round trips that fail, seconds.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { sharedDir, hasShared } from '../src/util/shared.js';

if (!hasShared()) { console.error('needs ../shared (Llama 2 tokenizer, eval data)'); process.exit(1); }
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spm-check-'));
fs.copyFileSync(sharedDir('tokenizers', 'llama2', 'tokenizer.model'), path.join(dir, 'tokenizer.model'));
const ours = loadTokenizer(dir);
const ref = loadTokenizer(sharedDir('tokenizers', 'llama2'));
fs.rmSync(dir, { recursive: true, force: true });

const lines = (...p: string[]): string[] => fs.readFileSync(sharedDir(...p), 'utf8').split('\n');
const sets: [string, string[]][] = [
  ['wikitext2 test lines', lines('data', 'eval', 'wikitext2', 'wiki.test.raw')],
  ['ptb valid lines', lines('data', 'eval', 'ptb', 'ptb.valid.txt')],
  ['ptb test lines', lines('data', 'eval', 'ptb', 'ptb.test.txt')],
];
for (const f of fs.readdirSync(sharedDir('data', 'eval', 'zeroshot')).sort()) {
  const texts: string[] = [];
  for (const l of lines('data', 'eval', 'zeroshot', f)) {
    if (!l.trim()) continue;
    const r = JSON.parse(l) as Record<string, unknown>;
    for (const k of ['query', 'ctx', 'continuation']) if (typeof r[k] === 'string') texts.push(r[k] as string);
    for (const k of ['choices', 'endings', 'context_options']) if (Array.isArray(r[k])) texts.push(...(r[k] as string[]));
  }
  sets.push([`${f} texts`, texts]);
}
let bad = 0;
for (const [name, texts] of sets) {
  const t0 = performance.now();
  let tokens = 0, mismatches = 0, roundTrips = 0;
  for (const t of texts) {
    const a = ours.encode(t, { addSpecialTokens: true }), b = ref.encode(t, { addSpecialTokens: true });
    tokens += a.length;
    if (a.length !== b.length || a.some((x, i) => x !== b[i])) mismatches++;
    if (!/<unk>|<\/?s>/.test(t) && ours.decode(a) !== t) roundTrips++;
  }
  bad += mismatches + roundTrips;
  console.log(`${name.padEnd(28)} ${String(texts.length).padStart(7)} texts ${String(tokens).padStart(9)} tokens  ${mismatches} mismatches  ${roundTrips} failed round trips  ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
process.exit(bad ? 1 : 0);
