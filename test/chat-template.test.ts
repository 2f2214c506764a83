/**
 * Chat templates: the three presets render a two-turn conversation exactly as their authors
 * document it; a folder's template is found where transformers looks; pruning keeps it; LoRA data
 * and generation defaults follow the model's files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  CHAT_PRESETS, chatTemplateFromSpec, folderChatTemplate, renderChat, resolveChatTemplate, splitChatTurn, templateTokens, encodeRendered,
  type ChatMessage,
} from '../src/io/chat-template.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { readGenerationDefaults, maxNewTokensFor } from '../src/io/generation-config.js';
import { pruneModelDir } from '../src/prune/pipeline.js';
import { readPromptRecords, tokenizeRecord } from '../src/train/alpaca.js';
import { UserError } from '../src/util/errors.js';
import { projectDir } from '../src/util/shared.js';

const DEFAULT_MODEL = projectDir('assets', 'default');

const TWO_TURNS: ChatMessage[] = [
  { role: 'user', content: 'Hello!' },
  { role: 'assistant', content: 'Hi. How can I help?' },
  { role: 'user', content: 'Name a prime.' },
];
const WITH_SYSTEM: ChatMessage[] = [{ role: 'system', content: 'Answer briefly.' }, ...TWO_TURNS];
const LLAMA2 = { bosToken: '<s>', eosToken: '</s>' };
const LLAMA3 = { bosToken: '<|begin_of_text|>', eosToken: '<|eot_id|>' };

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'shortened-chat-'));
}

test('vicuna_v1.1 renders as FastChat\'s conversation template', () => {
  // lm-sys/FastChat fastchat/conversation.py: register_conv_template(name="vicuna_v1.1",
  // system_message="A chat between a curious user and an artificial intelligence assistant. The
  // assistant gives helpful, detailed, and polite answers to the user's questions.",
  // roles=("USER", "ASSISTANT"), sep_style=ADD_COLON_TWO, sep=" ", sep2="</s>"); get_prompt():
  // system + sep, then role + ": " + message + seps[i % 2] per message, and "ASSISTANT:" for the
  // reply to come (append_message(roles[1], None)).
  const t = chatTemplateFromSpec('vicuna_v1.1');
  assert.equal(renderChat(t, TWO_TURNS, { ...LLAMA2, addGenerationPrompt: true }),
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions. " +
    'USER: Hello! ASSISTANT: Hi. How can I help?</s>USER: Name a prime. ASSISTANT:');
  // a system message replaces FastChat's default one (conv.set_system_message)
  assert.equal(renderChat(t, WITH_SYSTEM, { ...LLAMA2, addGenerationPrompt: true }),
    'Answer briefly. USER: Hello! ASSISTANT: Hi. How can I help?</s>USER: Name a prime. ASSISTANT:');
});

test('llama-2-chat renders as Meta\'s Llama 2 chat format', () => {
  // meta-llama/llama llama/generation.py chat_completion: B_INST, E_INST = "[INST]", "[/INST]";
  // B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"; the system prompt is prepended to the first
  // user message as B_SYS + system + E_SYS; each (prompt, answer) pair is
  // encode(f"{B_INST} {prompt.strip()} {E_INST} {answer.strip()} ", bos=True, eos=True) and the
  // last user message encode(f"{B_INST} {prompt.strip()} {E_INST}", bos=True): as text, <s> and
  // </s> around each pair.
  const t = chatTemplateFromSpec('llama-2-chat');
  assert.equal(renderChat(t, WITH_SYSTEM, { ...LLAMA2, addGenerationPrompt: true }),
    '<s>[INST] <<SYS>>\nAnswer briefly.\n<</SYS>>\n\nHello! [/INST] Hi. How can I help? </s><s>[INST] Name a prime. [/INST]');
  assert.equal(renderChat(t, TWO_TURNS, LLAMA2),
    '<s>[INST] Hello! [/INST] Hi. How can I help? </s><s>[INST] Name a prime. [/INST]');
  // contents are stripped, as Meta's .strip()
  assert.equal(renderChat(t, [{ role: 'user', content: '  Hi \n' }], LLAMA2), '<s>[INST] Hi [/INST]');
});

test('llama-3 renders as Meta\'s Llama 3 header-id format', () => {
  // meta-llama/llama3 llama/tokenizer.py ChatFormat: encode_dialog_prompt = <|begin_of_text|>,
  // then per message encode_header (<|start_header_id|> role <|end_header_id|> "\n\n") +
  // content.strip() + <|eot_id|>, then the header of an assistant message to complete.
  const t = chatTemplateFromSpec('llama-3');
  assert.equal(renderChat(t, WITH_SYSTEM, { ...LLAMA3, addGenerationPrompt: true }),
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nAnswer briefly.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\nHi. How can I help?<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nName a prime.<|eot_id|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\n');
});

test('templates refuse non-alternating roles; unknown presets and broken templates are UserErrors', () => {
  const bad: ChatMessage[] = [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }];
  for (const name of ['vicuna_v1.1', 'llama-2-chat']) {
    assert.throws(() => renderChat(chatTemplateFromSpec(name), bad, LLAMA2), (e: unknown) => e instanceof UserError && /must alternate/.test(e.message));
  }
  assert.throws(() => chatTemplateFromSpec('chatml-nope'), (e: unknown) => e instanceof UserError && /neither a preset/.test(e.message));
  assert.throws(() => renderChat({ source: 'x', template: '{% for %}' }, TWO_TURNS), UserError);
  assert.deepEqual(Object.keys(CHAT_PRESETS), ['vicuna_v1.1', 'llama-2-chat', 'llama-3']);
});

test('a prompt and its reply split where training needs them', () => {
  assert.deepEqual(splitChatTurn(chatTemplateFromSpec('vicuna_v1.1'), [{ role: 'system', content: 'S.' }, { role: 'user', content: 'Q?' }], 'A.', LLAMA2),
    { prompt: 'S. USER: Q? ASSISTANT:', response: ' A.</s>' });
  assert.deepEqual(splitChatTurn(chatTemplateFromSpec('llama-2-chat'), [{ role: 'user', content: 'Q?' }], 'A.', LLAMA2),
    { prompt: '<s>[INST] Q? [/INST]', response: ' A. </s>' });
  assert.deepEqual(splitChatTurn(chatTemplateFromSpec('llama-3'), [{ role: 'user', content: 'Q?' }], 'A.', LLAMA3),
    { prompt: '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nQ?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n', response: 'A.<|eot_id|>' });
});

/** The default model copied with `extra` files written into the copy. */
function modelWith(dir: string, extra: Record<string, string | Record<string, unknown>>): string {
  const m = path.join(dir, 'model');
  fs.mkdirSync(m);
  for (const f of fs.readdirSync(DEFAULT_MODEL)) fs.copyFileSync(path.join(DEFAULT_MODEL, f), path.join(m, f));
  for (const [f, v] of Object.entries(extra)) fs.writeFileSync(path.join(m, f), typeof v === 'string' ? v : JSON.stringify(v, null, 2));
  return m;
}

