// Text hygiene shared by page and PDF extraction: what reaches the tokenizer must be well-formed, printable Unicode.

/**
 * Removes control characters (keeps \n and \t), zero-width characters and unpaired surrogates, collapses runs of
 * U+FFFD (the mark of undecodable bytes) to one, and NFC-normalises.
 */
export function cleanText(text: string): string {
  // Fast path: printable ASCII (most text on most pages) has nothing to clean.
  if (!/[^\x20-\x7e\n\t]/.test(text)) return text;
  const wellFormed = typeof text.toWellFormed === 'function' ? text.toWellFormed() : text;
  return wellFormed
    .normalize('NFC')
    .replace(/\r\n?/g, '\n')
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g, '')
    .replace(/[\u200b-\u200d\u2060\ufeff]/g, '')
    .replace(/\ufffd+/g, '\ufffd');
}

/** Whitespace collapsed to single spaces, trimmed. */
export function collapseWhitespace(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
