import { describe, expect, test } from 'vitest';
import { findCitations, foldText, locateQuote, pageAt, quotesOf } from '../../core/document/citations';
import { suggestQuestions } from '../../core/document/suggest';

const DOC =
  'The Keeper of Gull Rock\n\nThe keeper climbed the ninety-nine steps of the tower at dusk.\n\n' +
  'Ships passing the reef counted the flashes,\nthree every fifteen seconds, and knew where they were.';

describe('quotesOf', () => {
  test('straight and curly double quotes, block quotes and page markers, in answer order, deduplicated', () => {
    const answer =
      'He went up "the ninety-nine steps" [p. 2] and\n> Ships passing the reef\n> counted the flashes\n' +
      'as \u201cthree every fifteen seconds\u201d says; again "the ninety-nine steps". Short "dusk" is skipped.';
    expect(quotesOf(answer)).toEqual([
      { quote: 'the ninety-nine steps', kind: 'quote' },
      { quote: 'p. 2', kind: 'page' },
      { quote: 'Ships passing the reef counted the flashes', kind: 'quote' },
      { quote: 'three every fifteen seconds', kind: 'quote' },
    ]);
  });
});

describe('locateQuote', () => {
  test('exact first: the verbatim offsets', () => {
    const q = 'climbed the ninety-nine steps';
    expect(locateQuote(DOC, q)).toEqual({ start: DOC.indexOf(q), end: DOC.indexOf(q) + q.length, match: 'exact' });
  });

  test('tolerant of whitespace (a line break in the page) and case, mapped back to the original offsets', () => {
    const found = locateQuote(DOC, 'COUNTED THE FLASHES, Three every');
    expect(found?.match).toBe('tolerant');
    // The span in the original text contains the newline the quote does not have.
    expect(DOC.slice(found!.start, found!.end)).toBe('counted the flashes,\nthree every');
  });

  test('a quote that is not in the document is not found', () => {
    expect(locateQuote(DOC, 'the lighthouse was painted red')).toBeNull();
  });

  test('foldText keeps one origin offset per folded character', () => {
    const f = foldText('  A\u2019b \n\t C ');
    expect(f.text).toBe("a'b c");
    expect(f.origin).toEqual([2, 3, 4, 5, 9]);
  });
});

describe('findCitations', () => {
  test('found quotes get spans; a made-up quote is marked not found', () => {
    const c = findCitations('The keeper "climbed the ninety-nine steps" but "painted the lamp green".', DOC);
    expect(c).toHaveLength(2);
    expect(c[0]).toMatchObject({ kind: 'quote', match: 'exact', page: null });
    expect(DOC.slice(c[0].start!, c[0].end!)).toBe('climbed the ninety-nine steps');
    expect(c[1]).toEqual({
      quote: 'painted the lamp green',
      kind: 'quote',
      start: null,
      end: null,
      match: 'none',
      page: null,
    });
  });

  test('an answer that is itself a passage of the document cites itself (a base model answering by continuation)', () => {
    const doc = 'f3 f11 f0 k7 v3 v20 v9 v1 f2 f0 k2 v5 v11 v0 v17 f1';
    const c = findCitations(' v3 v20 v9 v1', doc);
    expect(c).toEqual([{ quote: 'v3 v20 v9 v1', kind: 'quote', start: 13, end: 25, match: 'exact', page: null }]);
    // Not a passage: no citation at all.
    expect(findCitations('v3 v5 v9 v1', doc)).toEqual([]);
  });

  test('PDF: page markers point at their page; quotes get the page they lie on', () => {
    const pdf = '[p. 1]\nIntroduction to lamps.\n\n[p. 2]\nThe lens turns by clockwork.\n\n[p. 3]\nEnd.';
    const c = findCitations('It turns "by clockwork" [p. 2]; see also [p. 9].', pdf);
    expect(c.map((x) => [x.kind, x.quote, x.match, x.page])).toEqual([
      ['quote', 'by clockwork', 'exact', 2],
      ['page', 'p. 2', 'exact', 2],
      ['page', 'p. 9', 'none', 9],
    ]);
    expect(pdf.slice(c[1].start!, c[1].end!)).toBe('[p. 2]');
    expect(pageAt(pdf, 0)).toBe(1);
    expect(pageAt('no markers', 3)).toBeNull();
  });
});

describe('suggestQuestions', () => {
  test('from the headings below the title, skipping navigation headings and duplicates', () => {
    const text =
      '# Gull Rock\n\nIntro.\n\n## Contents\n\n## The lamp:\n\nText.\n\n### The lamp\n\n## Keeping the **log**\n\n' +
      '## A heading that is much too long to be a topic of a question anyone would ask\n\n## Storms';
    expect(suggestQuestions(text, 'Gull Rock')).toEqual([
      'What are the main points of this page?',
      'What does it say about “The lamp”?',
      'What does it say about “Keeping the log”?',
    ]);
    expect(suggestQuestions('no headings at all')).toEqual(['What are the main points of this page?']);
  });
});
