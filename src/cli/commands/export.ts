import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadModel } from '../../io/model-folder.js';
import { exportGguf, GGUF_DTYPES, type GgufDtype } from '../../export/gguf-llama.js';
import { UserError } from '../../util/errors.js';
import { oneOf } from '../options.js';

export function registerExport(program: Command): void {
  const exp = program.command('export').description('convert a model folder to other formats');
  exp.command('gguf')
    .description("a Hugging Face folder -> one GGUF file for llama.cpp (tensors and metadata as llama.cpp's converter names them)")
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .requiredOption('--out <file>', 'output .gguf file')
    .option('--dtype <t>', 'matrix dtype: bf16, f16 or f32 (norms and biases stay f32)', oneOf('--dtype', GGUF_DTYPES), 'bf16' as GgufDtype)
    .option('--force', 'replace an existing output file')
    .action((o: { model: string; out: string; dtype: GgufDtype; force?: boolean }) => {
      if (fs.existsSync(o.out) && !o.force) throw new UserError(`output file exists: ${o.out} (use --force to replace it)`);
      const model = loadModel(o.model);
      const r = exportGguf(model, o.out, { dtype: o.dtype, tokenizerDir: o.model, name: path.basename(path.resolve(o.model)) });
      process.stdout.write(`wrote ${o.out} (architecture ${r.arch}, ${r.tensors} tensors, ${o.dtype})\n`);
    });
}
