/**
 * `shorten train lora | cpt | cpt-lora`: retraining a pruned model. Every run checkpoints into
 * <out>/checkpoints every --save-every steps; --resume continues a killed run exactly.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { trainLora, type LoraOptions, type TrainRunResult } from '../../train/lora.js';
import { trainCpt, type CptOptions } from '../../train/cpt.js';
import { trainCptLora } from '../../train/cpt-lora.js';
import { trainKd } from '../../train/kd.js';
import { KD_DEFAULTS } from '../../train/kd-loss.js';
import { parseTargets } from '../../train/peft.js';
import { DECAYS, type Decay } from '../../train/schedule.js';
import { NAN_POLICIES, type NanPolicy } from '../../train/trainer.js';
import { int, float, oneOf, printJson } from '../options.js';
import { CHAT_PRESETS } from '../../io/chat-template.js';
import { UserError } from '../../util/errors.js';
import { checkOutput } from '../../train/run-folder.js';
import { emitCptJob, emitLoraJob, JOB_FILE, type JobSpec } from '../../torchjob/emit.js';
import { importTorchJob, readJob } from '../../torchjob/import.js';
import { launchTorchJob } from '../../torchjob/launch.js';

const list = (v: string): string[] => v.split(',').filter((s) => s.trim() !== '');

interface CommonOpts {
  model: string; out?: string; tokenizer?: string; seed: number; microBatch: number; saveEvery: number;
  final: 'best' | 'last'; resume?: boolean; force?: boolean; keepCheckpoints?: boolean; label?: string; json?: boolean;
  maxGradNorm: number; minLrRatio: number; eps: number; onNan: NanPolicy;
}

interface OptimOpts { epochs: number; maxSteps?: number; lr: number; batchSize: number; warmup?: number; decay: Decay; weightDecay: number; beta1: number; beta2: number }

interface LoraCli { gradientCheckpointing: 'auto' | 'on' | 'off'; data: string; eos: boolean; r: number; alpha: number; dropout: number; targets: string[]; cutoff: number; trainOnInputs?: boolean; valSize?: number; merge?: boolean; chatTemplate?: string }

interface KdCli { teacher: string; kdTemp: number; kdAlpha: number; kdHidden: number; lora?: boolean; r: number; alpha: number; dropout: number; targets: string[]; merge?: boolean }

interface CptCli { data?: string[]; valData?: string; valDocs: number; valSeqs: number; seqLen: number; eos: boolean; shuffleBuffer: number }

function common(cmd: Command): Command {
  return cmd
    .requiredOption('--model <dir>', 'Hugging Face model folder (e.g. a pruned one; never modified)')
    .option('--out <dir>', 'run folder: result, train-log.json, checkpoints/ (required, except for --engine torch without --launch)')
    .option('--tokenizer <dir>', 'folder with tokenizer.json or tokenizer.model (default: the model folder)')
    .option('--micro-batch <n>', 'rows per forward/backward (the batch is reached by accumulation)', int('--micro-batch'), 4)
    .option('--max-grad-norm <x>', 'clip the global gradient norm (0: off)', float('--max-grad-norm'), 1)
    .option('--min-lr-ratio <x>', 'decay floor as a fraction of --lr', float('--min-lr-ratio'))
    .option('--eps <x>', 'AdamW epsilon', float('--eps'), 1e-8)
    .option('--save-every <n>', 'checkpoint and validate every n steps (and at the end)', int('--save-every'), 100)
    .option('--final <which>', 'result weights: best validation loss or last step', oneOf('--final', ['best', 'last'] as const), 'best')
    .option('--seed <n>', 'seed of data order, split, dropout and LoRA init', int('--seed'), 42)
    .option('--on-nan <what>', 'a step whose loss or gradient is NaN/Inf: stop the run, or skip its update', oneOf('--on-nan', NAN_POLICIES), 'stop')
    .option('--resume', 'continue from the latest checkpoint in --out')
    .option('--force', 'replace an existing --out')
    .option('--keep-checkpoints', 'keep <out>/checkpoints after success')
    .option('--label <name>', 'run name in train-log.json')
    .option('--json', 'print a JSON summary');
}

function optim(cmd: Command, d: { epochs: number; lr: number; batch: number; warmup?: number; decay: Decay; wd: number; b2: number }, prefix = ''): Command {
  const o = (name: string) => `--${prefix}${name}`;
  return cmd
    .option(`${o('epochs')} <n>`, 'passes over the training data', float(o('epochs')), d.epochs)
    .option(`${o('max-steps')} <n>`, 'optimizer steps (overrides epochs)', int(o('max-steps')))
    .option(`${o('lr')} <x>`, 'peak learning rate', float(o('lr')), d.lr)
    .option(`${o('batch-size')} <n>`, 'rows per optimizer step', int(o('batch-size')), d.batch)
    .option(`${o('warmup')} <n>`, `warmup steps${d.warmup === undefined ? ' (default: 10% of the steps, at most 100)' : ''}`, int(o('warmup')), d.warmup)
    .option(`${o('decay')} <kind>`, `after warmup: ${DECAYS.join(', ')}`, oneOf(o('decay'), DECAYS), d.decay)
    .option(`${o('weight-decay')} <x>`, 'AdamW weight decay (matrices only)', float(o('weight-decay')), d.wd)
    .option(`${o('beta1')} <x>`, 'AdamW beta1', float(o('beta1')), 0.9)
    .option(`${o('beta2')} <x>`, 'AdamW beta2', float(o('beta2')), d.b2);
}

function loraOpts(cmd: Command, dataFlag = '--data', eosFlag = '--no-eos'): Command {
  return cmd
    .requiredOption(`${dataFlag} <file>`, 'instruction data: Alpaca .json/.jsonl {instruction, input, output}, or plain text (.txt lines, jsonl {text})')
    .option('--r <n>', 'LoRA rank', int('--r'), 8)
    .option('--alpha <x>', 'LoRA alpha (scale = alpha / r)', float('--alpha'), 16)
    .option('--dropout <p>', 'LoRA dropout', float('--dropout'), 0.05)
    .option('--targets <list>', 'adapted projections', list, ['q', 'k', 'v', 'o', 'gate', 'up', 'down'])
    .option('--cutoff <n>', 'tokens per example at most', int('--cutoff'), 256)
    .option('--train-on-inputs', 'also train on the prompt tokens')
    .option(eosFlag, 'do not append EOS to each example')
    .option('--val-size <n>', 'records held out for validation (default 5%, at most 2000)', int('--val-size'))
    .option('--merge', 'also write the merged model to <out>/merged')
    .option('--gradient-checkpointing <when>', 'recompute block activations in the backward (less memory, one more forward): on, off, or auto (when keeping them would not fit)', oneOf('--gradient-checkpointing', ['auto', 'on', 'off'] as const), 'auto')
    .option('--chat-template <name|file|none>', `render instruction records with this chat template (${Object.keys(CHAT_PRESETS).join(', ')}, a .jinja file, or none for Alpaca's prompt; default: the model's own if it has one)`);
}

function cptOpts(cmd: Command, prefix = ''): Command {
  return cmd
    .option(`--${prefix}data <files...>`, 'training text: .txt (one document a line) or .jsonl {"text"} (default: the embedded default corpus, train split)')
    .option(`--${prefix}val-data <file>`, 'validation text (default: Brown validation, or the first --val-docs documents of the data)')
    .option(`--${prefix}val-docs <n>`, 'leading documents held out for validation when --data is given', int('--val-docs'), 50)
    .option(`--${prefix}val-seqs <n>`, 'validation sequences at most', int('--val-seqs'), 32)
    .option('--seq-len <n>', 'tokens per packed sequence', int('--seq-len'), 256)
    .option('--no-eos', 'do not append EOS after each document')
    .option('--shuffle-buffer <n>', 'sequences in the seeded shuffle buffer (0: stream order)', int('--shuffle-buffer'), 64);
}

interface TorchCli { engine: 'ours' | 'torch'; emit?: string; launch?: boolean; nproc: number; python?: string; cpu?: boolean }

function torchOpts(cmd: Command): Command {
  return cmd
    .option('--engine <name>', 'ours (train here) or torch (write a job folder for PyTorch\'s distributed trainer)', oneOf('--engine', ['ours', 'torch'] as const), 'ours')
    .option('--emit <dir>', 'torch: the job folder (data packed and ordered, train.py, launch.sh for torchrun, README)')
    .option('--launch', 'torch: run the job here (python3 train.py --local N) and, with --out, import its result')
    .option('--nproc <n>', 'torch --launch: processes (DDP over gloo on CPUs, NCCL on GPUs)', int('--nproc'), 1)
    .option('--cpu', 'torch --launch: train on CPUs even where CUDA is available')
    .option('--python <path>', 'torch --launch: the interpreter that imports torch (default /usr/bin/python3 or python3)');
}

/** Our engine writes into --out; it has no job folder. */
function needOut(o: CommonOpts & Partial<TorchCli>): string {
  if (o.emit || o.launch) throw new UserError('--emit and --launch go with --engine torch');
  if (!o.out) throw new UserError("required option '--out <dir>' not specified");
  return o.out;
}

