// Suggested first questions from the page's headings (the extraction writes them as Markdown "#" lines): no model
// call, so they appear as soon as the page is read.

const MAX_SUGGESTIONS = 3;

/** Up to three questions: a summary request, then "What does the page say about <heading>?" for the first
 * headings below the title that read like topics. */
export function suggestQuestions(text: string, title = ''): string[] {
  const headings: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^(#{1,6})\s+(.+?)\s*$/.exec(line);
    if (!m) continue;
    const h = m[2]
      .replace(/[*_`]/g, '')
      .replace(/[:.]+$/, '')
      .trim();
    const words = h.split(/\s+/).length;
    if (h.length < 3 || h.length > 80 || words > 10) continue;
    if (title && h.toLowerCase() === title.trim().toLowerCase()) continue;
    if (/^(contents|table of contents|references|see also|notes|footnotes|comments|related|share)$/i.test(h)) continue;
    if (!headings.some((x) => x.toLowerCase() === h.toLowerCase())) headings.push(h);
  }
  const out = ['What are the main points of this page?'];
  for (const h of headings) {
    if (out.length >= MAX_SUGGESTIONS) break;
    out.push(`What does it say about “${h}”?`);
  }
  return out;
}
