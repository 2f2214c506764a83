import { test } from 'node:test';
import assert from 'node:assert/strict';
import { argValue, argString, argNumber, argFlag } from '../src/util/args.js';
import { UserError } from '../src/util/errors.js';

const argv = ['node', 'x.js', '--layers', '4', '--mode', 'lora', '--quick', '--bad', 'x', '--last'];

test('flags of bench/ and scripts/ entry points', () => {
  assert.equal(argNumber('layers', 22, argv), 4);
  assert.equal(argNumber('batch', 8, argv), 8);
  assert.equal(argString('mode', 'both', argv), 'lora');
  assert.equal(argString('--mode', 'both', argv), 'lora');
  assert.equal(argValue('seq', argv), undefined);
  assert.equal(argFlag('quick', argv), true);
  assert.equal(argFlag('slow', argv), false);
  assert.throws(() => argNumber('bad', 1, argv), (e: unknown) => e instanceof UserError && /--bad expects a number, got 'x'/.test(e.message));
  assert.throws(() => argValue('quick', argv), /--quick needs a value/);
  assert.throws(() => argValue('last', argv), /--last needs a value/);
});
