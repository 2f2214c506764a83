/**
 * Property-based fuzzing of every parser a user's files reach: safetensors headers, config.json,
 * tokenizer files (tokenizer.json and llama2.c's tokenizer.bin), token-id files and zero-shot task
 * files. Each case is a mutation of a valid file; the property is that parsing either succeeds or
 * ends in a UserError with a one-line message, never another exception or a hang. A few CLI runs
 * on mutated model folders check that a failure leaves no partial output behind.
 *
 * The seed is fixed so CI is repeatable; SHORTENED_FUZZ_SEED=random (or a number) explores more,
 * and SHORTENED_FUZZ_RUNS scales the case counts.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { readSafetensorsHeader, readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { parseConfig } from '../src/io/config.js';
import { loadModel } from '../src/io/model-folder.js';
import { loadTokenizer, tokenizerFromJson } from '../src/io/tokenizer.js';
import { readLlama2cTokenizer, llama2cTokenizerToHf } from '../src/io/llama2c-tokenizer.js';
import { readIdsFile } from '../src/prune/calibration.js';
import { loadTaskFile } from '../src/eval/zeroshot/tasks.js';
import { LlamaRunner } from '../src/model/llama.js';
import { UserError } from '../src/util/errors.js';
import { projectDir, sharedDir, hasShared } from '../src/util/shared.js';
import { tmpDir, tinyModelDir } from './train-helpers.js';

const seedEnv = process.env['SHORTENED_FUZZ_SEED'];
const SEED = seedEnv === 'random' ? Date.now() % 2 ** 31 : seedEnv ? Number(seedEnv) : 20261201;
const SCALE = Number(process.env['SHORTENED_FUZZ_RUNS'] ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));
const params = (n: number) => ({ seed: SEED, numRuns: runs(n), endOnFailure: true });

/** Run `f`; any exception must be a UserError with a non-empty one-line message. */
function userErrorOrOk(f: () => unknown): boolean {
  try {
    f();
    return true;
  } catch (e) {
    if (!(e instanceof UserError)) throw new Error(`not a UserError: ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`);
    if (!e.message || e.message.includes('\n')) throw new Error(`UserError message is not one line: ${JSON.stringify(e.message)}`);
    return false;
  }
}

/** Any JSON value a hostile or broken file could hold in a field. */
const anyJson = fc.oneof(
  fc.integer({ min: -3, max: 70000 }), fc.constantFrom(0, -1, 1.5, 1e300, -0, 2 ** 53, 2 ** 31, Number.MAX_SAFE_INTEGER),
  fc.string({ maxLength: 8 }), fc.constant(null), fc.boolean(), fc.array(fc.integer({ min: -2, max: 40 }), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 3 }), fc.constantFrom('F32', 'BF16', 'Q4', '__proto__', 'constructor'),
);

/** Byte-level damage to a file: flip bytes, cut it, or append junk. */
const damage = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
);
type Damage = typeof damage extends fc.Arbitrary<infer T> ? T : never;

function applyDamage(buf: Buffer, d: Damage, within = buf.length): Buffer {
  const b = Buffer.from(buf);
  if (d.kind === 'flip') { for (let i = 0; i < d.bytes.length; i++) b[(d.at + i) % within] = d.bytes[i]!; return b; }
  if (d.kind === 'cut') return b.subarray(0, d.at % b.length);
  return Buffer.concat([b, Buffer.from(d.bytes)]);
}

