/**
 * The five failures of the bad-input suite, each as a test: an output over or inside the input
 * model (with --force too), NaN in a weight, overlapping safetensors offsets, a repeated or
 * shuffled --blocks list; and the strict safetensors rules around them.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { shorten, expectUserError } from './cli-helpers.js';
import { readSafetensorsHeader, writeSafetensors } from '../src/io/safetensors.js';
import { firstNonFinite } from '../src/engine/finite.js';
import { checkScores } from '../src/prune/pipeline.js';
import { OUTPUT_MARKER } from '../src/io/output-guard.js';
import { UserError } from '../src/util/errors.js';
import { parseBytes } from '../src/util/memory.js';
import { tmpDir, tinyModelDir, writeText } from './train-helpers.js';
import { sparse7b } from './sparse-model.js';


/** Every file below `dir` with its sha256: the folder's whole content. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

/** A small model folder with a model card and a training log beside the weights. */
function userModel(dir: string): string {
  tinyModelDir(dir);
  fs.writeFileSync(path.join(dir, 'README.md'), '# my model\n');
  fs.writeFileSync(path.join(dir, 'train-log.json'), '{"kind": "train", "steps": []}\n');
  return dir;
}

test('case 1: prune/prune-width/train/eval/score/bench/report never write over or into an input folder, --force or not', () => {
  const dir = tmpDir('guard-');
  const m = userModel(path.join(dir, 'M'));
  const data = writeText(path.join(dir, 'd.txt'), 60);
  const before = snapshot(m);
  const over = /the input .*outputs are never written over or into an input/;
  for (const force of [[], ['--force']]) {
    expectUserError(['prune', '--model', m, '--blocks', '1', '--out', m, ...force], over);
    expectUserError(['prune', '--model', m, '--blocks', '1', '--out', path.join(m, 'sub'), ...force], over);
    expectUserError(['prune', '--model', path.join(m, '.'), '--blocks', '1', '--out', `${m}/`, ...force], over);
    expectUserError(['prune-width', '--model', m, '--method', 'wanda-sp', '--ratio', '0.2', '--data', data, '--out', path.join(m, 'w'), ...force], over);
    expectUserError(['train', 'cpt', '--model', m, '--data', data, '--out', m, '--max-steps', '1', ...force], over);
    expectUserError(['train', 'lora', '--model', m, '--data', data, '--out', path.join(m, 'lora'), '--max-steps', '1', ...force], over);
    expectUserError(['train', 'cpt', '--model', m, '--data', data, '--out', dir, '--max-steps', '1', ...force], /contains the input/);
  }
  expectUserError(['eval', 'ppl', '--model', m, '--datasets', 'none', '--text', data, '--out', path.join(m, 'eval')], over);
  expectUserError(['score', '--model', m, '--criterion', 'magnitude', '--out', m], over);
  expectUserError(['bench', '--model', m, '--out', path.join(m, 'bench')], over);
  expectUserError(['report', m, '--out', path.join(m, 'report')], over);
  // a symbolic link to the model is the model
  fs.symlinkSync(m, path.join(dir, 'link'));
  expectUserError(['prune', '--model', path.join(dir, 'link'), '--blocks', '1', '--out', path.join(m, 'x'), '--force'], over);
  assert.deepEqual(snapshot(m), before, 'the input folder is unchanged, byte for byte');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('case 1: --force replaces an earlier output of shorten, never a folder shorten did not write', () => {
  const dir = tmpDir('force-');
  const m = userModel(path.join(dir, 'M'));
  const other = userModel(path.join(dir, 'other'));
  fs.rmSync(path.join(other, OUTPUT_MARKER));
  const before = snapshot(other);
  expectUserError(['prune', '--model', m, '--blocks', '1', '--out', other, '--force'], /was not written by shorten.*--force only replaces earlier outputs/);
  expectUserError(['train', 'cpt', '--model', m, '--out', other, '--force', '--max-steps', '1'], /was not written by shorten/);
  assert.deepEqual(snapshot(other), before);

  const out = path.join(dir, 'pruned');
  assert.equal(shorten(['prune', '--model', m, '--blocks', '1', '--out', out]).code, 0);
  assert.ok(fs.existsSync(path.join(out, OUTPUT_MARKER)));
  expectUserError(['prune', '--model', m, '--blocks', '0', '--out', out], /output folder exists.*--force/);
  const r = shorten(['prune', '--model', m, '--blocks', '0', '--out', out, '--force', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, 'pruning.json'), 'utf8')).removed_blocks, [0]);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Rewrite one weight of a model folder with a NaN (or another value) at element `at`. */
function poison(dir: string, name: string, at: number, value: number): void {
  const file = path.join(dir, 'model.safetensors');
  const h = readSafetensorsHeader(file);
  const e = h.tensors.get(name)!;
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(4);
  b.writeFloatLE(value);
  fs.writeSync(fd, b, 0, 4, h.dataStart + e.begin + 4 * at);
  fs.closeSync(fd);
}

test('case 2: one NaN in one weight: ppl, score and prune stop with one line naming the tensor, exit 1, nothing written', () => {
  const dir = tmpDir('nan-');
  const m = tinyModelDir(path.join(dir, 'M'));
  poison(m, 'model.layers.1.mlp.up_proj.weight', 70, NaN);
  const ids = path.join(dir, 'ids.json');
  fs.writeFileSync(ids, JSON.stringify({ input_ids: [[1, 5, 9, 33, 2, 7, 8, 100]] }));
  const named = /weight 'model\.layers\.1\.mlp\.up_proj\.weight' in model\.safetensors holds NaN at \[2, 6\]: the model's weights are corrupt/;
  expectUserError(['ppl', '--model', m, '--ids', ids, '--json'], named);
  expectUserError(['score', '--model', m, '--criterion', 'ppl', '--calib-ids', ids, '--json'], named);
  expectUserError(['prune', '--model', m, '--criterion', 'taylor', '--calib-ids', ids, '--remove', '1', '--no-plus', '--out', path.join(dir, 'p')], named);
  assert.ok(!fs.existsSync(path.join(dir, 'p')));
  poison(m, 'model.layers.1.mlp.up_proj.weight', 70, 0.5);
  poison(m, 'model.norm.weight', 3, -Infinity);
  expectUserError(['ppl', '--model', m, '--ids', ids], /weight 'model\.norm\.weight' .*holds -Inf at \[3\]/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('case 2: a NaN score stops scoring with the block named; +Inf (a protected block) is a valid score', () => {
  assert.throws(() => checkScores({ criterion: 'taylor', scores: [1, 2, NaN, 4], order: [0, 1, 2, 3], details: {} }), (e: unknown) => e instanceof UserError && /the taylor score of block 2 is NaN/.test(e.message));
  assert.doesNotThrow(() => checkScores({ criterion: 'ppl', scores: [Infinity, 2, 3, Infinity], order: [1, 2, 0, 3], details: {} }));
});

test('firstNonFinite finds the first NaN/Inf in bf16, f16 and f32 data, at any position, aligned or not', () => {
  const bf = new Uint16Array(1001).fill(0x3f80);
  assert.equal(firstNonFinite(bf, 'bf16'), -1);
  for (const [bits, at] of [[0x7f80, 0], [0xff80, 999], [0x7fc1, 1000], [0x7f81, 517]] as const) {
    const a = bf.slice(); a[at] = bits; a[at === 0 ? 5 : 0] = 0x7f7f; // the largest finite bf16 is not flagged
    assert.equal(firstNonFinite(a, 'bf16'), at);
  }
  const f16 = new Uint16Array(new ArrayBuffer(2 * 70), 2, 69).fill(0x7bff); // unaligned, largest finite f16
  assert.equal(firstNonFinite(f16, 'f16'), -1);
  f16[68] = 0xfc00;
  assert.equal(firstNonFinite(f16, 'f16'), 68);
  const f32 = new Float32Array(300).fill(3.4e38);
  assert.equal(firstNonFinite(f32, 'f32'), -1);
  f32[123] = Infinity; f32[200] = NaN;
  assert.equal(firstNonFinite(f32, 'f32'), 123);
});

/** Write a safetensors file whose header is `header` (no validation on our side) and `dataBytes` of data. */
function rawSafetensors(file: string, header: Record<string, unknown>, dataBytes: number): string {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
  return file;
}

test('case 3: safetensors offsets must tile the data exactly: overlap, gap, trailing bytes and bad entries are refused', () => {
  const dir = tmpDir('st-');
  const f = path.join(dir, 'x.safetensors');
  const t = (begin: number, end: number, shape = [2]) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });
  const bad: [Record<string, unknown>, number, RegExp][] = [
    [{ a: t(0, 8), b: t(0, 8) }, 8, /overlaps the bytes of another tensor/],
    [{ a: t(0, 8), b: t(4, 12) }, 12, /overlaps/],
    [{ a: t(0, 8), b: t(12, 20) }, 20, /bytes 8\.\.12 before tensor 'b' belong to no tensor/],
    [{ a: t(0, 8) }, 12, /4 bytes after the last tensor belong to no tensor/],
    [{ a: t(0, 8), b: t(8, 16) }, 12, /truncated safetensors file/],
    [{ a: t(0, 12, [2]) }, 12, /tensor 'a' of shape \[2\] F32 needs 8 bytes, header gives 12/],
    [{ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, 8, /invalid shape/],
    [{ a: { dtype: 'F32', shape: [2.5], data_offsets: [0, 10] } }, 10, /invalid shape/],
    [{ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8, 9] } }, 8, /invalid data_offsets/],
    [{ a: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } }, 8, /unsupported dtype Q4/],
    [{ a: { dtype: 'toString', shape: [2], data_offsets: [0, 8] } }, 8, /unsupported dtype toString/],
    [{ __metadata__: { format: 1 }, a: t(0, 8) }, 8, /__metadata__ must map strings to strings/],
    [{ a: t(0, 8), b: { dtype: 'F32', shape: [2] } }, 8, /corrupt safetensors header entry for 'b'/],
  ];
  for (const [header, n, pattern] of bad) {
    assert.throws(() => readSafetensorsHeader(rawSafetensors(f, header, n)), (e: unknown) => e instanceof UserError && pattern.test(e.message) && !e.message.includes('\n'), JSON.stringify(header));
  }
  // the reference sorts entries by offset: a header listing them out of order is valid
  const ok = readSafetensorsHeader(rawSafetensors(f, { b: t(8, 16), __metadata__: { format: 'pt' }, a: t(0, 8), empty: t(16, 16, [0]) }, 16));
  assert.deepEqual([...ok.tensors.keys()].sort(), ['a', 'b', 'empty']);
  // a header past the reference's 100,000,000-byte limit is refused before it is read
  const big = Buffer.alloc(16);
  big.writeBigUInt64LE(100_000_001n);
  fs.writeFileSync(f, big);
  assert.throws(() => readSafetensorsHeader(f), /exceeds the format's limit/);
  // non-UTF-8 header bytes and headers that are not objects
  for (const body of [Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), Buffer.from('[1,2]'), Buffer.from(' {}')]) {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(body.length));
    fs.writeFileSync(f, Buffer.concat([len, body]));
    assert.throws(() => readSafetensorsHeader(f), (e: unknown) => e instanceof UserError && /corrupt safetensors header/.test(e.message));
  }
  // what we write passes our own validation
  writeSafetensors(f, [['w', { dtype: 'f32', shape: [3, 2], data: new Float32Array(6) }], ['v', { dtype: 'bf16', shape: [3], data: new Uint16Array(3) }]]);
  assert.equal(readSafetensorsHeader(f).tensors.size, 2);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('case 3: a model whose shard has two tensors sharing a byte range is refused by the CLI', () => {
  const dir = tmpDir('st-cli-');
  const m = tinyModelDir(path.join(dir, 'M'));
  const file = path.join(m, 'model.safetensors');
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
  header['model.layers.0.self_attn.k_proj.weight']!.data_offsets = [...header['model.layers.0.self_attn.q_proj.weight']!.data_offsets];
  header['model.layers.0.self_attn.k_proj.weight']!.data_offsets[1] = header['model.layers.0.self_attn.k_proj.weight']!.data_offsets[0] + 32 * 16 * 4;
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, buf.subarray(8 + n)]));
  expectUserError(['ppl', '--model', m, '--text', writeText(path.join(dir, 'd.txt'), 10)], /model\.safetensors: corrupt safetensors (header|file)/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('case 4: --blocks with a repeat or out of order is refused with the list the user probably meant', () => {
  const dir = tmpDir('blocks-');
  const m = tinyModelDir(path.join(dir, 'M'));
  expectUserError(['prune', '--model', m, '--blocks', '1,1,1', '--out', path.join(dir, 'p')], /--blocks 1,1,1 names block 1 more than once; did you mean --blocks 1\?/);
  expectUserError(['prune', '--model', m, '--blocks', '1,0', '--out', path.join(dir, 'p')], /--blocks 1,0 is not in ascending order; did you mean --blocks 0,1\?/);
  assert.ok(!fs.existsSync(path.join(dir, 'p')));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('case 5: taylor on a 7B model with 64x2048 calibration tokens is refused within seconds, with the estimate, what is available and what lowers it', () => {
  const dir = tmpDir('oom-');
  const m = sparse7b(path.join(dir, '7b'));
  const t0 = performance.now();
  for (const cmd of [['score', '--model', m, '--criterion', 'taylor', '--calib-ids', path.join(m, 'ids.json')],
    ['prune', '--model', m, '--criterion', 'taylor', '--calib-ids', path.join(m, 'ids.json'), '--remove', '4', '--out', path.join(dir, 'pruned')]]) {
    const line = expectUserError(cmd, /^error: score --criterion taylor needs about \d+\.\d GiB of memory \(.*weights 12\.6 GiB.*\), \d+\.\d GiB is available; lower --n or --seq-len/);
    const need = Number(/needs about (\d+\.\d) GiB/.exec(line)![1]);
    assert.ok(need > 24, `the estimate (${need} GiB) exceeds a 24 GB machine`);
  }
  assert.ok(performance.now() - t0 < 20_000, 'refused within seconds (no weights read)');
  assert.ok(!fs.existsSync(path.join(dir, 'pruned')));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('case 5: the preflight plans for the memory it is told of (SHORTENED_MEMORY_LIMIT), and a run that fits is not refused', () => {
  const dir = tmpDir('limit-');
  const m = tinyModelDir(path.join(dir, 'M'));
  const ids = path.join(dir, 'ids.json');
  fs.writeFileSync(ids, JSON.stringify({ input_ids: [[1, 5, 9, 33, 2, 7, 8, 100]] }));
  for (const args of [['ppl', '--model', m, '--ids', ids], ['score', '--model', m, '--criterion', 'taylor', '--calib-ids', ids]]) {
    const r = shorten(args, { SHORTENED_MEMORY_LIMIT: '64M' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: (ppl|score --criterion taylor) needs about 0\.\d GiB of memory \(runtime 0\.3 GiB.*\), 0\.1 GiB is available; lower .*\n$/);
    assert.equal(shorten(args, { SHORTENED_MEMORY_LIMIT: '64M', SHORTENED_NO_PREFLIGHT: '1' }).code, 0);
    assert.equal(shorten(args, { SHORTENED_MEMORY_LIMIT: '2G' }).code, 0);
  }
  assert.equal(parseBytes('24G'), 24 * 2 ** 30);
  assert.equal(parseBytes('512m'), 512 * 2 ** 20);
  assert.equal(parseBytes('1.5GiB'), 1.5 * 2 ** 30);
  assert.equal(parseBytes('1000'), 1000);
  assert.throws(() => parseBytes('lots'), UserError);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('case 1: export gguf never writes into the model folder, and --force replaces only an earlier GGUF', () => {
  const dir = tmpDir('guard-gguf-');
  const m = userModel(path.join(dir, 'M'));
  const before = snapshot(m);
  expectUserError(['export', 'gguf', '--model', m, '--out', path.join(m, 'model.gguf'), '--force'], /is inside the input/);
  const notGguf = path.join(dir, 'notes.txt');
  fs.writeFileSync(notGguf, 'my notes');
  expectUserError(['export', 'gguf', '--model', m, '--out', notGguf, '--force'], /is not a GGUF file: --force only replaces earlier exports/);
  assert.equal(fs.readFileSync(notGguf, 'utf8'), 'my notes');
  const out = path.join(dir, 'm.gguf');
  assert.equal(shorten(['export', 'gguf', '--model', m, '--out', out]).code, 0);
  assert.equal(shorten(['export', 'gguf', '--model', m, '--out', out, '--force']).code, 0);
  assert.deepEqual(snapshot(m), before);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('case 5: training that cannot fit is refused before loading: full CPT of a 7B model, LoRA at 16x2048', () => {
  const dir = tmpDir('oom-train-');
  const m = sparse7b(path.join(dir, '7b'));
  const data = writeText(path.join(dir, 'd.txt'), 10);
  const t0 = performance.now();
  const cpt = expectUserError(['train', 'cpt', '--model', m, '--data', data, '--out', path.join(dir, 'cpt'), '--max-steps', '1'],
    /^error: train cpt needs about \d+\.\d GiB of memory \(.*AdamW moments 50\.2 GiB.*\), \d+\.\d GiB is available; lower --micro-batch or --seq-len \(full training needs 16 bytes a parameter: use LoRA for large models\)/);
  assert.ok(Number(/needs about (\d+\.\d)/.exec(cpt)![1]) > 100);
  expectUserError(['train', 'lora', '--model', m, '--data', data, '--out', path.join(dir, 'lora'), '--micro-batch', '16', '--cutoff', '2048', '--max-steps', '1'],
    /^error: train lora needs about \d+\.\d GiB of memory \((workspace|activations) .*\), \d+\.\d GiB is available; lower --micro-batch or --cutoff/);
  assert.ok(performance.now() - t0 < 20_000);
  assert.ok(!fs.existsSync(path.join(dir, 'cpt')) && !fs.existsSync(path.join(dir, 'lora')));
  fs.rmSync(dir, { recursive: true, force: true });
});
