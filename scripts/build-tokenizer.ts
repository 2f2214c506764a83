/**
 * Train the default tokenizer: byte-level BPE, 4096 tokens (2 specials + 256 bytes + 3838 merges),
 * on the Brown corpus train split; write assets/default/tokenizer.json and tokenizer_config.json.
 * Deterministic: two runs write byte-identical files.
 *
 *   npx tsc -p . && node dist/scripts/build-tokenizer.js
 */
import fs from 'node:fs';
import path from 'node:path';
import { brownText } from '../src/data/brown.js';
import { hfTokenizerConfig, hfTokenizerFiles, hfTokenizerJson, trainBpe } from '../src/data/bpe-train.js';
import { tokenizerFromJson } from '../src/io/tokenizer.js';
import { projectDir } from '../src/util/shared.js';

const VOCAB_SIZE = 4096;
const SPECIAL_TOKENS = ['<s>', '</s>'];

/** Write through a temporary file and rename, so a reader never sees half a file. */
function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

function main(): void {
  const t0 = performance.now();
  const train = brownText('train');
  const t1 = performance.now();
  const model = trainBpe([train], { vocabSize: VOCAB_SIZE, specialTokens: SPECIAL_TOKENS });
  const t2 = performance.now();

  const files = hfTokenizerFiles(model);
  const outDir = projectDir('assets', 'default');
  fs.mkdirSync(outDir, { recursive: true });
  writeAtomic(path.join(outDir, 'tokenizer.json'), files.tokenizer);
  writeAtomic(path.join(outDir, 'tokenizer_config.json'), files.config);

  // Compression, measured with the library that will read these files.
  const tok = tokenizerFromJson(hfTokenizerJson(model), hfTokenizerConfig(model));
  const report = (name: string, text: string): string => {
    const tokens = tok.encode(text).length;
    const bytes = Buffer.byteLength(text, 'utf8');
    const words = text.split(/\s+/).filter(Boolean).length;
    return `${name}: ${bytes} bytes, ${words} words, ${tokens} tokens: ` +
      `${(bytes / tokens).toFixed(2)} bytes/token, ${(tokens / words).toFixed(3)} tokens/word`;
  };
  console.log(`vocab ${model.vocab.length} (${model.specialTokens.length} special, 256 bytes, ${model.merges.length} merges)`);
  console.log(report('train', train));
  console.log(report('validation', brownText('validation')));
  console.log(`corpus ${((t1 - t0) / 1000).toFixed(2)} s, training ${((t2 - t1) / 1000).toFixed(2)} s, ` +
    `total ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  console.log(`wrote ${path.relative(process.cwd(), outDir) || '.'}/tokenizer.json and tokenizer_config.json`);
}

main();
