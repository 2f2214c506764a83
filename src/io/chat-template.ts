/**
 * Chat templates: the Jinja template a model folder carries (chat_template.jinja, else
 * tokenizer_config.json's `chat_template`, as transformers loads them), or a named preset for
 * checkpoints that predate templates (Vicuna v1.3 ships none). Rendered with @huggingface/jinja,
 * the JS implementation Hugging Face maintains for exactly these templates.
 *
 * Presets reproduce the formats their authors document:
 *   vicuna_v1.1   FastChat's conversation template (fastchat/conversation.py, ADD_COLON_TWO):
 *                 "{system} USER: {u} ASSISTANT: {a}</s>USER: {u2} ASSISTANT:"
 *   llama-2-chat  Meta's Llama 2 chat_completion (llama/generation.py): each user turn
 *                 "<s>[INST] {u} [/INST]", each answer " {a} </s>", the system prompt wrapped in
 *                 "<<SYS>>\n…\n<</SYS>>\n\n" inside the first user turn; contents stripped
 *   llama-3       Meta's Llama 3 ChatFormat (llama/tokenizer.py): "<|begin_of_text|>", then per
 *                 message "<|start_header_id|>{role}<|end_header_id|>\n\n{content stripped}<|eot_id|>",
 *                 then the assistant header for the reply
 */
import fs from 'node:fs';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { UserError } from '../util/errors.js';
import { readTokenizerConfig, type TextTokenizer } from './tokenizer.js';

export interface ChatMessage {
  role: string;
  content: string;
}

const ALTERNATE = "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') -}}{%- endif -%}";
const SPLIT_SYSTEM = (fallback: string): string =>
  "{%- if messages[0]['role'] == 'system' -%}{%- set loop_messages = messages[1:] -%}{%- set system_message = messages[0]['content'] -%}{%- set has_system = true -%}" +
  `{%- else -%}{%- set loop_messages = messages -%}{%- set system_message = ${fallback} -%}{%- set has_system = false -%}{%- endif -%}`;

export const CHAT_PRESETS: Readonly<Record<string, string>> = {
  'vicuna_v1.1':
    SPLIT_SYSTEM("'A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user\\'s questions.'") +
    "{{- system_message + ' ' -}}" +
    `{%- for message in loop_messages -%}${ALTERNATE}` +
    "{%- if message['role'] == 'user' -%}{{- 'USER: ' + message['content'] + ' ' -}}{%- else -%}{{- 'ASSISTANT: ' + message['content'] + eos_token -}}{%- endif -%}" +
    "{%- endfor -%}{%- if add_generation_prompt -%}{{- 'ASSISTANT:' -}}{%- endif -%}",
  'llama-2-chat':
    SPLIT_SYSTEM("''") +
    `{%- for message in loop_messages -%}${ALTERNATE}` +
    "{%- if loop.index0 == 0 and has_system -%}{%- set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] -%}{%- else -%}{%- set content = message['content'] -%}{%- endif -%}" +
    "{%- if message['role'] == 'user' -%}{{- bos_token + '[INST] ' + content.strip() + ' [/INST]' -}}{%- else -%}{{- ' ' + content.strip() + ' ' + eos_token -}}{%- endif -%}" +
    '{%- endfor -%}',
  'llama-3':
    '{{- bos_token -}}' +
    "{%- for message in messages -%}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + (message['content'] | trim) + '<|eot_id|>' -}}{%- endfor -%}" +
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}",
};

/** A template and where it came from (for messages and provenance). */
export interface ChatTemplate {
  source: string;
  template: string;
}

/** The template of `chat_template` in tokenizer_config.json: a string, or named templates. */
function configTemplate(value: unknown, file: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    // [{name, template}, ...]: transformers' default is the one named "default"
    const named = value as { name?: unknown; template?: unknown }[];
    const d = named.find((t) => t.name === 'default') ?? (named.length === 1 ? named[0] : undefined);
    if (d && typeof d.template === 'string') return d.template;
  }
  throw new UserError(`${file}: chat_template is neither a string nor a list with a "default" template`);
}

/** The chat template a model folder carries, or null. */
export function folderChatTemplate(dir: string): ChatTemplate | null {
  const jinja = path.join(dir, 'chat_template.jinja');
  if (fs.existsSync(jinja)) return { source: jinja, template: fs.readFileSync(jinja, 'utf8') };
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  if (!fs.existsSync(cfgFile)) return null;
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  } catch {
    throw new UserError(`${cfgFile}: invalid JSON`);
  }
  const t = configTemplate(cfg['chat_template'], cfgFile);
  return t === null ? null : { source: cfgFile, template: t };
}

