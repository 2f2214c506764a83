/**
 * The exact token ids of context and continuation for the first document of each of the seven
 * tasks, with the Llama 2 tokenizer, as lm-evaluation-harness builds them (prompt, target
 * delimiter " ", `_encode_pair` split, no BOS). The literals were computed with this code and
 * checked against an independent llama2.c-style encoder over ../shared/tokenizers/llama2/
 * tokenizer.bin; reading them: 13 is "\n", 22550 29901 is "Answer:" after a newline, 29871 a
 * lone "▁". Needs ../shared (skips otherwise).
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasShared, sharedDir } from '../src/util/shared.js';
import { loadTokenizer, type TextTokenizer } from '../src/io/tokenizer.js';
import { hellaswagPreprocess, loadBuiltinTask, type ZeroshotTask } from '../src/eval/zeroshot/tasks.js';
import { encodeDocPairs, encodePair } from '../src/eval/zeroshot/requests.js';

const SKIP = hasShared() ? false : 'shared data (../shared) not found: skipping';
const dataDir = (): string => sharedDir('data', 'eval', 'zeroshot');
let tokenizer: TextTokenizer | null = null;
const tok = (): TextTokenizer => (tokenizer ??= loadTokenizer(sharedDir('tokenizers', 'llama2')));

interface Pin {
  contextText: string | string[];
  continuationText: string[];
  context?: number[];
  contexts?: number[][];
  continuations: number[][];
  gold: number;
}

// The harness's strings and ids for document 0 of each task (BoolQ is pinned separately below,
// so that no passage is copied into the repository).
const PINS: Record<string, Pin> = {
  piqa: {
    contextText: "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:",
    continuationText: [" Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper strips, you will also need to supply it with a water bottle and a food dish.", " Provide the guinea pig with a cage full of a few inches of bedding made of ripped jeans material, you will also need to supply it with a water bottle and a food dish."],
    context: [
      894, 29901, 1128, 437, 306, 7960, 263, 1410, 16736, 282, 335, 274, 482, 363, 372, 29915, 29879,
      716, 6919, 1934, 29973, 13, 22550, 29901
    ],
    continuations: [
      [
        9133, 680, 278, 1410, 16736, 282, 335, 411, 263, 274, 482, 2989, 310, 263, 2846, 22831, 310, 6592,
        8497, 1754, 310, 10107, 2986, 5650, 10076, 567, 29892, 366, 674, 884, 817, 304, 11421, 372, 411,
        263, 4094, 18046, 280, 322, 263, 9687, 270, 728, 29889
      ],
      [
        9133, 680, 278, 1410, 16736, 282, 335, 411, 263, 274, 482, 2989, 310, 263, 2846, 22831, 310, 6592,
        8497, 1754, 310, 10107, 2986, 1444, 550, 5518, 29892, 366, 674, 884, 817, 304, 11421, 372, 411,
        263, 4094, 18046, 280, 322, 263, 9687, 270, 728, 29889
      ],
    ],
    gold: 0,
  },
  hellaswag: {
    contextText: "Roof shingle removal: A man is sitting on a roof. He",
    continuationText: [" is using wrap to wrap a pair of skis.", " is ripping level tiles off.", " is holding a rubik's cube.", " starts pulling up roofing on a roof."],
    context: [
      1528, 974, 528, 292, 280, 28744, 29901, 319, 767, 338, 16246, 373, 263, 17526, 29889, 940
    ],
    continuations: [
      [338, 773, 12244, 304, 12244, 263, 5101, 310, 2071, 275, 29889],
      [338, 10107, 3262, 3233, 260, 5475, 1283, 29889],
      [338, 13587, 263, 14051, 638, 29915, 29879, 28704, 29889],
      [8665, 28420, 701, 17526, 292, 373, 263, 17526, 29889],
    ],
    gold: 3,
  },
  winogrande: {
    contextText: ["Sarah was a much better surgeon than Maria so Sarah", "Sarah was a much better surgeon than Maria so Maria"],
    continuationText: [" always got the easier cases.", " always got the easier cases."],
    contexts: [
      [19235, 471, 263, 1568, 2253, 1190, 25339, 1135, 6217, 577, 19235],
      [19235, 471, 263, 1568, 2253, 1190, 25339, 1135, 6217, 577, 6217],
    ],
    continuations: [
      [2337, 2355, 278, 6775, 4251, 29889],
      [2337, 2355, 278, 6775, 4251, 29889],
    ],
    gold: 1,
  },
  arc_easy: {
    contextText: "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:",
    continuationText: [" Sunlight is the source of energy for nearly all ecosystems.", " Most ecosystems are found on land instead of in water.", " Carbon dioxide is more available than other gases.", " The producers in all ecosystems are plants."],
    context: [
      894, 29901, 8449, 3229, 1900, 18568, 2020, 20612, 948, 26533, 338, 278, 22778, 310, 1556, 9687,
      1856, 29879, 29973, 13, 22550, 29901
    ],
    continuations: [
      [
        8991, 4366, 338, 278, 2752, 310, 5864, 363, 8886, 599, 321, 3944, 973, 29879, 29889
      ],
      [7849, 321, 3944, 973, 29879, 526, 1476, 373, 2982, 2012, 310, 297, 4094, 29889],
      [1704, 6718, 20562, 29916, 680, 338, 901, 3625, 1135, 916, 330, 2129, 29889],
      [450, 1391, 22543, 297, 599, 321, 3944, 973, 29879, 526, 18577, 29889],
    ],
    gold: 0,
  },
  arc_challenge: {
    contextText: "Question: An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely effect of this increase in rotation?\nAnswer:",
    continuationText: [" Planetary density will decrease.", " Planetary years will become longer.", " Planetary days will become shorter.", " Planetary gravity will become stronger."],
    context: [
      894, 29901, 530, 20932, 261, 5366, 1960, 393, 263, 15754, 5731, 1078, 8473, 1156, 263, 27647, 568,
      10879, 29889, 8449, 338, 278, 1556, 5517, 2779, 310, 445, 7910, 297, 13733, 29973, 13, 22550,
      29901
    ],
    continuations: [
      [20540, 653, 9027, 674, 23806, 29889],
      [20540, 653, 2440, 674, 4953, 5520, 29889],
      [20540, 653, 3841, 674, 4953, 20511, 29889],
      [20540, 653, 20953, 674, 4953, 23505, 29889],
    ],
    gold: 2,
  },
  openbookqa: {
    contextText: "A person wants to start saving money so that they can afford a nice vacation at the end of the year. After looking over their budget and expenses, they decide the best way to save money is to",
    continuationText: [" make more phone calls", " quit eating lunch out", " buy less with monopoly money", " have lunch with friends"],
    context: [
      319, 2022, 10753, 304, 1369, 14238, 6909, 577, 393, 896, 508, 21750, 263, 7575, 11757, 362, 472,
      278, 1095, 310, 278, 1629, 29889, 2860, 3063, 975, 1009, 23562, 322, 1518, 11259, 29892, 896,
      11097, 278, 1900, 982, 304, 4078, 6909, 338, 304
    ],
    continuations: [
      [1207, 901, 9008, 5717],
      [23283, 321, 1218, 301, 3322, 714],
      [15649, 3109, 411, 1601, 13242, 29891, 6909],
      [505, 301, 3322, 411, 7875],
    ],
    gold: 1,
  },
};

for (const [name, pin] of Object.entries(PINS)) {
  test(`${name}: document 0 encodes to the harness's token ids`, { skip: SKIP }, () => {
    const doc = loadBuiltinTask(name, dataDir(), 'stop').docs[0]!;
    const contexts = Array.isArray(pin.contextText) ? pin.contextText : pin.continuationText.map(() => pin.contextText as string);
    assert.deepEqual(doc.pairs.map((p) => p.context), contexts);
    assert.deepEqual(doc.pairs.map((p) => p.continuation), pin.continuationText);
    assert.equal(doc.gold, pin.gold);
    const reqs = encodeDocPairs(tok(), doc.pairs);
    assert.deepEqual(reqs.map((r) => r.context), pin.contexts ?? reqs.map(() => pin.context!));
    assert.deepEqual(reqs.map((r) => r.continuation), pin.continuations);
  });
}

function fnv1a(ids: readonly number[]): string {
  const s = ids.join(',');
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16);
}

test('boolq: document 0 encodes to the harness\'s token ids', { skip: SKIP }, () => {
  const doc = loadBuiltinTask('boolq', dataDir(), 'stop').docs[0]!;
  // "{passage}\nQuestion: {question}?\nAnswer:" → " no" / " yes"; the stored "Passage: " label is gone
  const context = doc.pairs[0]!.context;
  assert.ok(context.startsWith('All biomass goes through'));
  assert.ok(context.endsWith(' than producing gasoline.\nQuestion: does ethanol take more energy make that produces?\nAnswer:'));
  assert.deepEqual(doc.pairs.map((p) => p.continuation), [' no', ' yes']);
  assert.equal(doc.gold, 0);
  const [no, yes] = encodeDocPairs(tok(), doc.pairs);
  assert.deepEqual(no!.context, yes!.context);
  assert.equal(no!.context.length, 326);
  assert.deepEqual(no!.context.slice(0, 8), [2178, 4768, 290, 465, 5771, 1549, 472, 3203]); // ▁All ▁bi om ass ▁goes ▁through ▁at ▁least
  // ▁than ▁producing ▁gas oline . \n Question : ▁does ▁eth an ol ▁take ▁more ▁energy ▁make ▁that ▁produces ? \n Answer :
  assert.deepEqual(no!.context.slice(-22), [
    1135, 20811, 10489, 26496, 29889, 13, 16492, 29901, 947, 11314, 273, 324, 2125, 901, 5864, 1207, 393, 13880, 29973, 13, 22550, 29901,
  ]);
  assert.equal(fnv1a(no!.context), '2c27bc9f');
  assert.deepEqual(no!.continuation, [694]); // ▁no
  assert.deepEqual(yes!.continuation, [4874]); // ▁yes
});

test('the split: trailing context whitespace moves to the continuation; pairs encode as one string', { skip: SKIP }, () => {
  // encoded alone, " yes" is ▁ + yes; after the context it is one token, as the model sees it
  assert.deepEqual(tok().encode(' yes'), [29871, 4874]);
  assert.deepEqual(encodePair(tok(), 'Answer:', ' yes'), { context: [673, 29901], continuation: [4874] });
  assert.deepEqual(encodePair(tok(), 'Answer: ', 'yes'), { context: [673, 29901], continuation: [4874] });
  // BOS only when asked (lm-eval's add_bos_token=True); the split point is unchanged
  assert.deepEqual(encodePair(tok(), 'Answer:', ' yes', { addBos: true }), { context: [1, 673, 29901], continuation: [4874] });
  // an empty context becomes the prefix token (BOS), the continuation is encoded alone
  assert.deepEqual(encodePair(tok(), '', ' yes'), { context: [1], continuation: [29871, 4874] });
});

const FULL_COUNTS: Record<string, number> = {
  boolq: 3270, piqa: 1838, hellaswag: 10042, winogrande: 1267, arc_easy: 2376, arc_challenge: 1172, openbookqa: 500,
};

test('the full sets load without a single malformed row', { skip: SKIP }, () => {
  for (const [name, n] of Object.entries(FULL_COUNTS)) {
    const task: ZeroshotTask = loadBuiltinTask(name, dataDir(), 'stop');
    assert.equal(task.docs.length, n, name);
    assert.deepEqual(task.problems, [], name);
    for (const d of task.docs) {
      assert.ok(d.gold >= 0 && d.gold < d.pairs.length, `${d.where}: gold`);
      assert.ok(d.pairs.every((p) => p.continuation.startsWith(' ') && p.context.length > 0), `${d.where}: pairs`);
    }
  }
});

test('hellaswag: every ActivityNet context gets its ctx_b capitalised, WikiHow contexts are untouched', { skip: SKIP }, () => {
  const docs = loadBuiltinTask('hellaswag', dataDir(), 'stop').docs;
  // ActivityNet rows come first and end mid-sentence; the last sentence start is now upper case
  assert.equal(docs[1]!.pairs[0]!.context, 'Clean and jerk: A lady walks to a barbell. She bends down and grabs the pole. The lady');
  const lowerTail = docs.filter((d) => /[.!?]\s+[a-z][^.!?]*$/.test(d.pairs[0]!.context));
  assert.deepEqual(lowerTail.map((d) => d.where), []);
  // a context that ends its sentence has an empty ctx_b: only the harness's preprocess applies
  const rows = fs.readFileSync(path.join(dataDir(), 'hellaswag.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { activity_label: string; ctx: string });
  let complete = 0;
  rows.forEach((r, i) => {
    if (!/[.!?]["')]*$/.test(r.ctx)) return;
    complete++;
    assert.equal(docs[i]!.pairs[0]!.context, hellaswagPreprocess(`${r.activity_label}: ${r.ctx}`), docs[i]!.where);
  });
  assert.equal(complete, 6799);
});
