import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadModel } from '../../io/model-folder.js';
import { exportGguf, GGUF_DTYPES, type GgufDtype } from '../../export/gguf-llama.js';
import { guardOutput } from '../../io/output-guard.js';
import { UserError } from '../../util/errors.js';
import { oneOf } from '../options.js';

function isGgufFile(file: string): boolean {
  if (!fs.statSync(file).isFile()) return false;
  const fd = fs.openSync(file, 'r'), magic = Buffer.alloc(4);
  try { fs.readSync(fd, magic, 0, 4, 0); } finally { fs.closeSync(fd); }
  return magic.toString('latin1') === 'GGUF';
}

export function registerExport(program: Command): void {
  const exp = program.command('export').description('convert a model folder to other formats');
  exp.command('gguf')
    .description("a Hugging Face folder -> one GGUF file for llama.cpp (tensors and metadata as llama.cpp's converter names them)")
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .requiredOption('--out <file>', 'output .gguf file')
    .option('--dtype <t>', 'matrix dtype: bf16, f16 or f32 (norms and biases stay f32)', oneOf('--dtype', GGUF_DTYPES), 'bf16' as GgufDtype)
    .option('--force', 'replace an existing output file')
    .action((o: { model: string; out: string; dtype: GgufDtype; force?: boolean }) => {
      guardOutput(o.out, [o.model]);
      if (fs.existsSync(o.out) && !o.force) throw new UserError(`output file exists: ${o.out} (use --force to replace it)`);
      // --force only replaces an earlier export: a GGUF file, never something else
      if (fs.existsSync(o.out) && !isGgufFile(o.out)) {
        throw new UserError(`--out ${o.out} exists and is not a GGUF file: --force only replaces earlier exports; remove it yourself or choose another --out`);
      }
      const model = loadModel(o.model);
      const r = exportGguf(model, o.out, { dtype: o.dtype, tokenizerDir: o.model, name: path.basename(path.resolve(o.model)) });
      process.stdout.write(`wrote ${o.out} (architecture ${r.arch}, ${r.tensors} tensors, ${o.dtype})\n`);
    });
}