test('fuzz safetensors headers: mutated fields, damaged bytes and random headers end in a UserError or a readable file', () => {
  const dir = tmpDir('fuzz-st-');
  const good = path.join(dir, 'good.safetensors');
  writeSafetensors(good, [
    ['a', { dtype: 'f32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
    ['b', { dtype: 'bf16', shape: [4], data: new Uint16Array(4) }],
    ['c', { dtype: 'f16', shape: [1, 2], data: new Uint16Array(2) }],
  ]);
  const buf = fs.readFileSync(good);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, Record<string, unknown>>;
  const data = buf.subarray(8 + n);
  const f = path.join(dir, 'x.safetensors');
  const check = (bytes: Buffer) => {
    fs.writeFileSync(f, bytes);
    if (userErrorOrOk(() => readSafetensorsHeader(f))) userErrorOrOk(() => readSafetensors(f));
  };
  const withHeader = (h: unknown, tail: Buffer = data) => {
    const json = Buffer.from(JSON.stringify(h));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    return Buffer.concat([len, json, tail]);
  };
  // one field of one entry replaced by anything
  fc.assert(fc.property(fc.constantFrom('a', 'b', 'c', '__metadata__'), fc.constantFrom('dtype', 'shape', 'data_offsets', 'format', 'x'), anyJson, (name, field, value) => {
    const h = structuredClone(header);
    h[name] = { ...h[name], [field]: value };
    check(withHeader(h));
  }), params(1000));
  // one offset or dimension nudged (overlaps, gaps, sizes that disagree)
  fc.assert(fc.property(fc.constantFrom('a', 'b', 'c'), fc.boolean(), fc.nat(1), fc.integer({ min: -9, max: 9 }), (name, offsets, k, delta) => {
    const h = structuredClone(header);
    const arr = [...(h[name]![offsets ? 'data_offsets' : 'shape'] as number[])];
    arr[k % arr.length] = arr[k % arr.length]! + delta;
    h[name]![offsets ? 'data_offsets' : 'shape'] = arr;
    check(withHeader(h));
  }), params(1000));
  // damaged bytes anywhere in the file, and damage confined to the 8-byte length and the header
  fc.assert(fc.property(damage, fc.boolean(), (d, inHeader) => check(applyDamage(buf, d, inHeader ? 8 + n : buf.length))), params(1000));
  // arbitrary JSON as the header
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 3 }), (h) => check(withHeader(h))), params(300));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('fuzz config.json: any field set to anything or removed: parseConfig and loadModel end in a UserError or a consistent model', () => {
  const dir = tmpDir('fuzz-cfg-');
  const m = tinyModelDir(path.join(dir, 'M'));
  const cfgFile = path.join(m, 'config.json');
  const base = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  const keys = [...Object.keys(base), 'head_dim', 'rope_scaling', 'shortened_layer_shapes', 'attention_bias', 'mlp_bias'];
  const mutation = fc.record({ key: fc.constantFrom(...keys), value: fc.option(anyJson, { nil: undefined }) });
  const mutate = (ms: { key: string; value: unknown }[]) => {
    const c: Record<string, unknown> = { ...base };
    for (const { key, value } of ms) { if (value === undefined) delete c[key]; else c[key] = value; }
    return c;
  };
  fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
    const c = mutate(ms);
    if (userErrorOrOk(() => parseConfig(c))) {
      const cfg = parseConfig(c);
      for (const l of cfg.layers) assert.ok(Number.isSafeInteger(l.numHeads) && l.numHeads > 0 && l.numKvHeads > 0 && l.numHeads % l.numKvHeads === 0);
      assert.ok([cfg.hiddenSize, cfg.numLayers, cfg.vocabSize, cfg.headDim].every((x) => Number.isSafeInteger(x) && x > 0));
    }
  }), params(3000));
  // the same against the weights on disk (fewer cases: each reads the folder)
  fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 2 }), (ms) => {
    fs.writeFileSync(cfgFile, JSON.stringify(mutate(ms)));
    userErrorOrOk(() => loadModel(m));
  }), params(200));
  fc.assert(fc.property(damage, (d) => {
    fs.writeFileSync(cfgFile, applyDamage(Buffer.from(JSON.stringify(base)), d));
    userErrorOrOk(() => loadModel(m));
  }), params(200));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('fuzz tokenizer files: mutated tokenizer.json / tokenizer_config.json and damaged tokenizer.bin end in a UserError or a working tokenizer', () => {
  const dir = tmpDir('fuzz-tok-');
  const src = projectDir('assets', 'default');
  const base = JSON.parse(fs.readFileSync(path.join(src, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
  const model = base['model'] as Record<string, unknown>;
  const use = (tok: ReturnType<typeof tokenizerFromJson>) => tok.decode(tok.encode('Hello, world! 123 ünïcode', { addSpecialTokens: true }));
  // a top-level section or a model field replaced by anything
  fc.assert(fc.property(fc.boolean(), fc.constantFrom('model', 'normalizer', 'pre_tokenizer', 'decoder', 'added_tokens', 'post_processor', 'type', 'vocab', 'merges', 'unk_token', 'byte_fallback'), anyJson, (top, key, value) => {
    const j = { ...base, model: { ...model } } as Record<string, unknown>;
    if (top) j[key] = value; else (j['model'] as Record<string, unknown>)[key] = value;
    userErrorOrOk(() => use(tokenizerFromJson(j)));
  }), params(250));
  // the files on disk: damaged JSON text in either file
  const folder = path.join(dir, 'T');
  fs.mkdirSync(folder);
  const tokText = Buffer.from(JSON.stringify(base));
  const cfgText = fs.readFileSync(path.join(src, 'tokenizer_config.json'));
  fc.assert(fc.property(damage, fc.boolean(), (d, whichFile) => {
    fs.writeFileSync(path.join(folder, 'tokenizer.json'), whichFile ? applyDamage(tokText, d) : tokText);
    fs.writeFileSync(path.join(folder, 'tokenizer_config.json'), whichFile ? cfgText : applyDamage(cfgText, d));
    userErrorOrOk(() => use(loadTokenizer(folder)));
  }), params(150));
  fc.assert(fc.property(fc.dictionary(fc.constantFrom('bos_token', 'eos_token', 'add_bos_token', 'model_max_length', 'chat_template'), anyJson), (cfg) => {
    fs.writeFileSync(path.join(folder, 'tokenizer.json'), tokText);
    fs.writeFileSync(path.join(folder, 'tokenizer_config.json'), JSON.stringify(cfg));
    userErrorOrOk(() => use(loadTokenizer(folder)));
  }), params(150));
  // llama2.c tokenizer.bin: damaged bytes, read with and without the model's vocab size, then converted
  if (hasShared()) {
    const bin = fs.readFileSync(sharedDir('models', 'stories260K', 'tok512.bin'));
    const f = path.join(dir, 'tok.bin');
    fc.assert(fc.property(damage, fc.boolean(), (d, sized) => {
      fs.writeFileSync(f, applyDamage(bin, d));
      userErrorOrOk(() => llama2cTokenizerToHf(readLlama2cTokenizer(f, sized ? 512 : undefined)));
    }), params(400));
  } else {
    console.log('# ../shared not found: tokenizer.bin fuzzing skipped');
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('fuzz token-id files: any JSON ends in a UserError or rows of in-range integer ids', () => {
  const dir = tmpDir('fuzz-ids-');
  const run = new LlamaRunner(loadModel(tinyModelDir(path.join(dir, 'M'))));
  const f = path.join(dir, 'ids.json');
  const id = fc.oneof(fc.integer({ min: 0, max: 4095 }), anyJson, fc.constantFrom(4096, -1, 2 ** 32 + 5, 1e20, 0.5));
  const idsFile = fc.oneof(
    fc.record({ input_ids: fc.array(fc.array(id, { maxLength: 6 }), { maxLength: 4 }) }),
    fc.record({ input_ids: anyJson }),
    fc.jsonValue({ maxDepth: 3 }),
  );
  const check = (text: string | Buffer) => {
    fs.writeFileSync(f, text);
    userErrorOrOk(() => {
      const rows = readIdsFile(f);
      assert.ok(rows.length > 0 && rows.every((r) => r.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 31)));
      run.checkIds(Int32Array.from(rows.flat()));
    });
  };
  fc.assert(fc.property(idsFile, (j) => check(JSON.stringify(j))), params(1500));
  fc.assert(fc.property(damage, (d) => check(applyDamage(Buffer.from(JSON.stringify({ input_ids: [[1, 2, 3], [4, 5, 6]] })), d))), params(300));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('fuzz zero-shot task files: any lines end in a UserError (stop) or documents plus listed problems (skip)', () => {
  const dir = tmpDir('fuzz-task-');
  const f = path.join(dir, 'task.jsonl');
  const good = { query: 'Q: 2+2?', choices: [' 3', ' 4'], gold: 1 };
  const row = fc.oneof(
    fc.constant(JSON.stringify(good)),
    fc.record({ key: fc.constantFrom('query', 'choices', 'gold', 'x'), value: anyJson }).map(({ key, value }) => JSON.stringify({ ...good, [key]: value })),
    fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 20 }),
  );
  fc.assert(fc.property(fc.array(row, { maxLength: 6 }), fc.constantFrom('skip' as const, 'stop' as const), (lines, onError) => {
    fs.writeFileSync(f, lines.join('\n'));
    userErrorOrOk(() => {
      const t = loadTaskFile(f, onError);
      for (const d of t.docs) assert.ok(Array.isArray(d.choices) && d.choices.length > 0 && Number.isInteger(d.gold) && d.gold >= 0 && d.gold < d.choices.length);
      for (const p of t.problems) assert.ok(!p.includes('\n'));
    });
  }), params(2000));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('fuzz the CLI on damaged model folders: one error line, non-zero exit, no output folder and no staging leftovers', () => {
  const dir = tmpDir('fuzz-cli-');
  const m = tinyModelDir(path.join(dir, 'M'));
  const weights = fs.readFileSync(path.join(m, 'model.safetensors'));
  const bad = path.join(dir, 'bad');
  const outRoot = path.join(dir, 'outs');
  fs.mkdirSync(outRoot);
  let failures = 0;
  fc.assert(fc.property(damage, (d) => {
    fs.rmSync(bad, { recursive: true, force: true });
    fs.cpSync(m, bad, { recursive: true });
    fs.writeFileSync(path.join(bad, 'model.safetensors'), applyDamage(weights, d, 4096));
    const out = path.join(outRoot, 'p');
    const r = spawnSync(process.execPath, [projectDir('bin', 'shorten.js'), 'prune', '--model', bad, '--blocks', '0', '--out', out], { encoding: 'utf8', env: { ...process.env, SHORTENED_QUIET: '1' }, timeout: 60_000 });
    if (r.status === 0) { fs.rmSync(out, { recursive: true, force: true }); return; } // damage that left a valid file
    failures++;
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^error: [^\n]+\n$/);
    assert.deepEqual(fs.readdirSync(outRoot), [], 'nothing written');
  }), params(12));
  assert.ok(failures > 0);
  fs.rmSync(dir, { recursive: true, force: true });
});
