import fs from 'node:fs';
import type { Command } from 'commander';
import { pruneWidthDir, WIDTH_METHODS, type WidthMethod } from '../../width/pipeline.js';
import { UserError } from '../../util/errors.js';
import { int, float, oneOf, printJson } from '../options.js';

interface Opts {
  model: string; method: WidthMethod; ratio?: number; params?: number; out: string; force?: boolean; json?: boolean; bias: boolean;
  data?: string; calibIds?: string; n: number; seqLen: number; seed: number;
}

export function registerPruneWidth(program: Command): void {
  program.command('prune-width')
    .description('width pruning baseline: remove kv-head groups and MLP channels of every block (Wanda-sp or FLAP) and save the thinner model')
    .requiredOption('--model <dir>', 'Hugging Face model folder (never modified)')
    .option('--method <name>', `one of ${WIDTH_METHODS.join(', ')} (uniform: no calibration, drops the last units; for speed tests)`, oneOf('--method', WIDTH_METHODS), 'flap')
    .option('--ratio <r>', 'fraction of the parameters to remove', float('--ratio'))
    .option('--params <n>', 'or: the parameter count to keep (e.g. to match a depth-pruned model)', int('--params'))
    .option('--no-bias', 'flap: skip the bias compensation (no o_proj / down_proj biases added)')
    .option('--data <file>', 'calibration text: one document a line, or jsonl {"text"} (default: the embedded default corpus, train split)')
    .option('--calib-ids <file>', 'calibration token rows {"input_ids": [[...]]}, used as they are')
    .option('--n <n>', 'calibration samples', int('--n'), 10)
    .option('--seq-len <n>', 'tokens per calibration sample', int('--seq-len'), 128)
    .option('--seed <n>', 'sampling seed', int('--seed'), 1234)
    .requiredOption('--out <dir>', 'output folder (appears only when complete)')
    .option('--force', 'replace an existing output folder')
    .option('--json', 'print the summary as JSON')
    .action(async (o: Opts) => {
      if ((o.ratio === undefined) === (o.params === undefined)) throw new UserError('give exactly one of --ratio R and --params N');
      if (o.data && o.calibIds) throw new UserError('give at most one of --data and --calib-ids');
      const target = o.ratio !== undefined ? { ratio: o.ratio } : { params: o.params! };
      const r = await pruneWidthDir(o.model, o.out, { method: o.method, target, bias: o.bias }, { data: o.data, ids: o.calibIds, n: o.n, seqLen: o.seqLen, seed: o.seed }, o.force);
      const shapes = r.pruned.config.layers.map((l) => `${l.numKvHeads}/${l.numHeads}h ${l.intermediateSize}`);
      const summary = { out: o.out, method: o.method, params_before: r.paramsBefore, params_target: r.target, params_after: r.paramsAfter, layer_shapes: r.pruned.config.layers };
      if (o.json) printJson(summary);
      else process.stdout.write(`${o.method}: ${r.paramsAfter.toLocaleString('en-US')} parameters (${(100 * (1 - r.paramsAfter / r.paramsBefore)).toFixed(1)}% fewer, target ${r.target.toLocaleString('en-US')}); blocks (kv/heads, mlp): ${shapes.join(' | ')}; wrote ${o.out}\n`);
    });
}
