import type { Command } from 'commander';
import { loadModel, inspectModel } from '../../io/model-folder.js';
import { forwardMemory } from '../../model/memory.js';
import { preflight } from '../../util/memory.js';
import { loadTokenizer } from '../../io/tokenizer.js';
import { LlamaRunner } from '../../model/llama.js';
import { perplexity, modelPerplexity, pplWindows, readLines, type BosMode } from '../../eval/ppl.js';
import { readIdsFile } from '../../prune/calibration.js';
import { progressCallback } from '../../util/progress.js';
import { UserError } from '../../util/errors.js';
import { int, oneOf, printJson } from '../options.js';
import { engineOptions, openLlamaCpp, type EngineOpts } from '../engine-options.js';

export function registerPpl(program: Command): void {
  engineOptions(program.command('ppl')
    .description('perplexity of a model on a text file (Llama-2-style windows) or on given token rows')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .option('--text <file>', 'text file: lines joined with "\\n\\n", split into windows')
    .option('--ids <file>', '{"input_ids": [[...], ...]}: score each row on its own')
    .option('--seq-len <n>', 'window length in tokens', int('--seq-len'), 128)
    .option('--bos <mode>', 'BOS once at the start (first), before every window (every) or never (none)', oneOf('--bos', ['first', 'every', 'none'] as const), 'first')
    .option('--batch-size <n>', 'windows per forward', int('--batch-size'), 8)
    .option('--json', 'print {"ppl", "nll", "tokens"} as JSON'), 'f32')
    .action(async (o: EngineOpts & { model: string; text?: string; ids?: string; seqLen: number; bos: BosMode; batchSize: number; json?: boolean }) => {
      if (!o.text === !o.ids) throw new UserError('give exactly one of --text FILE or --ids FILE');
      const shape = inspectModel(o.model);
      const rows = o.ids ? readIdsFile(o.ids) : pplWindows(readLines(o.text!), loadTokenizer(o.model), o.seqLen, o.bos);
      const T = Math.max(...rows.map((r) => r.length));
      preflight('ppl', forwardMemory(shape.config, shape.weightBytes, { B: Math.min(o.batchSize, rows.length), T }));
      const model = loadModel(o.model);
      const run = new LlamaRunner(model);
      run.checkIds(Int32Array.from(rows.flat()));
      const lcpp = o.engine === 'llama.cpp' ? await openLlamaCpp(o.model, o, 'f32', Math.max(...rows.map((r) => r.length))) : null;
      const onProgress = progressCallback('ppl', 'windows');
      const r = lcpp ? await perplexity(lcpp, rows, o.batchSize, onProgress) : await modelPerplexity(model, rows, o.batchSize, onProgress);
      await lcpp?.dispose();
      if (o.json) printJson({ ppl: r.ppl, nll: r.nll, tokens: r.tokens });
      else process.stdout.write(`ppl ${r.ppl.toFixed(4)}  (mean NLL ${r.nll.toFixed(5)} over ${r.tokens} predicted tokens, ${r.windows} windows)\n`);
    });
}
