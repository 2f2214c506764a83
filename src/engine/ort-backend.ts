/**
 * GEMMs through onnxruntime-node (MLAS kernels, multi-threaded): the fastest fp32 matmul
 * reachable from Node here. Each distinct op shape family gets one tiny ONNX graph with symbolic
 * dimensions, built once and reused. bf16 weights are widened into a scratch buffer per call
 * (ORT's JS API has no bfloat16 tensors); f16 weights are cast inside the graph.
 * Tiny products go to the JS kernel, where a native call would cost more than the arithmetic.
 */
import ort from 'onnxruntime-node';
import onnxPkg from 'onnx-proto';
import type { Backend, GemmArgs, BmmArgs } from './backend.js';
import { jsBackend } from './js-backend.js';
import { widenBf16 } from './dtype.js';
import type { Tensor } from './tensor.js';

const { onnx } = onnxPkg;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const FLOAT16 = onnx.TensorProto.DataType.FLOAT16;
const INT = onnx.AttributeProto.AttributeType.INT;
const INTS = onnx.AttributeProto.AttributeType.INTS;

/** Below this many multiply-adds the JS kernel wins over a native call. */
const SMALL_MACS = 1 << 17;

function valueInfo(name: string, dims: (string | number)[], elemType: number = FLOAT) {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  });
}

function encodeModel(nodes: InstanceType<typeof onnx.NodeProto>[], inputs: ReturnType<typeof valueInfo>[], outputs: ReturnType<typeof valueInfo>[]): Uint8Array {
  const graph = onnx.GraphProto.create({ name: 'g', node: nodes, input: inputs, output: outputs });
  const model = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph });
  return onnx.ModelProto.encode(model).finish();
}

function gemmGraph(transA: boolean, transB: boolean, accumulate: boolean, half: boolean): Uint8Array {
  const nodes = [];
  let bName = 'B';
  if (half) {
    nodes.push(onnx.NodeProto.create({ opType: 'Cast', input: ['B'], output: ['Bf'], attribute: [{ name: 'to', i: FLOAT, type: INT }] }));
    bName = 'Bf';
  }
  nodes.push(onnx.NodeProto.create({
    opType: 'Gemm', input: accumulate ? ['A', bName, 'C'] : ['A', bName], output: ['Y'],
    attribute: [{ name: 'transA', i: transA ? 1 : 0, type: INT }, { name: 'transB', i: transB ? 1 : 0, type: INT }, { name: 'beta', f: 1, type: onnx.AttributeProto.AttributeType.FLOAT }],
  }));
  const inputs = [valueInfo('A', transA ? ['k', 'm'] : ['m', 'k']), valueInfo('B', transB ? ['n', 'k'] : ['k', 'n'], half ? FLOAT16 : FLOAT)];
  if (accumulate) inputs.push(valueInfo('C', ['m', 'n']));
  return encodeModel(nodes, inputs, [valueInfo('Y', ['m', 'n'])]);
}

function bmmGraph(transA: boolean, transB: boolean): Uint8Array {
  const nodes = [];
  let aName = 'A', bName = 'B';
  if (transA) {
    nodes.push(onnx.NodeProto.create({ opType: 'Transpose', input: ['A'], output: ['At'], attribute: [{ name: 'perm', ints: [0, 2, 1], type: INTS }] }));
    aName = 'At';
  }
  if (transB) {
    nodes.push(onnx.NodeProto.create({ opType: 'Transpose', input: ['B'], output: ['Bt'], attribute: [{ name: 'perm', ints: [0, 2, 1], type: INTS }] }));
    bName = 'Bt';
  }
  nodes.push(onnx.NodeProto.create({ opType: 'MatMul', input: [aName, bName], output: ['Y'] }));
  return encodeModel(nodes, [valueInfo('A', transA ? ['b', 'k', 'm'] : ['b', 'm', 'k']), valueInfo('B', transB ? ['b', 'n', 'k'] : ['b', 'k', 'n'])], [valueInfo('Y', ['b', 'm', 'n'])]);
}

export interface OrtBackendOptions {
  /** intra-op threads (default: all cores) */
  threads?: number;
}

export class OrtBackend implements Backend {
  readonly name = 'onnxruntime';
  private sessions = new Map<string, Promise<ort.InferenceSession>>();
  private scratch = new Float32Array(0);

  constructor(private opts: OrtBackendOptions = {}) {}

  private session(key: string, build: () => Uint8Array): Promise<ort.InferenceSession> {
    let s = this.sessions.get(key);
    if (!s) {
      s = ort.InferenceSession.create(build(), {
        intraOpNumThreads: this.opts.threads ?? 0,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
      this.sessions.set(key, s);
    }
    return s;
  }

  /** The weight operand as an ORT tensor: f32 as is, f16 as is (cast in-graph), bf16 widened. */
  private weightTensor(b: Float32Array | Tensor, dims: number[]): { t: ort.Tensor; half: boolean } {
    if (b instanceof Float32Array) return { t: new ort.Tensor('float32', b, dims), half: false };
    if (b.dtype === 'f32') return { t: new ort.Tensor('float32', b.data as Float32Array, dims), half: false };
    if (b.dtype === 'f16') return { t: new ort.Tensor('float16', b.data as Uint16Array, dims), half: true };
    const n = b.data.length;
    if (this.scratch.length < n) this.scratch = new Float32Array(n);
    const w = this.scratch.subarray(0, n);
    widenBf16(b.data as Uint16Array, w);
    return { t: new ort.Tensor('float32', w, dims), half: false };
  }

  async gemm(x: GemmArgs): Promise<void> {
    if (x.m * x.n * x.k < SMALL_MACS) return jsBackend.gemm(x);
    const transA = x.transA ?? false, transB = x.transB ?? false, acc = x.accumulate ?? false;
    const { t: bT, half } = this.weightTensor(x.b, transB ? [x.n, x.k] : [x.k, x.n]);
    const sess = await this.session(`gemm:${+transA}${+transB}${+acc}${+half}`, () => gemmGraph(transA, transB, acc, half));
    const feeds: Record<string, ort.Tensor> = { A: new ort.Tensor('float32', x.a.subarray(0, x.m * x.k), transA ? [x.k, x.m] : [x.m, x.k]), B: bT };
    if (acc) feeds['C'] = new ort.Tensor('float32', x.c.subarray(0, x.m * x.n), [x.m, x.n]);
    const out = await sess.run(feeds);
    x.c.set(out['Y']!.data as Float32Array);
  }

  async bmm(x: BmmArgs): Promise<void> {
    if (x.batch * x.m * x.n * x.k < SMALL_MACS) return jsBackend.bmm(x);
    const transA = x.transA ?? false, transB = x.transB ?? false;
    const sess = await this.session(`bmm:${+transA}${+transB}`, () => bmmGraph(transA, transB));
    const out = await sess.run({
      A: new ort.Tensor('float32', x.a.subarray(0, x.batch * x.m * x.k), transA ? [x.batch, x.k, x.m] : [x.batch, x.m, x.k]),
      B: new ort.Tensor('float32', x.b.subarray(0, x.batch * x.k * x.n), transB ? [x.batch, x.n, x.k] : [x.batch, x.k, x.n]),
    });
    x.c.set(out['Y']!.data as Float32Array);
  }
}

let defaultBackend: Backend | null = null;

/** The process-wide default backend: onnxruntime unless SHORTENED_BACKEND=js. */
export function getBackend(): Backend {
  if (!defaultBackend) defaultBackend = process.env['SHORTENED_BACKEND'] === 'js' ? jsBackend : new OrtBackend();
  return defaultBackend;
}
