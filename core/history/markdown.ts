// A thread exported as Markdown: title, source and date, then each question and answer with its citations.
import type { ThreadView, TurnView } from '../protocol/messages';

function citationLine(t: TurnView): string {
  const lines = t.citations.map((c) => {
    const where = c.kind === 'page' ? `page ${c.page}` : c.page !== null ? `p. ${c.page}` : 'in the page';
    return c.match === 'none' ? `- "${c.quote}" (not found in the page)` : `- "${c.quote}" (${where})`;
  });
  return lines.length > 0 ? `\n\nCitations:\n${lines.join('\n')}` : '';
}

export function threadToMarkdown(thread: ThreadView): string {
  const title = thread.pageTitle || thread.pageUrl || 'Untitled page';
  const head = [`# ${title}`, '', `Source: ${thread.pageUrl}`, `Started: ${new Date(thread.createdAt).toISOString()}`];
  const turns = thread.turns.map((t) => {
    const q = t.kind === 'summarize' ? '## Summary' : `## Q: ${t.question}`;
    const answer = t.answer.trim() || (t.error ? `_Error: ${t.error.message}_` : '_No answer._');
    const stopped = t.status === 'stopped' ? '\n\n_(stopped)_' : '';
    return `${q}\n\n${answer}${stopped}${citationLine(t)}`;
  });
  return `${[head.join('\n'), ...turns].join('\n\n')}\n`;
}

/** A file name for the export: the title's words, no characters file systems refuse. */
export function exportFileName(thread: ThreadView): string {
  const base = (thread.pageTitle || 'thread')
    .replace(/[^\p{L}\p{N}]+/gu, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60);
  return `${base || 'thread'}-${new Date(thread.updatedAt).toISOString().slice(0, 10)}.md`;
}
