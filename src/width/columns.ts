/** Per-column reductions of an [out, in] weight matrix (the input channels width pruning scores). */
import { rowsToF32, type Tensor } from '../engine/tensor.js';

/** For each column j: sum_i f(W[i, j]), accumulated in float64, one widened row at a time. */
function columnReduce(W: Tensor, f: (x: number) => number): Float64Array {
  const [rows, cols] = W.shape as [number, number];
  const acc = new Float64Array(cols);
  const row = new Float32Array(cols);
  for (let i = 0; i < rows; i++) {
    rowsToF32(W, i, 1, row);
    for (let j = 0; j < cols; j++) acc[j]! += f(row[j]!);
  }
  return acc;
}

/** mean_i |W[i, j]| */
export function columnAbsMean(W: Tensor): Float64Array {
  const rows = W.shape[0]!;
  return columnReduce(W, Math.abs).map((v) => v / rows);
}

/** sum_i W[i, j]^2 */
export function columnSqNorm(W: Tensor): Float64Array {
  return columnReduce(W, (x) => x * x);
}

/** y[i] = sum_{j in cols} W[i, j] * x[j]: what the given input channels contribute to the output at input x. */
export function partialMatVec(W: Tensor, cols: number[], x: ArrayLike<number>): Float32Array {
  const [rows, n] = W.shape as [number, number];
  const y = new Float32Array(rows);
  const row = new Float32Array(n);
  for (let i = 0; i < rows; i++) {
    rowsToF32(W, i, 1, row);
    let s = 0;
    for (const j of cols) s += row[j]! * x[j]!;
    y[i] = s;
  }
  return y;
}
