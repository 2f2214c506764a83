/**
 * Instruction data for LoRA, as the Shortened LLaMA / LLM-Pruner recipe prepares it:
 * Alpaca records {instruction, input, output} rendered with the Alpaca prompt template (or, for a
 * model with a chat template, as one user turn "instruction\n\ninput" and the assistant's reply;
 * chat records {messages: [{role, content}, ...]} ending with the assistant's turn need one),
 * tokenized with BOS, cut at `cutoff` tokens, EOS appended when it still fits, and the loss taken
 * on the response tokens only (the prompt's tokens are labelled -100). Plain text ({text} records
 * or a .txt file, one document a line) is also accepted, with the loss on every token.
 *
 * Examples are tokenized up front (instruction sets are small) and served in a seeded shuffled
 * order, one permutation per epoch; the position (epoch, cursor) is all a checkpoint needs.
 */
import fs from 'node:fs';
import { UserError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import type { TextTokenizer } from '../io/tokenizer.js';
import { splitChatTurn, type ChatTemplate, type ChatMessage } from '../io/chat-template.js';
import type { Example } from './batch.js';

/** alpaca-lora's templates/alpaca.json (used by LLM-Pruner's post-training). */
export const ALPACA_PROMPT_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. ' +
  'Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n';
export const ALPACA_PROMPT_NO_INPUT =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Response:\n';

/** One training record: the part not trained on (prompt) and the part trained on (response). */
export interface PromptRecord {
  prompt: string;
  response: string;
  /** add the tokenizer's BOS (false when the rendered text already starts with it) */
  addSpecialTokens?: boolean;
}

/** A chat template with the BOS/EOS text it renders. */
export interface ChatFormat {
  template: ChatTemplate;
  bosToken: string;
  eosToken: string;
}

function chatRecord(messages: ChatMessage[], reply: string, chat: ChatFormat): PromptRecord {
  const r = splitChatTurn(chat.template, messages, reply, chat);
  return { ...r, addSpecialTokens: !(chat.bosToken !== '' && r.prompt.startsWith(chat.bosToken)) };
}

function messagesOf(v: unknown, where: string): ChatMessage[] {
  if (!Array.isArray(v) || v.length < 2) throw new UserError(`${where}: "messages" must list at least a user and an assistant turn`);
  return v.map((m, i) => {
    const o = (m ?? {}) as Record<string, unknown>;
    if (typeof o['role'] !== 'string' || typeof o['content'] !== 'string') throw new UserError(`${where}: message ${i} needs string "role" and "content"`);
    return { role: o['role'], content: o['content'] };
  });
}

export interface AlpacaRecord {
  instruction: string;
  input?: string;
  output: string;
}

export function alpacaPrompt(r: { instruction: string; input?: string }): string {
  const t = r.input ? ALPACA_PROMPT_INPUT.replace('{input}', r.input) : ALPACA_PROMPT_NO_INPUT;
  return t.replace('{instruction}', r.instruction);
}

function toRecord(rec: unknown, where: string, chat?: ChatFormat): PromptRecord {
  const o = (rec ?? {}) as Record<string, unknown>;
  if (typeof o['instruction'] === 'string') {
    if (typeof o['output'] !== 'string') throw new UserError(`${where}: Alpaca record has no "output" string`);
    const input = typeof o['input'] === 'string' ? o['input'] : '';
    if (chat) return chatRecord([{ role: 'user', content: input ? `${o['instruction']}\n\n${input}` : o['instruction'] }], o['output'], chat);
    return { prompt: alpacaPrompt({ instruction: o['instruction'], input }), response: o['output'] };
  }
  if (o['messages'] !== undefined) {
    const messages = messagesOf(o['messages'], where);
    const last = messages[messages.length - 1]!;
    if (last.role !== 'assistant') throw new UserError(`${where}: the last message must be the assistant's (it is trained on)`);
    if (!chat) throw new UserError(`${where}: chat records {messages} need a chat template (the model has none; pass --chat-template)`);
    return chatRecord(messages.slice(0, -1), last.content, chat);
  }
  if (typeof o['text'] === 'string') return { prompt: '', response: o['text'] };
  throw new UserError(`${where}: expected an Alpaca record {instruction, input, output}, a chat record {messages} or {text}`);
}

/**
 * Records of a .json array, a .jsonl file, or a text file (one plain-text document a line);
 * instruction records rendered with `chat` when given, else with the Alpaca template.
 */
export function readPromptRecords(file: string, chat?: ChatFormat): PromptRecord[] {
  let raw: string;
  try { raw = fs.readFileSync(file, 'utf8'); } catch { throw new UserError(`cannot read ${file}`); }
  const out: PromptRecord[] = [];
  if (file.endsWith('.json')) {
    let json: unknown;
    try { json = JSON.parse(raw); } catch { throw new UserError(`${file}: invalid JSON`); }
    if (!Array.isArray(json)) throw new UserError(`${file}: expected a JSON array of records`);
    json.forEach((r, i) => out.push(toRecord(r, `${file}: record ${i}`, chat)));
  } else if (file.endsWith('.jsonl')) {
    raw.split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      let r: unknown;
      try { r = JSON.parse(line); } catch { throw new UserError(`${file}:${i + 1}: invalid JSON`); }
      out.push(toRecord(r, `${file}:${i + 1}`, chat));
    });
  } else {
    for (const line of raw.split('\n')) if (line.trim()) out.push({ prompt: '', response: line });
  }
  if (out.length === 0) throw new UserError(`${file}: no training records`);
  return out;
}

