/**
 * `--launch`: run an emitted job on this machine with our progress display. The processes are
 * started by the job's own `train.py --local N` (torch.multiprocessing, MASTER_ADDR=127.0.0.1)
 * rather than torchrun: one machine needs no rendezvous service, and Debian's torchrun (torch 1.13
 * on Python 3.11) crashes at start. Clusters use the job's launch.sh.
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { progress } from '../util/progress.js';
import { UserError } from '../util/errors.js';
import { readJob } from './import.js';
import { openblasCore } from './openblas-core.js';

/** The interpreter that imports torch: --python, $SHORTENED_TORCH_PYTHON, Debian's /usr/bin/python3, python3. */
export function findTorchPython(explicit?: string): string | null {
  const candidates = explicit ? [explicit] : [process.env['SHORTENED_TORCH_PYTHON'], '/usr/bin/python3', 'python3'].filter((c): c is string => !!c);
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
    if (r.status === 0) return py;
  }
  return null;
}

export function torchPythonOrThrow(explicit?: string): string {
  const py = findTorchPython(explicit);
  if (!py) throw new UserError(explicit ? `${explicit} cannot import torch` : 'no python3 here imports torch (Debian: apt-get install python3-torch; or pass --python); the job folder runs anywhere torch is');
  return py;
}

/**
 * The environment for torch on CPUs: OpenBLAS presets of this machine unset, OpenMP threads
 * sleeping when idle rather than spinning against the other processes. Given the interpreter,
 * OpenBLAS's kernels are also checked: where it does not know this CPU and falls back to SSE3
 * kernels, the best core the CPU supports is set (see openblas-core.ts).
 */
export function torchEnv(python?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' };
  delete env['OPENBLAS_CORETYPE'];
  delete env['OPENBLAS_L2_SIZE'];
  const forced = python ? openblasCore(python, env).forced : undefined;
  if (forced) env['OPENBLAS_CORETYPE'] = forced;
  return env;
}

export interface LaunchOptions {
  /** processes (default 1) */
  nproc?: number;
  python?: string;
  cpu?: boolean;
  threads?: number;
  fsdp?: boolean;
  label?: string;
}

/** Run the job in `dir` to its end (or from where it stopped); resolves when it finishes. */
export async function launchTorchJob(dir: string, o: LaunchOptions = {}): Promise<void> {
  const job = readJob(dir);
  const py = torchPythonOrThrow(o.python);
  const args = [path.resolve(dir, 'train.py'), '--local', String(o.nproc ?? 1), '--progress', 'json', ...(o.cpu ? ['--cpu'] : []), ...(o.fsdp ? ['--fsdp'] : []), ...(o.threads ? ['--threads', String(o.threads)] : [])];
  const child = spawn(py, args, { cwd: path.resolve(dir), env: torchEnv(py), stdio: ['ignore', 'pipe', 'inherit'] });
  const bar = progress(o.label ?? `torch ${job.method} ${job.header.label}`, job.settings.steps, 'steps');
  const lines = readline.createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    type Msg = { step?: number; loss?: number; valLoss?: number; lr?: number; done?: boolean };
    let msg: Msg | null = null;
    try { msg = JSON.parse(line) as Msg; } catch { /* not a progress line */ }
    if (msg && typeof msg.step === 'number') {
      bar.update(msg.step, `loss ${msg.loss?.toFixed(4)}${msg.valLoss !== undefined ? ` val ${msg.valLoss.toFixed(4)}` : ''} lr ${msg.lr?.toExponential(2)}`);
    } else if (!msg?.done) {
      process.stderr.write(line + '\n');
    }
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, signal) => resolve(signal ? 128 : c));
  });
  bar.stop();
  if (code !== 0) throw new UserError(`the torch job in ${dir} stopped (exit status ${code}; its messages are above); launching it again resumes from its last checkpoint`);
}
