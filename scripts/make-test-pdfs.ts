// Writes the test PDFs to disk (tests generate the same ones in memory): a multi-page Austen text PDF, an
// image-only one, an encrypted one and a truncated one.
// Usage: npx tsx scripts/make-test-pdfs.ts [outDir = .cache/test-pdfs]

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  makeEncryptedPdf,
  makeImageOnlyPdf,
  makeTextPdf,
  makeTruncatedPdf,
  paragraphsOf,
} from '../tests/fixtures/pdf/makePdfs.ts';

const outDir = process.argv[2] ?? '.cache/test-pdfs';
const chapters = readFileSync(new URL('../tests/fixtures/pages/persuasion-ch1-2.txt', import.meta.url), 'utf8');

const text = await makeTextPdf(paragraphsOf(chapters), 'Persuasion, chapters 1-2');
const files: Record<string, Uint8Array> = {
  'persuasion-ch1-2.pdf': text.bytes,
  'image-only.pdf': await makeImageOnlyPdf(3),
  'encrypted.pdf': await makeEncryptedPdf(),
  'truncated.pdf': makeTruncatedPdf(text.bytes),
};
mkdirSync(outDir, { recursive: true });
for (const [name, bytes] of Object.entries(files)) {
  writeFileSync(join(outDir, name), bytes);
  console.log(`${join(outDir, name)}  ${bytes.length} bytes`);
}
console.log(`persuasion-ch1-2.pdf: ${text.pageParagraphs.length} pages`);
