/**
 * Task builders and the task-file loader, on small made-up files: the harness prompts rebuilt
 * from the stored formats, and malformed rows reported with file:line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../src/util/errors.js';
import { hellaswagContext, hellaswagPreprocess, loadBuiltinTask, loadTaskFile, canonicalTaskName } from '../src/eval/zeroshot/tasks.js';

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'zeroshot-tasks-'));
}

function writeJsonl(dir: string, name: string, rows: (object | string)[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n');
  return file;
}

test('boolq: "Passage: P\\nQuestion: Q?" becomes "P\\nQuestion: Q?\\nAnswer:" with " no"/" yes"', () => {
  const dir = tmpDir();
  writeJsonl(dir, 'boolq.jsonl', [
    { query: 'Passage: Cats purr.\nQuestion: do cats purr?', choices: ['no', 'yes'], gold: 1 },
    // a passage may itself contain a "\nQuestion: " line: the last one starts the question
    { query: 'Passage: A quiz book\nQuestion: The Answer Book.\nQuestion: is it a book?', choices: ['no', 'yes'], gold: 0 },
  ]);
  const t = loadBuiltinTask('boolq', dir, 'stop');
  assert.deepEqual(t.metrics, ['acc']);
  assert.equal(t.paperMetric, 'acc');
  assert.deepEqual(t.docs[0]!.pairs, [
    { context: 'Cats purr.\nQuestion: do cats purr?\nAnswer:', continuation: ' no' },
    { context: 'Cats purr.\nQuestion: do cats purr?\nAnswer:', continuation: ' yes' },
  ]);
  assert.equal(t.docs[0]!.gold, 1);
  assert.equal(t.docs[1]!.pairs[0]!.context, 'A quiz book\nQuestion: The Answer Book.\nQuestion: is it a book?\nAnswer:');
});

test('piqa, arc, openbookqa: the harness prompts and " " + choice', () => {
  const dir = tmpDir();
  writeJsonl(dir, 'piqa.jsonl', [{ query: 'Question: Open a jar.\n', choices: ['Twist the lid.', 'Hit it.'], gold: 0 }]);
  writeJsonl(dir, 'arc_easy.jsonl', [{ query: 'Question: What is 2+2?', choices: ['3', '4'], gold: 1 }]);
  writeJsonl(dir, 'arc_challenge.jsonl', [{ query: 'Question: Why?', choices: ['a', 'b', 'c'], gold: 2 }]);
  writeJsonl(dir, 'openbook_qa.jsonl', [{ query: 'The sun is a', choices: ['star', 'planet'], gold: 0 }]);
  const piqa = loadBuiltinTask('piqa', dir, 'stop');
  assert.deepEqual(piqa.docs[0]!.pairs, [
    { context: 'Question: Open a jar.\nAnswer:', continuation: ' Twist the lid.' },
    { context: 'Question: Open a jar.\nAnswer:', continuation: ' Hit it.' },
  ]);
  assert.deepEqual(piqa.docs[0]!.choices, ['Twist the lid.', 'Hit it.']);
  assert.deepEqual(loadBuiltinTask('arc_easy', dir, 'stop').docs[0]!.pairs[1], { context: 'Question: What is 2+2?\nAnswer:', continuation: ' 4' });
  const arcC = loadBuiltinTask('arc_challenge', dir, 'stop');
  assert.equal(arcC.paperMetric, 'acc_norm');
  assert.equal(arcC.docs[0]!.gold, 2);
  const obqa = loadBuiltinTask('openbook_qa', dir, 'stop'); // the file's name works as an alias
  assert.equal(obqa.name, 'openbookqa');
  assert.equal(obqa.paperMetric, 'acc_norm');
  assert.deepEqual(obqa.docs[0]!.pairs[0], { context: 'The sun is a', continuation: ' star' });
});

test('winogrande: each option-filled prefix is a context, the rest after the blank the continuation', () => {
  const dir = tmpDir();
  writeJsonl(dir, 'winogrande.jsonl', [{ context_options: ['Ann beat Bo so Ann', 'Ann beat Bo so Bo'], continuation: 'was happy.', gold: 0 }]);
  const t = loadBuiltinTask('winogrande', dir, 'stop');
  assert.deepEqual(t.metrics, ['acc']);
  assert.deepEqual(t.docs[0]!.pairs, [
    { context: 'Ann beat Bo so Ann', continuation: ' was happy.' },
    { context: 'Ann beat Bo so Bo', continuation: ' was happy.' },
  ]);
  assert.deepEqual(t.docs[0]!.choices, ['Ann beat Bo so Ann', 'Ann beat Bo so Bo']);
});

test('hellaswag: ctx_b capitalised, then the harness preprocess on query and endings', () => {
  // ActivityNet style: ctx_b is the unfinished last sentence
  assert.equal(hellaswagContext('A man sits. he'), 'A man sits. He');
  assert.equal(hellaswagContext('A man sits. She runs. the lady'), 'A man sits. She runs. The lady');
  // Python's capitalize lower-cases the rest of ctx_b too
  assert.equal(hellaswagContext('A man sits. the USA team'), 'A man sits. The usa team');
  // WikiHow style: the context ends its sentence, ctx_b is empty
  assert.equal(hellaswagContext('Buy a hat. you need a hat.'), 'Buy a hat. you need a hat.');
  assert.equal(hellaswagContext('no sentence before'), 'no sentence before');
  assert.equal(hellaswagPreprocess('  How to [header] cook [title] Boil water  now. '), 'How to cook. Boil water now.');
  assert.equal(hellaswagPreprocess('Type " [insert name]."'), 'Type " ."');

  const dir = tmpDir();
  writeJsonl(dir, 'hellaswag.jsonl', [
    { activity_label: 'Cooking', ctx: 'A chef cuts onions. the chef', endings: ['fries them.', 'sings [a song].', 'eats  them.', 'leaves.'], label: '2' },
  ]);
  const t = loadBuiltinTask('hellaswag', dir, 'stop');
  assert.deepEqual(t.docs[0]!.pairs.map((p) => p.context), Array(4).fill('Cooking: A chef cuts onions. The chef'));
  assert.deepEqual(t.docs[0]!.choices, ['fries them.', 'sings .', 'eats them.', 'leaves.']);
  assert.deepEqual(t.docs[0]!.pairs.map((p) => p.continuation), [' fries them.', ' sings .', ' eats them.', ' leaves.']);
  assert.equal(t.docs[0]!.gold, 2); // labels may be strings, as in the HF dataset
});

test('task names: lm-eval names and aliases', () => {
  assert.equal(canonicalTaskName('ARC_Easy'), 'arc_easy');
  assert.equal(canonicalTaskName('openbook_qa'), 'openbookqa');
  assert.equal(canonicalTaskName('mmlu'), null);
  assert.throws(() => loadBuiltinTask('mmlu', tmpDir(), 'stop'), (e: unknown) => e instanceof UserError && /unknown task "mmlu"/.test(e.message));
});

const MALFORMED: (object | string)[] = [
  { query: 'ok one', choices: ['a', 'b'], gold: 0 }, // line 1
  '{"query": "broken", "choices": [', // line 2: bad JSON
  { query: 'gold too big', choices: ['a', 'b'], gold: 2 }, // line 3
  { query: 'no choices', choices: [], gold: 0 }, // line 4
  '', // line 5: blank lines are not documents
  { query: 'negative gold', choices: ['a'], gold: -1 }, // line 6
  { query: 'empty choice', choices: ['a', ''], gold: 0 }, // line 7
  '[1, 2]', // line 8: not an object
  { choices: ['a'], gold: 0 }, // line 9: no query
  { query: 'fractional gold', choices: ['a', 'b'], gold: 0.5 }, // line 10
  { query: 'ok two', choices: ['x', 'y', 'z'], gold: 2 }, // line 11
];

test('malformed task file, onError "skip": every problem reported with file:line, the good rows kept', () => {
  const file = writeJsonl(tmpDir(), 'mine.jsonl', MALFORMED);
  const t = loadTaskFile(file, 'skip');
  assert.equal(t.name, 'mine');
  assert.deepEqual(t.docs.map((d) => d.where), [`${file}:1`, `${file}:11`]);
  assert.deepEqual(t.docs.map((d) => d.index), [0, 9]); // ids count every non-blank row
  const rel = t.problems.map((p) => {
    assert.ok(p.startsWith(file + ':'), p);
    return p.slice(file.length);
  });
  assert.match(rel[0]!, /^:2: invalid JSON \(/);
  assert.deepEqual(rel.slice(1), [
    ':3: gold 2 is out of range for 2 choices',
    ':4: field "choices" is empty',
    ':6: gold -1 is out of range for 1 choice',
    ':7: choices[1] is an empty string',
    ':8: not a JSON object',
    ':9: field "query" must be a string',
    ':10: field "gold" must be an integer',
  ]);
});

test('malformed task file, onError "stop": a UserError naming the first bad line', () => {
  const file = writeJsonl(tmpDir(), 'mine.jsonl', MALFORMED);
  assert.throws(() => loadTaskFile(file, 'stop'), (e: unknown) => e instanceof UserError && e.message.startsWith(`${file}:2: invalid JSON`));
});

test('missing task file: a UserError, not a crash', () => {
  assert.throws(() => loadTaskFile('/nonexistent/x.jsonl', 'skip'), (e: unknown) => e instanceof UserError && /task file not found/.test(e.message));
  assert.throws(() => loadBuiltinTask('piqa', '/nonexistent', 'skip'), UserError);
});

test('built-in tasks validate their stored formats too', () => {
  const dir = tmpDir();
  writeJsonl(dir, 'piqa.jsonl', [{ query: 'How?\n', choices: ['a', 'b'], gold: 0 }]);
  writeJsonl(dir, 'winogrande.jsonl', [{ context_options: ['x'], continuation: '  ', gold: 0 }]);
  writeJsonl(dir, 'hellaswag.jsonl', [{ activity_label: 'A', ctx: 'b', endings: ['c'], label: 'x' }]);
  assert.match(loadBuiltinTask('piqa', dir, 'skip').problems[0]!, /piqa\.jsonl:1: query does not start with "Question: "/);
  assert.match(loadBuiltinTask('winogrande', dir, 'skip').problems[0]!, /winogrande\.jsonl:1: field "continuation" is empty/);
  assert.match(loadBuiltinTask('hellaswag', dir, 'skip').problems[0]!, /hellaswag\.jsonl:1: field "label" must be an integer/);
});
