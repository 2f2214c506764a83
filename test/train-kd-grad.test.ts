/**
 * The distillation loss and its gradients: the loss against a float64 reference of its formula,
 * chunking that changes nothing, the identity with CPT (temperature 1, a teacher one-hot on the
 * next token: the same loss and the same gradient of every weight), zero loss and gradient when
 * the student is the teacher, and every kind of weight's gradient against central finite
 * differences on fixture models (a pruned, perturbed student; KL at temperature 2 mixed with the
 * LM loss, plus the hidden-state term through pruning.json's map of kept blocks).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { LlamaRunner, shiftTargets, type Grads } from '../src/model/llama.js';
import { removeBlocks } from '../src/prune/surgery.js';
import { kdLoss, kdSettings, type KdSettings, type LogitRows } from '../src/train/kd-loss.js';
import { kdForwardBackward, Teacher, type TeacherModel } from '../src/train/kd.js';
import type { Batch } from '../src/train/batch.js';
import type { LlamaModel, BlockWeightName } from '../src/model/weights.js';
import type { Tensor } from '../src/engine/tensor.js';
import { Rng } from '../src/util/rng.js';
import { loadFixture, SKIP_SHARED } from './fixtures.js';

const ALL = { blocks: true, embed: true, norm: true, lmHead: true };

function rows(z: Float32Array, V: number): LogitRows {
  return async (r0, n, out) => { out.set(z.subarray(r0 * V, (r0 + n) * V)); };
}

function randomLogits(N: number, V: number, seed: number, scale: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: N * V }, () => (rng.next() - 0.5) * scale);
}

test('KD loss: float64 reference of KL, NLL and their mix; gradient of the mean; chunks change nothing', async () => {
  const N = 7, V = 11;
  const zs = randomLogits(N, V, 1, 6), zt = randomLogits(N, V, 2, 6);
  const targets = Int32Array.from([3, -100, 0, 10, 5, -100, 7]);
  const s: KdSettings = { temperature: 2, alpha: 0.3, hiddenWeight: 0 };
  const grad = new Float32Array(N * V);
  const sums = await kdLoss({ N, V, targets, student: rows(zs, V), teacher: rows(zt, V), rowChunk: 3 }, s,
    async (r0, n, g) => { grad.set(g, r0 * V); });
  // reference, row by row in float64
  const softmax = (z: ArrayLike<number>, t: number) => { const m = Math.max(...Array.from(z, (x) => x / t)); const e = Array.from(z, (x) => Math.exp(x / t - m)); const S = e.reduce((a, b) => a + b); return e.map((x) => x / S); };
  let count = 0, loss = 0, kl = 0, nll = 0;
  const ref = new Float64Array(N * V);
  for (let r = 0; r < N; r++) if (targets[r]! >= 0) count++;
  for (let r = 0; r < N; r++) {
    const tgt = targets[r]!;
    if (tgt < 0) continue;
    const a = zs.subarray(r * V, (r + 1) * V), b = zt.subarray(r * V, (r + 1) * V);
    const pS = softmax(a, 2), pT = softmax(b, 2), p1 = softmax(a, 1);
    const k = pT.reduce((acc, p, v) => acc + p * Math.log(p / pS[v]!), 0);
    const l = -Math.log(p1[tgt]!);
    kl += k; nll += l; loss += 0.3 * 4 * k + 0.7 * l;
    for (let v = 0; v < V; v++) ref[r * V + v] = (0.3 * 2 * (pS[v]! - pT[v]!) + 0.7 * (p1[v]! - (v === tgt ? 1 : 0))) / count;
  }
  assert.equal(sums.count, count);
  for (const [got, want, what] of [[sums.loss, loss, 'loss'], [sums.kl, kl, 'KL'], [sums.nll, nll, 'NLL']] as const) assert.ok(Math.abs(got - want) < 1e-9 * Math.max(1, want), `${what}: ${got} vs ${want}`);
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(grad[i]! - ref[i]!) < 1e-7, `dlogits[${i}]: ${grad[i]} vs ${ref[i]}`);
  // one chunk of all rows gives the same
  const whole = new Float32Array(N * V);
  const sums2 = await kdLoss({ N, V, targets, student: rows(zs, V), teacher: rows(zt, V) }, s, async (r0, n, g) => { whole.set(g, r0 * V); });
  assert.equal(sums2.loss, sums.loss);
  assert.deepEqual(whole, grad);
});

test('KD settings are checked', () => {
  assert.deepEqual(kdSettings({}), { temperature: 1, alpha: 1, hiddenWeight: 0 });
  assert.throws(() => kdSettings({ temperature: 0 }), /--kd-temp/);
  assert.throws(() => kdSettings({ alpha: 1.5 }), /--kd-alpha/);
  assert.throws(() => kdSettings({ hiddenWeight: -1 }), /--kd-hidden/);
});

/** A teacher whose distribution is one-hot on each position's next token. */
function oneHotTeacher(targets: Int32Array, V: number): TeacherModel {
  return {
    async forward() {
      return {
        outputs: new Map(),
        logits: async (r0, n, out) => {
          out.fill(-Infinity, 0, n * V);
          for (let i = 0; i < n; i++) if (targets[r0 + i]! >= 0) out[i * V + targets[r0 + i]!] = 0;
        },
      };
    },
  };
}