test('a folder\'s template: chat_template.jinja first, then tokenizer_config.json (string or named list)', () => {
  const dir = tmpDir();
  try {
    const cfg = JSON.parse(fs.readFileSync(path.join(DEFAULT_MODEL, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    const a = modelWith(dir, { 'tokenizer_config.json': { ...cfg, chat_template: CHAT_PRESETS['llama-2-chat']! } });
    assert.equal(folderChatTemplate(a)!.template, CHAT_PRESETS['llama-2-chat']);
    fs.writeFileSync(path.join(a, 'chat_template.jinja'), CHAT_PRESETS['llama-3']!);
    assert.equal(folderChatTemplate(a)!.template, CHAT_PRESETS['llama-3']);
    assert.equal(resolveChatTemplate(a, 'vicuna_v1.1')!.template, CHAT_PRESETS['vicuna_v1.1']);
    assert.equal(resolveChatTemplate(a, 'none'), null);
    fs.rmSync(path.join(a, 'chat_template.jinja'));
    fs.writeFileSync(path.join(a, 'tokenizer_config.json'), JSON.stringify({ ...cfg, chat_template: [{ name: 'tool_use', template: 'x' }, { name: 'default', template: 'y' }] }));
    assert.equal(folderChatTemplate(a)!.template, 'y');
    assert.equal(folderChatTemplate(DEFAULT_MODEL), null);
    // BOS/EOS text from tokenizer_config.json
    assert.deepEqual(templateTokens(DEFAULT_MODEL, loadTokenizer(DEFAULT_MODEL)), { bosToken: '<s>', eosToken: '</s>' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a pruned chat model keeps its template (tokenizer_config.json, and a chat_template.jinja merged into it)', async () => {
  const dir = tmpDir();
  try {
    const cfg = JSON.parse(fs.readFileSync(path.join(DEFAULT_MODEL, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    fs.mkdirSync(path.join(dir, 'a'));
    fs.mkdirSync(path.join(dir, 'b'));
    const a = modelWith(path.join(dir, 'a'), { 'tokenizer_config.json': { ...cfg, chat_template: CHAT_PRESETS['vicuna_v1.1']! } });
    await pruneModelDir(a, path.join(dir, 'a-pruned'), null, {}, { blocks: [3] });
    const outCfg = JSON.parse(fs.readFileSync(path.join(dir, 'a-pruned', 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(outCfg['chat_template'], CHAT_PRESETS['vicuna_v1.1']);
    assert.equal(folderChatTemplate(path.join(dir, 'a-pruned'))!.template, CHAT_PRESETS['vicuna_v1.1']);

    // transformers' newer layout: the template in its own file; the copy also gets it in tokenizer_config.json
    const b = modelWith(path.join(dir, 'b'), { 'chat_template.jinja': CHAT_PRESETS['llama-2-chat']! });
    const before = fs.readFileSync(path.join(b, 'tokenizer_config.json'));
    await pruneModelDir(b, path.join(dir, 'b-pruned'), null, {}, { blocks: [0] });
    const out = path.join(dir, 'b-pruned');
    assert.equal(fs.readFileSync(path.join(out, 'chat_template.jinja'), 'utf8'), CHAT_PRESETS['llama-2-chat']);
    const bCfg = JSON.parse(fs.readFileSync(path.join(out, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(bCfg['chat_template'], CHAT_PRESETS['llama-2-chat']);
    for (const [k, v] of Object.entries(cfg)) assert.deepEqual(bCfg[k], v, `tokenizer_config ${k} kept`);
    assert.ok(fs.readFileSync(path.join(b, 'tokenizer_config.json')).equals(before), 'the input folder is not modified');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('LoRA records: rendered with the model\'s template (no second BOS), Alpaca\'s prompt without one', () => {
  const dir = tmpDir();
  try {
    const data = path.join(dir, 'data.jsonl');
    fs.writeFileSync(data, [
      JSON.stringify({ instruction: 'Add the numbers.', input: '2 3', output: '5' }),
      JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }, { role: 'user', content: 'Bye' }, { role: 'assistant', content: 'Goodbye' }] }),
    ].join('\n'));
    const tok = loadTokenizer(DEFAULT_MODEL);
    const chat = { template: chatTemplateFromSpec('llama-2-chat'), ...LLAMA2 };
    const [alpacaAsChat, conv] = readPromptRecords(data, chat);
    assert.deepEqual(alpacaAsChat, { prompt: '<s>[INST] Add the numbers.\n\n2 3 [/INST]', response: ' 5 </s>', addSpecialTokens: false });
    assert.deepEqual(conv, { prompt: '<s>[INST] Hi [/INST] Hello </s><s>[INST] Bye [/INST]', response: ' Goodbye </s>', addSpecialTokens: false });
    const ex = tokenizeRecord(alpacaAsChat!, tok, 256);
    assert.equal(ex.ids[0], tok.bosId);
    assert.notEqual(ex.ids[1], tok.bosId, 'one BOS: the template wrote it');
    assert.equal(ex.ids.filter((i) => i === tok.eosId).length, 1, 'the template\'s </s> is the EOS; none appended');
    assert.deepEqual(ex.ids, encodeRendered(tok, alpacaAsChat!.prompt + alpacaAsChat!.response, '<s>'));
    const trained = ex.ids.filter((_, i) => ex.labels[i] !== -100);
    assert.equal(tok.decode(trained), tok.decode(tok.encode(' 5 </s>')));
    // Vicuna's template writes no BOS: the tokenizer adds it, as FastChat tokenizes.
    const [v] = readPromptRecords(data, { template: chatTemplateFromSpec('vicuna_v1.1'), ...LLAMA2 });
    assert.equal(v!.addSpecialTokens, true);
    assert.equal(tokenizeRecord(v!, tok, 256).ids[0], tok.bosId);
    // Without a template: Alpaca's prompt, and chat records are refused.
    assert.throws(() => readPromptRecords(data), (e: unknown) => e instanceof UserError && /need a chat template/.test(e.message));
    fs.writeFileSync(data, JSON.stringify({ instruction: 'Add the numbers.', input: '2 3', output: '5' }) + '\n');
    assert.match(readPromptRecords(data)[0]!.prompt, /^Below is an instruction[\s\S]*### Input:\n2 3\n\n### Response:\n$/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('generation defaults: eos id lists from generation_config.json and config.json, max_new_tokens / max_length', () => {
  const dir = tmpDir();
  try {
    const m = modelWith(dir, { 'generation_config.json': { bos_token_id: 1, eos_token_id: [128001, 128009], max_new_tokens: 64 } });
    const tok = loadTokenizer(m);
    const d = readGenerationDefaults(m, tok);
    const cfgEos = (JSON.parse(fs.readFileSync(path.join(m, 'config.json'), 'utf8')) as { eos_token_id: number }).eos_token_id;
    assert.deepEqual(d.eosIds, [...new Set([128001, 128009, cfgEos, tok.eosId!])]);
    assert.equal(maxNewTokensFor(d, 10, undefined), 64);
    assert.equal(maxNewTokensFor(d, 10, 5), 5);
    fs.writeFileSync(path.join(m, 'generation_config.json'), JSON.stringify({ eos_token_id: 7, max_length: 50 }));
    const d2 = readGenerationDefaults(m, tok);
    assert.equal(d2.eosIds[0], 7);
    assert.equal(maxNewTokensFor(d2, 10, undefined), 40);
    assert.throws(() => maxNewTokensFor(d2, 60, undefined), UserError);
    fs.rmSync(path.join(m, 'generation_config.json'));
    assert.equal(maxNewTokensFor(readGenerationDefaults(m, tok), 10, undefined), 128);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: generate --chat renders the prompt with a template; without one it is a one-line error', () => {
  const bin = projectDir('bin', 'shorten.js');
  const shorten = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, SHORTENED_QUIET: '1' } });
  const ok = shorten(['generate', '--model', DEFAULT_MODEL, '--prompt', 'Say hi.', '--chat', '--chat-template', 'llama-2-chat', '--max-new-tokens', '3', '--json']);
  assert.equal(ok.status, 0, ok.stderr);
  const r = JSON.parse(ok.stdout) as { tokens: number; prompt_tokens: number };
  const tok = loadTokenizer(DEFAULT_MODEL);
  assert.equal(r.prompt_tokens, encodeRendered(tok, '<s>[INST] Say hi. [/INST]', '<s>').length);
  assert.ok(r.tokens >= 1 && r.tokens <= 3);
  const bad = shorten(['generate', '--model', DEFAULT_MODEL, '--prompt', 'x', '--chat']);
  assert.notEqual(bad.status, 0);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(bad.stderr, /^error: .*has no chat template/);
});
