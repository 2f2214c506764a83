/**
 * The knowledge-distillation loss on the LM head, and its gradient w.r.t. the student's logits.
 *
 * Per position r with a next-token target (rows whose target is -100 carry no loss):
 *
 *   pT = softmax(zT / tau),  pS = softmax(zS / tau)             (teacher, student at temperature tau)
 *   KL_r   = sum_v pT[v] (log pT[v] - log pS[v])                (0 log 0 = 0: a one-hot teacher is allowed)
 *   NLL_r  = logsumexp(zS) - zS[target]                          (the plain LM loss, temperature 1)
 *   loss_r = alpha tau^2 KL_r + (1 - alpha) NLL_r                (tau^2 keeps gradient sizes comparable, Hinton et al.)
 *
 * and the loss is the mean over the counted positions. Its gradient w.r.t. the student's logits:
 *
 *   dL/dzS[v] = (alpha tau (pS[v] - pT[v]) + (1 - alpha) (softmax(zS)[v] - [v = target])) / count
 *
 * At tau = 1, alpha = 1 and a teacher that is one-hot on the target this is exactly the LM loss
 * and its gradient (KL = -log pS[target]); when student = teacher, KL = 0 and so is its gradient.
 *
 * Logits arrive a chunk of rows at a time through callbacks (the caller runs the two LM heads on
 * those rows), so [N, V] logits never exist: at most `rowChunk` x V of each, and the gradient of a
 * chunk is handed to `onGrad` (in the student's buffer) before the next chunk is computed.
 */
import { UserError } from '../util/errors.js';

/** What `shorten train kd` distills with (a plain object: other tools may read it). */
export interface KdSettings {
  /** softmax temperature of both distributions */
  temperature: number;
  /** weight of the KD term; 1 - alpha weighs the plain LM loss */
  alpha: number;
  /** weight of the hidden-state term (mean squared error between each kept block's output and its teacher block's); 0 = off */
  hiddenWeight: number;
}

export const KD_DEFAULTS: KdSettings = { temperature: 1, alpha: 1, hiddenWeight: 0 };

/** KD settings from partial options, checked. */
export function kdSettings(o: Partial<KdSettings> = {}): KdSettings {
  const s = { ...KD_DEFAULTS, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) } as KdSettings;
  if (!(s.temperature > 0 && Number.isFinite(s.temperature))) throw new UserError(`--kd-temp must be a positive number (got ${s.temperature})`);
  if (!(s.alpha >= 0 && s.alpha <= 1)) throw new UserError(`--kd-alpha must be in [0, 1] (got ${s.alpha})`);
  if (!(s.hiddenWeight >= 0 && Number.isFinite(s.hiddenWeight))) throw new UserError(`--kd-hidden must be a non-negative number (got ${s.hiddenWeight})`);
  return s;
}

/** Writes the logits of rows [r0, r0 + n) into out ([n, V], row-major). */
export type LogitRows = (r0: number, n: number, out: Float32Array) => Promise<void>;

/** Receives dL/dzS of rows [r0, r0 + n) ([n, V]); the array is reused after it returns. */
export type LogitGradSink = (r0: number, n: number, dLogits: Float32Array) => Promise<void>;

export interface KdLossInput {
  /** positions (rows of logits) */
  N: number;
  /** vocabulary size */
  V: number;
  /** next-token target per position, -100 = no loss there */
  targets: Int32Array;
  student: LogitRows;
  teacher: LogitRows;
  /** rows per chunk (default: as many as keep each chunk's logits near LOGITS_PER_CHUNK) */
  rowChunk?: number;
}

/** Sums over the counted positions (divide by count for means). */
export interface KdLossSums {
  count: number;
  /** sum of loss_r */
  loss: number;
  /** sum of KL_r (at the temperature, without tau^2) */
  kl: number;
  /** sum of NLL_r */
  nll: number;
}

/** Logits held per chunk, for the student and for the teacher: 16 MB each. */
export const LOGITS_PER_CHUNK = 1 << 22;

/** log sum_v exp(z[v] * scale), in float64. */
function logSumExp(z: Float32Array, scale: number): number {
  let m = -Infinity;
  for (let v = 0; v < z.length; v++) m = Math.max(m, z[v]! * scale);
  if (m === -Infinity) return m;
  let s = 0;
  for (let v = 0; v < z.length; v++) s += Math.exp(z[v]! * scale - m);
  return m + Math.log(s);
}

/** The loss sums and, with onGrad, the gradient of the mean loss w.r.t. the student's logits. */
export async function kdLoss(inp: KdLossInput, s: KdSettings, onGrad?: LogitGradSink): Promise<KdLossSums> {
  const { N, V, targets } = inp;
  const tau = s.temperature, inv = 1 / tau, alpha = s.alpha;
  let count = 0;
  for (let r = 0; r < N; r++) if (targets[r]! >= 0) count++;
  const sums: KdLossSums = { count, loss: 0, kl: 0, nll: 0 };
  if (count === 0) return sums;
  const R = Math.max(1, Math.min(N, inp.rowChunk ?? Math.floor(LOGITS_PER_CHUNK / V)));
  const zs = new Float32Array(R * V), zt = new Float32Array(R * V);

  for (let r0 = 0; r0 < N; r0 += R) {
    const n = Math.min(R, N - r0);
    await inp.student(r0, n, zs);
    await inp.teacher(r0, n, zt);
    for (let i = 0; i < n; i++) {
      const tgt = targets[r0 + i]!;
      const zS = zs.subarray(i * V, (i + 1) * V), zT = zt.subarray(i * V, (i + 1) * V);
      if (tgt < 0) { zS.fill(0); continue; }
      if (tgt >= V) throw new UserError(`target id ${tgt} out of range [0, ${V})`);

      // value: the two log-sum-exps at the temperature (and the student's at 1 for the LM loss)
      const lseS = logSumExp(zS, inv), lseT = logSumExp(zT, inv);
      const lseS1 = tau === 1 ? lseS : logSumExp(zS, 1);
      let kl = 0;
      for (let v = 0; v < V; v++) {
        const logPT = zT[v]! * inv - lseT;
        if (logPT === -Infinity) continue; // pT = 0 contributes nothing
        kl += Math.exp(logPT) * (logPT - (zS[v]! * inv - lseS));
      }
      const nll = lseS1 - zS[tgt]!;
      sums.kl += kl;
      sums.nll += nll;
      sums.loss += alpha * tau * tau * kl + (1 - alpha) * nll;
      if (!onGrad) continue;

      // gradient of the mean, written over the student's logits (each read before it is replaced)
      for (let v = 0; v < V; v++) {
        const pS = Math.exp(zS[v]! * inv - lseS), pT = Math.exp(zT[v]! * inv - lseT);
        const pS1 = tau === 1 ? pS : Math.exp(zS[v]! - lseS1);
        zS[v] = (alpha * tau * (pS - pT) + (1 - alpha) * (pS1 - (v === tgt ? 1 : 0))) / count;
      }
    }
    if (onGrad) await onGrad(r0, n, zs.subarray(0, n * V));
  }
  return sums;
}
