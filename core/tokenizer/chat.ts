// Chat prompts from MLC conversation templates (`conv_template` in mlc-chat-config.json), formatted the way MLC's
// Conversation does it: system block, then per message `role + role_content_sep + content + sep`, and the reply
// header `role + role_empty_sep`. Parts are tokenised separately and their ids concatenated, so the ids of a
// prefix (system + document) are exactly the first ids of the full prompt: a KV snapshot of the prefix stays valid.
// The template's markers are tokenised as trusted text (their special-token strings become control ids); message
// contents, the system message and the document are tokenised as data (`encodeText`): no control id comes out of
// them, so a page cannot forge a role boundary.

import type { ConvTemplate, ModelConfig } from '../model/config';
import type { Tokenizer } from './tokenizer';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

const PLACEHOLDER: Record<string, string> = {
  system: '{system_message}',
  user: '{user_message}',
  assistant: '{assistant_message}',
};

/** Templates as MLC defines them, for configs that name a template instead of embedding it, and for tests. */
export const BUILTIN_TEMPLATES: Record<string, ConvTemplate> = {
  'llama-3': {
    name: 'llama-3',
    system_template: '<|start_header_id|>system<|end_header_id|>\n\n{system_message}<|eot_id|>',
    system_message: 'You are a helpful, respectful and honest assistant.',
    system_prefix_token_ids: [128000],
    roles: { user: '<|start_header_id|>user', assistant: '<|start_header_id|>assistant' },
    role_templates: { user: '{user_message}', assistant: '{assistant_message}' },
    seps: ['<|eot_id|>'],
    role_content_sep: '<|end_header_id|>\n\n',
    role_empty_sep: '<|end_header_id|>\n\n',
    stop_str: [],
    stop_token_ids: [128001, 128009],
  },
  chatml: {
    name: 'chatml',
    system_template: '<|im_start|>system\n{system_message}<|im_end|>\n',
    system_message: 'You are a helpful assistant.',
    roles: { user: '<|im_start|>user', assistant: '<|im_start|>assistant' },
    role_templates: { user: '{user_message}', assistant: '{assistant_message}' },
    seps: ['<|im_end|>\n'],
    role_content_sep: '\n',
    role_empty_sep: '\n',
    stop_str: ['<|im_end|>'],
    stop_token_ids: [2],
  },
  qwen2: {
    name: 'qwen2',
    system_template: '<|im_start|>system\n{system_message}<|im_end|>\n',
    system_message: 'You are a helpful assistant.',
    roles: { user: '<|im_start|>user', assistant: '<|im_start|>assistant' },
    role_templates: { user: '{user_message}', assistant: '{assistant_message}' },
    seps: ['<|im_end|>\n'],
    role_content_sep: '\n',
    role_empty_sep: '\n',
    stop_str: ['<|endoftext|>', '<|im_end|>'],
    stop_token_ids: [151643, 151645],
  },
  raw: {
    name: 'raw',
    system_template: '{system_message}',
    system_message: '',
    roles: { user: '', assistant: '' },
    role_templates: { user: '{user_message}', assistant: '{assistant_message}' },
    seps: [''],
    role_content_sep: '',
    role_empty_sep: '',
    stop_str: [],
    stop_token_ids: [],
  },
};

/** The model's template: the embedded one, else a builtin of the same name. */
export function resolveTemplate(config: Pick<ModelConfig, 'convTemplate'>, fallbackName = 'raw'): ConvTemplate {
  if (config.convTemplate) return config.convTemplate;
  const t = BUILTIN_TEMPLATES[fallbackName];
  if (!t) throw new Error(`unknown conversation template "${fallbackName}"`);
  return t;
}

/** Stop token ids: the template's plus the model's EOS ids. */
export function stopTokenIds(template: ConvTemplate, config?: Pick<ModelConfig, 'eosTokenIds'>): number[] {
  return [...new Set([...(template.stop_token_ids ?? []), ...(config?.eosTokenIds ?? [])])];
}

export function stopStrings(template: ConvTemplate): string[] {
  return (template.stop_str ?? []).filter((s) => s.length > 0);
}

/** The system block text; '' when the system message is empty (no empty system block is emitted). */
export function systemText(template: ConvTemplate, systemMessage?: string): string {
  const message = systemMessage ?? template.system_message;
  if (!message) return '';
  return template.system_template.split(PLACEHOLDER.system).join(message);
}

function sepAt(template: ConvTemplate, index: number): string {
  const seps = template.seps.length > 0 ? template.seps : [''];
  return seps[index % seps.length];
}

/** `role_templates[role]` split around its placeholder: [before, after]. */
function roleWrap(template: ConvTemplate, role: 'user' | 'assistant'): [string, string] {
  const t = template.role_templates?.[role] ?? PLACEHOLDER[role];
  const at = t.indexOf(PLACEHOLDER[role]);
  if (at < 0) return [t, ''];
  return [t.slice(0, at), t.slice(at + PLACEHOLDER[role].length)];
}

/** The tokenizer calls prompts need: trusted template text, and untrusted data. */
export type PromptTokenizer = Pick<Tokenizer, 'encode' | 'encodeText'>;

/** `template` with `placeholder` replaced by `content`: the template's parts as markers, the content as data. */
function encodeFilled(tok: PromptTokenizer, template: string, placeholder: string, content: string): number[] {
  const at = template.indexOf(placeholder);
  if (at < 0) return tok.encode(template);
  return [
    ...tok.encode(template.slice(0, at)),
    ...tok.encodeText(content),
    ...encodeFilled(tok, template.slice(at + placeholder.length), placeholder, content),
  ];
}