/** --engine torch: write the job (or, with --resume, reuse it), then optionally run it and take the result back. */
async function torchJob(o: CommonOpts & TorchCli, emit: (dir: string) => JobSpec): Promise<void> {
  if (!o.emit) throw new UserError('--engine torch needs --emit DIR (the job folder to write)');
  if (o.out && !o.launch) throw new UserError('--out with --engine torch needs --launch (or run the job, then: shorten train import DIR --out OUT)');
  if (o.out) checkOutput(o.out, { force: o.force }, [o.emit, o.model]); // before hours of training, not after
  const reuse = o.resume && fs.existsSync(path.join(o.emit, JOB_FILE));
  if (reuse) process.stderr.write(`--resume: reusing the job in ${o.emit} as it was emitted (its recipe is its job.json)\n`);
  const job = reuse ? readJob(o.emit) : emit(o.emit);
  const about = { job: o.emit, method: job.method, steps: job.settings.steps, rows: job.rows, tokens: job.tokens };
  if (!o.launch) {
    if (o.json) printJson(about);
    else process.stdout.write(`wrote the torch job ${o.emit}: ${job.settings.steps} steps over ${job.rows} rows (${job.tokens} tokens); run it with ${path.join(o.emit, 'launch.sh')} (torchrun) or python3 ${path.join(o.emit, 'train.py')} --local N, then: shorten train import ${o.emit} --out OUT\n`);
    return;
  }
  await launchTorchJob(o.emit, { nproc: o.nproc, python: o.python, cpu: o.cpu, label: `torch ${job.method} ${job.header.label}` });
  if (!o.out) {
    if (o.json) printJson({ ...about, finished: true });
    else process.stdout.write(`the torch job ${o.emit} finished; take the result back with: shorten train import ${o.emit} --out OUT\n`);
    return;
  }
  const r = await importTorchJob({ job: o.emit, out: o.out, force: o.force });
  report(o, r, job.recipe.params === 'lora' ? `${o.out}/adapter_config.json, adapter_model.safetensors` : `${o.out}/model`);
}

