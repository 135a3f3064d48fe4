// Builds the chat for a job and fits the page into the context window, measuring how much of it fit.
import type { ChatMessage } from '../engine/types';
import type { Coverage, JobKind } from '../protocol/messages';

export interface PageContent {
  title: string;
  url: string;
  text: string;
}

const SYSTEM_PROMPT =
  'You answer questions about the document the user is reading. Use only the document. ' +
  'If the document does not contain the answer, say so. Answer concisely; Markdown is allowed.';

const SUMMARY_REQUEST = 'Summarize the document: a one-sentence overview, then the main points as a bulleted list.';

export function buildMessages(kind: JobKind, page: PageContent, documentText: string, question: string): ChatMessage[] {
  const header = [page.title && `Title: ${page.title}`, page.url && `URL: ${page.url}`].filter(Boolean).join('\n');
  const ask = kind === 'summarize' ? SUMMARY_REQUEST : `Question: ${question}`;
  return [
    { role: 'system', content: SYSTEM_PROMPT },
    { role: 'user', content: `${header}\n<document>\n${documentText}\n</document>\n\n${ask}` },
  ];
}

export interface FittedPrompt {
  messages: ChatMessage[];
  coverage: Coverage;
}

/**
 * The longest prefix of the page whose prompt leaves `answerTokens` free in `contextWindow`. Token counts come from
 * the engine's tokenizer; the cut is refined a few times from the measured characters-per-token ratio.
 */
export function fitPrompt(
  kind: JobKind,
  page: PageContent,
  question: string,
  contextWindow: number,
  answerTokens: number,
  countTokens: (text: string) => number,
): FittedPrompt {
  const text = page.text;
  const overhead = countTokens(messagesText(buildMessages(kind, page, '', question))) + CHAT_TEMPLATE_TOKENS;
  const budget = contextWindow - answerTokens - overhead;
  if (budget <= 0)
    throw new RangeError(
      `The context window (${contextWindow} tokens) is too small for the question and a ${answerTokens}-token answer.`,
    );
  const totalTokens = countTokens(text);
  let included = text.length;
  let includedTokens = totalTokens;
  for (let tries = 0; includedTokens > budget && tries < 8; tries++) {
    const charsPerToken = included / Math.max(1, includedTokens);
    // Aim 2% under the budget so the next measurement usually fits.
    included = Math.max(0, Math.min(included - 1, Math.floor(budget * 0.98 * charsPerToken)));
    includedTokens = countTokens(text.slice(0, included));
  }
  while (includedTokens > budget && included > 0) {
    included = Math.floor(included * 0.9);
    includedTokens = countTokens(text.slice(0, included));
  }
  const documentText = text.slice(0, included);
  return {
    messages: buildMessages(kind, page, documentText, question),
    coverage: {
      includedChars: included,
      totalChars: text.length,
      includedTokens,
      totalTokens,
      fraction: text.length === 0 ? 1 : included / text.length,
    },
  };
}

// Role markers and special tokens the chat template adds around the messages.
const CHAT_TEMPLATE_TOKENS = 32;

function messagesText(messages: ChatMessage[]): string {
  return messages.map((m) => m.content).join('\n');
}