/** Every gradient array of a Grads, named. */
function gradList(g: Grads): [string, Float32Array][] {
  const out: [string, Float32Array][] = [];
  if (g.embed) out.push(['embed', g.embed]);
  if (g.norm) out.push(['norm', g.norm]);
  if (g.lmHead) out.push(['lmHead', g.lmHead]);
  g.blocks.forEach((b, li) => { for (const [n, a] of Object.entries(b ?? {})) out.push([`block ${li} ${n}`, a]); });
  return out;
}

function maxAbs(a: Float32Array): number { let m = 0; for (const x of a) m = Math.max(m, Math.abs(x)); return m; }

for (const name of ['llama1', 'qwen2-bias']) {
  test(`KD at temperature 1 against a one-hot teacher is CPT: same loss, same gradients (${name})`, { skip: SKIP_SHARED }, async () => {
    const f = loadFixture(name);
    const run = new LlamaRunner(f.model);
    const b: Batch = { ids: f.ids, targets: shiftTargets(f.ids, f.B, f.T), B: f.B, T: f.T };
    const V = f.model.config.vocabSize;
    const kd = await kdForwardBackward(run, oneHotTeacher(b.targets, V), b, kdSettings({}), null, ALL);
    const res = await run.forward(f.ids, f.B, f.T, { targets: b.targets, keep: true });
    const cpt = await run.backward(res, ALL);
    assert.equal(kd.count, res.count);
    assert.ok(Math.abs(kd.sum / kd.count - res.loss!) < 1e-5 * res.loss!, `loss ${kd.sum / kd.count} vs CPT ${res.loss}`);
    assert.ok(Math.abs(kd.kl - kd.nll) < 1e-6 * kd.nll, 'KL to a one-hot distribution is the NLL');
    const a = gradList(kd.grads!), c = new Map(gradList(cpt));
    assert.equal(a.length, c.size);
    let worst = 0;
    for (const [n, g] of a) {
      const ref = c.get(n)!;
      const scale = maxAbs(ref);
      for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i]! - ref[i]!) / scale);
    }
    assert.ok(worst < 1e-4, `worst gradient difference ${worst} of the tensor's largest entry`);
    console.log(`${name}: KD(one-hot, T=1) vs CPT gradients, worst difference ${worst.toExponential(2)} of each tensor's largest entry`);
  });
}

test('student = teacher: the KL and the hidden term are 0, and so is every gradient', { skip: SKIP_SHARED }, async () => {
  const f = loadFixture('llama1');
  const run = new LlamaRunner(f.model);
  const teacher = new Teacher(loadFixture('llama1').model);
  const b: Batch = { ids: f.ids, targets: shiftTargets(f.ids, f.B, f.T), B: f.B, T: f.T };
  const L = f.model.config.numLayers;
  const r = await kdForwardBackward(run, teacher, b, kdSettings({ temperature: 2, hiddenWeight: 1 }), [...Array(L).keys()], ALL);
  assert.ok(Math.abs(r.kl) < 1e-9 && r.hidden < 1e-12 && Math.abs(r.sum) < 1e-9, `KL ${r.kl}, hidden ${r.hidden}`);
  for (const [n, g] of gradList(r.grads!)) assert.ok(maxAbs(g) < 1e-9, `${n}: largest gradient ${maxAbs(g)}`);
});

/** The fixture pruned by `remove`, its lm_head and one projection perturbed so the student clearly differs from the teacher. */
function perturbedStudent(teacher: LlamaModel, remove: number[]): LlamaModel {
  const m = removeBlocks(teacher, remove);
  const rng = new Rng(5);
  const noisy = (t: Tensor): Tensor => ({ dtype: 'f32', shape: t.shape, data: Float32Array.from(t.data as Float32Array, (x) => x * 3 + (rng.next() - 0.5) * 0.05) });
  const lmHead = noisy(m.weights.lmHead);
  const blocks = m.weights.blocks.map((b, i) => (i === 1 ? { ...b, up: noisy(b.up) } : b));
  return { ...m, weights: { ...m.weights, blocks, lmHead, embed: m.config.tieWordEmbeddings ? lmHead : m.weights.embed } };
}

