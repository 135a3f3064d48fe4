// Extension bundles (service worker: no dynamic import) import this module once, before any tokenizer is created.
// Not for Node: there the UMD package needs the globals that loadWebTokenizers() sets up first.
import * as webTokenizers from '@mlc-ai/web-tokenizers';
import { provideWebTokenizers, type WebTokenizerClass } from './webTokenizers';

const mod = webTokenizers as unknown as { Tokenizer?: WebTokenizerClass; default?: { Tokenizer?: WebTokenizerClass } };
const cls =
  mod.Tokenizer ??
  mod.default?.Tokenizer ??
  (globalThis as { tokenizers?: { Tokenizer?: WebTokenizerClass } }).tokenizers?.Tokenizer;
if (cls) provideWebTokenizers(cls);