function commonOf(o: CommonOpts) {
  return {
    tokenizer: o.tokenizer, microBatch: o.microBatch, maxGradNorm: o.maxGradNorm, eps: o.eps, saveEvery: o.saveEvery, final: o.final,
    seed: o.seed, keepCheckpoints: o.keepCheckpoints, onNan: o.onNan, ...(o.minLrRatio !== undefined ? { minLrRatio: o.minLrRatio } : {}),
  };
}

function loraOf(o: LoraCli & OptimOpts): Omit<LoraOptions, 'model' | 'out'> {
  return {
    ...(o.gradientCheckpointing !== 'auto' ? { gradientCheckpointing: o.gradientCheckpointing === 'on' } : {}),
    data: o.data, eos: o.eos, chatTemplate: o.chatTemplate, r: o.r, alpha: o.alpha, dropout: o.dropout, targets: parseTargets(o.targets), cutoff: o.cutoff, trainOnInputs: o.trainOnInputs, valSize: o.valSize, merge: o.merge,
    epochs: o.epochs, maxSteps: o.maxSteps, lr: o.lr, batchSize: o.batchSize, warmup: o.warmup, decay: o.decay, weightDecay: o.weightDecay, beta1: o.beta1, beta2: o.beta2,
  };
}

function cptOf(o: CptCli & OptimOpts): Omit<CptOptions, 'model' | 'out'> {
  return {
    data: o.data, valData: o.valData, valDocs: o.valDocs, valSeqs: o.valSeqs, seqLen: o.seqLen, eos: o.eos, shuffleBuffer: o.shuffleBuffer,
    epochs: o.epochs, maxSteps: o.maxSteps, lr: o.lr, batchSize: o.batchSize, warmup: o.warmup, decay: o.decay, weightDecay: o.weightDecay, beta1: o.beta1, beta2: o.beta2,
  };
}

function summary(r: TrainRunResult, what: string): Record<string, unknown> {
  const s = r.log.steps;
  const last = s[s.length - 1];
  const vals = s.filter((x) => x.valLoss !== undefined).map((x) => x.valLoss!);
  return { out: r.out, result: what, steps: s.length, final_loss: last?.loss ?? null, best_val_loss: vals.length ? Math.min(...vals) : null, seconds: r.seconds };
}