// hidden states of random weights are small: a large hidden weight makes that term count
const FD_CASES: [string, number[], Partial<KdSettings>][] = [
  ['llama1', [2], { temperature: 2, alpha: 0.6, hiddenWeight: 20 }],
  ['qwen2-bias', [1, 4], { temperature: 2, alpha: 0.6, hiddenWeight: 20 }],
  ['llama1', [1, 3], { temperature: 3, alpha: 1, hiddenWeight: 0 }],
];
for (const [name, remove, kdo] of FD_CASES) {
  test(`KD gradients (temperature ${kdo.temperature}, alpha ${kdo.alpha}, hidden weight ${kdo.hiddenWeight}) match central finite differences: ${name}`, { skip: SKIP_SHARED }, async () => {
    const f = loadFixture(name);
    const L = f.model.config.numLayers;
    const kept = [...Array(L).keys()].filter((i) => !remove.includes(i));
    const student = perturbedStudent(f.model, remove);
    const run = new LlamaRunner(student);
    const teacher = new Teacher(loadFixture(name).model); // its own weights: the student's are perturbed in place below
    const b: Batch = { ids: f.ids, targets: shiftTargets(f.ids, f.B, f.T), B: f.B, T: f.T };
    const s = kdSettings(kdo);
    const r = await kdForwardBackward(run, teacher, b, s, kept, ALL);
    assert.ok(r.kl / r.count > 1e-2, `the student differs from the teacher (KL ${r.kl / r.count})`);
    const loss = async () => { const x = await kdForwardBackward(run, teacher, b, s, kept, null); return x.sum / x.count; };
    const g = r.grads!;
    // the hidden term matters here: without it the first block's gradient is clearly different
    if (s.hiddenWeight > 0) {
      const noHidden = (await kdForwardBackward(run, teacher, b, { ...s, hiddenWeight: 0 }, kept, ALL)).grads!;
      const q0 = g.blocks[0]!.q!, q0n = noHidden.blocks[0]!.q!;
      assert.ok(q0.some((x, i) => Math.abs(x - q0n[i]!) > 0.05 * maxAbs(q0)), 'the hidden term changes the gradients');
    }
    const Ls = student.config.numLayers;
    const cases: [string, Float32Array, Float32Array][] = [
      ['embed', student.weights.embed.data as Float32Array, g.embed!],
      ['final norm', student.weights.norm.data as Float32Array, g.norm!],
      ...(g.lmHead ? [['lm_head', student.weights.lmHead.data as Float32Array, g.lmHead] as [string, Float32Array, Float32Array]] : []),
      ...(['q', 'down', 'postNorm', 'up'] as BlockWeightName[]).map((n, i): [string, Float32Array, Float32Array] => {
        const li = [0, Ls - 1, 1, 1][i]!;
        return [`block ${li} ${n}`, student.weights.blocks[li]![n].data as Float32Array, g.blocks[li]![n]!];
      }),
    ];
    if (student.weights.blocks[0]!.qBias) cases.push(['block 0 qBias', student.weights.blocks[0]!.qBias.data as Float32Array, g.blocks[0]!.qBias!]);
    const h = 1e-2, rng = new Rng(9);
    let worst = 0;
    for (const [what, w, gr] of cases) {
      const idx = [[...gr.keys()].sort((a, c) => Math.abs(gr[c]!) - Math.abs(gr[a]!))[0]!, rng.int(w.length)];
      const scale = Math.abs(gr[idx[0]!]!);
      assert.ok(scale > 0, `${what}: a non-zero gradient`);
      for (const i of idx) {
        const w0 = w[i]!;
        w[i] = w0 + h; run.invalidate(); const lp = await loss();
        w[i] = w0 - h; run.invalidate(); const lm = await loss();
        w[i] = w0; run.invalidate();
        const fd = (lp - lm) / (2 * h);
        const err = Math.abs(fd - gr[i]!) / scale;
        worst = Math.max(worst, err);
        assert.ok(err < 2e-2, `${name} ${what}[${i}]: analytic ${gr[i]}, finite difference ${fd} (error ${err.toExponential(2)} of the largest)`);
      }
    }
    console.log(`${name}: KD worst FD error ${worst.toExponential(2)} (relative to each tensor's largest gradient entry)`);
  });
}