/** A preset name or a template file (.jinja, or a tokenizer_config.json-like .json). */
export function chatTemplateFromSpec(spec: string): ChatTemplate {
  const preset = CHAT_PRESETS[spec];
  if (preset !== undefined) return { source: `preset ${spec}`, template: preset };
  if (!fs.existsSync(spec)) throw new UserError(`--chat-template: '${spec}' is neither a preset (${Object.keys(CHAT_PRESETS).join(', ')}) nor a file`);
  const text = fs.readFileSync(spec, 'utf8');
  if (!spec.endsWith('.json')) return { source: spec, template: text };
  let json: unknown;
  try { json = JSON.parse(text); } catch { throw new UserError(`${spec}: invalid JSON`); }
  const t = configTemplate((json as Record<string, unknown>)['chat_template'], spec);
  if (t === null) throw new UserError(`${spec}: no chat_template`);
  return { source: spec, template: t };
}

/** `spec` when given ('none' for no template), else the folder's own template, else null. */
export function resolveChatTemplate(dir: string, spec?: string): ChatTemplate | null {
  if (spec === 'none') return null;
  return spec !== undefined ? chatTemplateFromSpec(spec) : folderChatTemplate(dir);
}

export interface RenderOptions {
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
}

/** Render `messages` as transformers' apply_chat_template(tokenize=False) does. */
export function renderChat(t: ChatTemplate, messages: readonly ChatMessage[], opts: RenderOptions = {}): string {
  let compiled: Template;
  try {
    compiled = new Template(t.template);
  } catch (e) {
    throw new UserError(`chat template (${t.source}) does not parse: ${String((e as Error).message).split('\n')[0]}`);
  }
  try {
    return compiled.render({
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      add_generation_prompt: opts.addGenerationPrompt ?? false,
      bos_token: opts.bosToken ?? '',
      eos_token: opts.eosToken ?? '',
    });
  } catch (e) {
    // raise_exception (built into @huggingface/jinja) lands here too, with the template's message
    throw new UserError(`chat template (${t.source}): ${String((e as Error).message).split('\n')[0]}`);
  }
}

/**
 * A single-turn prompt and its reply split where training needs it: `prompt` is the conversation
 * up to the assistant's turn (with the generation prompt), `response` what the template adds for
 * the reply (e.g. " Paris.</s>"). The template must render the prompt as a prefix of the whole.
 */
export function splitChatTurn(t: ChatTemplate, messages: readonly ChatMessage[], reply: string, opts: RenderOptions = {}): { prompt: string; response: string } {
  const prompt = renderChat(t, messages, { ...opts, addGenerationPrompt: true });
  const whole = renderChat(t, [...messages, { role: 'assistant', content: reply }], { ...opts, addGenerationPrompt: false });
  if (!whole.startsWith(prompt)) throw new UserError(`chat template (${t.source}): the prompt with add_generation_prompt is not a prefix of the conversation with the reply; cannot separate the response for training`);
  return { prompt, response: whole.slice(prompt.length) };
}

/** BOS/EOS as text for templates: tokenizer_config.json's names, else the tokenizer's own tokens. */
export function templateTokens(dir: string, tok: TextTokenizer): { bosToken: string; eosToken: string } {
  const cfg = readTokenizerConfig(dir);
  const named = (key: string): string | undefined => {
    const v = cfg[key];
    if (typeof v === 'string') return v;
    const c = v && typeof v === 'object' ? (v as { content?: unknown }).content : undefined;
    return typeof c === 'string' ? c : undefined;
  };
  const spelled = (id: number | null): string => (id === null ? '' : tok.decode([id], { skipSpecialTokens: false }));
  return { bosToken: named('bos_token') ?? spelled(tok.bosId), eosToken: named('eos_token') ?? spelled(tok.eosId) };
}

/**
 * Token ids of a rendered conversation. A template that writes bos_token itself (Llama 2, 3) is
 * tokenized without adding another, as apply_chat_template does; one that does not (Vicuna) gets
 * the tokenizer's BOS, as FastChat tokenizes its prompts.
 */
export function encodeRendered(tok: TextTokenizer, text: string, bosToken: string): number[] {
  const hasBos = bosToken !== '' && text.startsWith(bosToken);
  return tok.encode(text, { addSpecialTokens: !hasBos });
}