/**
 * Tokenize as LLM-Pruner's generate_and_tokenize_prompt: the full text with BOS, truncated to
 * `cutoff`, EOS appended if not truncated (unless eos is false); labels -100 over the prompt's own tokenization length
 * unless trainOnInputs.
 */
export function tokenizeRecord(r: PromptRecord, tok: TextTokenizer, cutoff: number, trainOnInputs = false, eos = true): Example {
  const addSpecialTokens = r.addSpecialTokens ?? true;
  const ids = tok.encode(r.prompt + r.response, { addSpecialTokens }).slice(0, cutoff);
  if (eos && tok.eosId !== null && ids.length < cutoff && ids[ids.length - 1] !== tok.eosId) ids.push(tok.eosId);
  const labels = ids.slice();
  if (!trainOnInputs && r.prompt) {
    const n = Math.min(ids.length, tok.encode(r.prompt, { addSpecialTokens }).length);
    labels.fill(-100, 0, n);
  }
  return { ids, labels };
}

/** Seeded split into train and validation (validation: `valSize` records drawn at random). */
export function splitRecords<T>(items: T[], valSize: number, seed: number): { train: T[]; val: T[] } {
  if (valSize <= 0) return { train: items, val: [] };
  if (valSize >= items.length) throw new UserError(`--val-size ${valSize} leaves no training records (have ${items.length})`);
  const idx = new Rng(seed).shuffle([...items.keys()]);
  const valSet = new Set(idx.slice(0, valSize));
  return { train: items.filter((_, i) => !valSet.has(i)), val: items.filter((_, i) => valSet.has(i)) };
}

export interface ExamplePosition {
  epoch: number;
  cursor: number;
}

/** Examples in a fresh seeded permutation each epoch, endlessly; resumable from a position. */
export class ExampleStream {
  private pos: ExamplePosition = { epoch: 0, cursor: 0 };
  private order: number[] = [];
  private orderEpoch = -1;

  constructor(readonly examples: Example[], readonly seed: number) {
    if (examples.length === 0) throw new UserError('no training examples');
  }

  private permutation(epoch: number): number[] {
    if (this.orderEpoch !== epoch) {
      // Each epoch's order depends only on (seed, epoch): nothing else to save.
      this.order = new Rng((this.seed * 1000003 + epoch * 7919) >>> 0).shuffle([...this.examples.keys()]);
      this.orderEpoch = epoch;
    }
    return this.order;
  }

  next(): Example {
    const ex = this.examples[this.permutation(this.pos.epoch)[this.pos.cursor]!]!;
    this.pos = this.pos.cursor + 1 >= this.examples.length ? { epoch: this.pos.epoch + 1, cursor: 0 } : { epoch: this.pos.epoch, cursor: this.pos.cursor + 1 };
    return ex;
  }

  state(): ExamplePosition {
    return { ...this.pos };
  }

  restore(p: ExamplePosition): void {
    this.pos = { ...p };
  }
}