/** The system block's ids; none when the system message is empty. */
function encodeSystem(tok: PromptTokenizer, template: ConvTemplate, systemMessage?: string): number[] {
  const message = systemMessage ?? template.system_message;
  if (!message) return [];
  return encodeFilled(tok, template.system_template, PLACEHOLDER.system, message);
}

/** The text of one message, separator included (message index `i` picks the separator, as in MLC). */
export function messageText(template: ConvTemplate, role: 'user' | 'assistant', content: string, i: number): string {
  const [before, after] = roleWrap(template, role);
  return (
    (template.roles[role] ?? '') + (template.role_content_sep ?? '') + before + content + after + sepAt(template, i)
  );
}

/** `messageText`'s ids: the role markers as trusted text, the content as data. */
function encodeMessage(
  tok: PromptTokenizer,
  template: ConvTemplate,
  role: 'user' | 'assistant',
  content: string,
  i: number,
): number[] {
  const [before, after] = roleWrap(template, role);
  return tok
    .encode((template.roles[role] ?? '') + (template.role_content_sep ?? '') + before)
    .concat(tok.encodeText(content), tok.encode(after + sepAt(template, i)));
}

/** The header that asks the model to answer. */
export function replyHeader(template: ConvTemplate): string {
  return (template.roles.assistant ?? '') + (template.role_empty_sep ?? '');
}

/** A full conversation ending with the assistant's reply header. A leading system message replaces the template's. */
export function encodeChat(tokenizer: PromptTokenizer, template: ConvTemplate, messages: ChatMessage[]): number[] {
  let system: string | undefined;
  let rest = messages;
  if (messages[0]?.role === 'system') {
    system = messages[0].content;
    rest = messages.slice(1);
  }
  // Concatenated, not push(...ids): a long message has more ids than a call may take arguments.
  let ids = [...(template.system_prefix_token_ids ?? []), ...encodeSystem(tokenizer, template, system)];
  rest.forEach((m, i) => {
    if (m.role === 'system') throw new Error('a system message is only allowed first');
    ids = ids.concat(encodeMessage(tokenizer, template, m.role, m.content, i));
  });
  return ids.concat(tokenizer.encode(replyHeader(template)));
}

export interface DocumentPrompt {
  /** Replaces the template's system message when given. */
  system?: string;
  /** The page/PDF text; goes at the start of the user message, before the question. */
  document: string;
  question: string;
  /** Between document and question. */
  separator?: string;
}

export interface EncodedPrompt {
  /** The full prompt, ending with the assistant's reply header. */
  ids: number[];
  /** system prefix ids + system block + user header + document: always `ids.slice(0, prefixLength)`. */
  prefixIds: number[];
  prefixLength: number;
  /** Where the document's ids are: `ids.slice(start, end)` (end exclusive), inside the prefix. */
  documentRange: [number, number];
}

/** [prefix: system + document] + [question + reply header], tokenised separately so the prefix ids are stable. */
export function encodeDocumentPrompt(
  tokenizer: PromptTokenizer,
  template: ConvTemplate,
  prompt: DocumentPrompt,
): EncodedPrompt {
  const [before, after] = roleWrap(template, 'user');
  const head = [
    ...(template.system_prefix_token_ids ?? []),
    ...encodeSystem(tokenizer, template, prompt.system),
    ...tokenizer.encode((template.roles.user ?? '') + (template.role_content_sep ?? '') + before),
  ];
  const prefixIds = head.concat(tokenizer.encodeText(prompt.document));
  const documentRange: [number, number] = [head.length, prefixIds.length];
  const ids = [
    ...prefixIds,
    ...tokenizer.encodeText((prompt.separator ?? '\n\n') + prompt.question),
    ...tokenizer.encode(after + sepAt(template, 0) + replyHeader(template)),
  ];
  return { ids, prefixIds, prefixLength: prefixIds.length, documentRange };
}

/** A finished turn of a thread: `answerIds` are the ids the model generated (their KV is still in the cache). */
export interface ThreadTurn {
  question: string;
  answer: string;
  answerIds?: readonly number[];
}

/**
 * A thread about a document: [prefix: system + document] + turn 1 (question, reply header, answer, end of message)
 * + … + the new question and the reply header. Each part is tokenised on its own and earlier answers keep the ids
 * they were generated as, so the ids of turns 1..n are exactly the cache after answer n: a follow-up prefills only
 * its own question. With no turns this is `encodeDocumentPrompt`, id for id.
 */
export function encodeThreadPrompt(
  tokenizer: PromptTokenizer,
  template: ConvTemplate,
  prompt: DocumentPrompt & { turns: readonly ThreadTurn[] },
): EncodedPrompt {
  const first = encodeDocumentPrompt(tokenizer, template, {
    ...prompt,
    question: prompt.turns.length > 0 ? prompt.turns[0].question : prompt.question,
  });
  if (prompt.turns.length === 0) return first;
  const encode = (text: string) => (text ? tokenizer.encode(text) : []);
  let ids = first.ids;
  const questions = [...prompt.turns.slice(1).map((t) => t.question), prompt.question];
  prompt.turns.forEach((turn, i) => {
    // Answers and questions are data (an answer may quote the page); the template's markers are not.
    ids = ids.concat(
      turn.answerIds ?? tokenizer.encodeText(turn.answer),
      // The assistant message's separator (message index 2i+1), then the next user message and the reply header.
      encode(sepAt(template, 2 * i + 1)),
      encodeMessage(tokenizer, template, 'user', questions[i], 2 * i + 2),
      encode(replyHeader(template)),
    );
  });
  return { ids, prefixIds: first.prefixIds, prefixLength: first.prefixLength, documentRange: first.documentRange };
}