function report(o: { json?: boolean }, r: TrainRunResult, what: string): void {
  const x = summary(r, what);
  if (o.json) printJson(x);
  else process.stdout.write(`${x['steps']} steps in ${(r.seconds).toFixed(1)} s, final loss ${Number(x['final_loss']).toFixed(4)}${x['best_val_loss'] !== null ? `, best validation loss ${Number(x['best_val_loss']).toFixed(4)}` : ''}; wrote ${what}\n`);
}

export function registerTrain(program: Command): void {
  const train = program.command('train').description('retrain a pruned model: LoRA, continued pretraining (CPT), CPT then LoRA, or distillation from the unpruned model (KD)');

  torchOpts(loraOpts(optim(common(train.command('lora')
    .description('LoRA on instruction data (Alpaca template, loss on responses); writes a PEFT adapter')), { epochs: 2, lr: 1e-4, batch: 64, warmup: 100, decay: 'linear', wd: 0, b2: 0.999 })))
    .action(async (o: CommonOpts & OptimOpts & LoraCli & TorchCli) => {
      const opts = (out: string): LoraOptions => ({ model: o.model, out, resume: o.resume, force: o.force, label: o.label, ...commonOf(o), ...loraOf(o) });
      if (o.engine === 'torch') return torchJob(o, (dir) => emitLoraJob(opts(dir), { dir, force: o.force }).job);
      const out = needOut(o);
      const r = await trainLora(opts(out));
      report(o, r, `${out}/adapter_config.json, adapter_model.safetensors${o.merge ? `, ${out}/merged` : ''}`);
    });

  torchOpts(cptOpts(optim(common(train.command('cpt')
    .description('continued pretraining of all weights on raw text, packed and streamed')), { epochs: 1, lr: 1e-4, batch: 32, decay: 'cosine', wd: 0.1, b2: 0.95 })))
    .action(async (o: CommonOpts & OptimOpts & CptCli & TorchCli) => {
      const opts = (out: string): CptOptions => ({ model: o.model, out, resume: o.resume, force: o.force, label: o.label, ...commonOf(o), ...cptOf(o) });
      if (o.engine === 'torch') return torchJob(o, (dir) => emitCptJob(opts(dir), { dir, force: o.force }).job);
      const out = needOut(o);
      const r = await trainCpt(opts(out));
      report(o, r, `${out}/model`);
    });

  train.command('import')
    .description('a finished --engine torch job back into our layout: CPT -> OUT/model, LoRA -> a PEFT adapter in OUT; OUT/train-log.json')
    .argument('<dir>', 'the job folder (written by --emit)')
    .requiredOption('--out <dir>', 'result folder (as our own trainer writes it)')
    .option('--final <which>', 'result weights: best validation loss or last step (default: the job\'s choice)', oneOf('--final', ['best', 'last'] as const))
    .option('--merge', 'LoRA: also write the merged model to <out>/merged')
    .option('--force', 'replace an existing --out')
    .option('--json', 'print a JSON summary')
    .action(async (dir: string, o: { out: string; final?: 'best' | 'last'; merge?: boolean; force?: boolean; json?: boolean }) => {
      const r = await importTorchJob({ job: dir, out: o.out, final: o.final, merge: o.merge, force: o.force });
      report(o, r, fs.existsSync(path.join(o.out, 'model')) ? `${o.out}/model` : `${o.out}/adapter_config.json, adapter_model.safetensors${o.merge ? `, ${o.out}/merged` : ''}`);
    });

  cptOpts(optim(common(train.command('kd')
    .description('knowledge distillation from the unpruned model on raw text (CPT\'s data, optimizer and checkpoints; KL to the teacher\'s next-token distribution)')), { epochs: 1, lr: 1e-4, batch: 32, decay: 'cosine', wd: 0.1, b2: 0.95 }))
    .requiredOption('--teacher <dir>', 'the model the student was pruned from (forward only, in its stored dtype; never modified)')
    .option('--kd-temp <t>', 'softmax temperature of both distributions (the KL is scaled by t^2)', float('--kd-temp'), KD_DEFAULTS.temperature)
    .option('--kd-alpha <a>', 'weight of the KD loss; 1 - a weighs the plain LM loss', float('--kd-alpha'), KD_DEFAULTS.alpha)
    .option('--kd-hidden <w>', 'weight of the hidden-state term: MSE between each kept block\'s output and its teacher block\'s (pruning.json kept_blocks)', float('--kd-hidden'), KD_DEFAULTS.hiddenWeight)
    .option('--lora', 'train LoRA adapters on the frozen student instead of all its weights (PEFT adapter in --out)')
    .option('--r <n>', 'with --lora: LoRA rank', int('--r'), 8)
    .option('--alpha <x>', 'with --lora: LoRA alpha (scale = alpha / r)', float('--alpha'), 16)
    .option('--dropout <p>', 'with --lora: LoRA dropout', float('--dropout'), 0.05)
    .option('--targets <list>', 'with --lora: adapted projections', list, ['q', 'k', 'v', 'o', 'gate', 'up', 'down'])
    .option('--merge', 'with --lora: also write the merged model to <out>/merged')
    .action(async (o: CommonOpts & OptimOpts & CptCli & KdCli) => {
      const lora = o.lora ? { r: o.r, alpha: o.alpha, dropout: o.dropout, targets: parseTargets(o.targets) } : undefined;
      const out = needOut(o);
      const r = await trainKd({
        model: o.model, out, resume: o.resume, force: o.force, label: o.label, ...commonOf(o), ...cptOf(o),
        teacher: o.teacher, kd: { temperature: o.kdTemp, alpha: o.kdAlpha, hiddenWeight: o.kdHidden }, lora, merge: o.merge,
      });
      report(o, r, lora ? `${out}/adapter_config.json, adapter_model.safetensors${o.merge ? `, ${out}/merged` : ''}` : `${out}/model`);
    });

  const both = common(train.command('cpt-lora')
    .description('CPT then LoRA on the result (the paper\'s CPT⇒LoRA); stages in <out>/cpt and <out>/lora'));
  cptOpts(both, 'cpt-');
  optim(both, { epochs: 1, lr: 1e-4, batch: 32, decay: 'cosine', wd: 0.1, b2: 0.95 }, 'cpt-');
  loraOpts(both, '--lora-data', '--no-lora-eos');
  optim(both, { epochs: 2, lr: 1e-4, batch: 64, warmup: 100, decay: 'linear', wd: 0, b2: 0.999 }, 'lora-');
  both.action(async (o: CommonOpts & Record<string, unknown>) => {
    const out = needOut(o);
    const pick = (prefix: string): OptimOpts => ({
      epochs: o[`${prefix}Epochs`] as number, maxSteps: o[`${prefix}MaxSteps`] as number | undefined, lr: o[`${prefix}Lr`] as number,
      batchSize: o[`${prefix}BatchSize`] as number, warmup: o[`${prefix}Warmup`] as number | undefined, decay: o[`${prefix}Decay`] as Decay,
      weightDecay: o[`${prefix}WeightDecay`] as number, beta1: o[`${prefix}Beta1`] as number, beta2: o[`${prefix}Beta2`] as number,
    });
    const c = commonOf(o);
    const cpt = cptOf({
      data: o['cptData'] as string[] | undefined, valData: o['cptValData'] as string | undefined, valDocs: o['cptValDocs'] as number, valSeqs: o['cptValSeqs'] as number,
      seqLen: o['seqLen'] as number, eos: o['eos'] as boolean, shuffleBuffer: o['shuffleBuffer'] as number, ...pick('cpt'),
    });
    const lora = loraOf({
      data: o['loraData'] as string, eos: o['loraEos'] as boolean, r: o['r'] as number, alpha: o['alpha'] as number, dropout: o['dropout'] as number, targets: o['targets'] as string[],
      cutoff: o['cutoff'] as number, trainOnInputs: o['trainOnInputs'] as boolean | undefined, valSize: o['valSize'] as number | undefined, merge: o['merge'] as boolean | undefined, chatTemplate: o['chatTemplate'] as string | undefined,
      gradientCheckpointing: o['gradientCheckpointing'] as LoraCli['gradientCheckpointing'], ...pick('lora'),
    });
    const r = await trainCptLora({ model: o.model, out, resume: o.resume, force: o.force, label: o.label, cpt: { ...c, ...cpt }, lora: { ...c, ...lora } });
    if (!r) return;
    const x = { out, cpt: summary(r.cpt, `${out}/cpt/model`), lora: summary(r.lora, `${out}/lora`), seconds: r.seconds };
    if (o.json) printJson(x);
    else process.stdout.write(`CPT: ${r.cpt.log.steps.length} steps, LoRA: ${r.lora.log.steps.length} steps, ${r.seconds.toFixed(1)} s; wrote ${out}/cpt/model and the adapter in ${out}/lora${lora.merge ? ` (merged: ${out}/lora/merged)` : ''}\n`);
  });
}
