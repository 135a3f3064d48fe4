// Loads @mlc-ai/web-tokenizers (HF tokenizers compiled to wasm, wasm inlined in the JS).
// The package is UMD: in Node ESM it reads `require` and `__filename` while it initialises, so we provide both before
// a dynamic import and then read `globalThis.tokenizers`. In the extension, the bundler handles the UMD module; a
// service worker cannot use dynamic import(), so the background imports `./webTokenizersStatic` once instead.

export interface WebTokenizer {
  encode(text: string): Int32Array;
  decode(ids: Int32Array): string;
  getVocabSize(): number;
  idToToken(id: number): string;
  dispose(): void;
}

export interface WebTokenizerClass {
  fromJSON(json: ArrayBuffer): Promise<WebTokenizer>;
}

let provided: WebTokenizerClass | undefined;
let loading: Promise<WebTokenizerClass> | undefined;

/** For bundles that import the package statically (see webTokenizersStatic.ts). */
export function provideWebTokenizers(cls: WebTokenizerClass): void {
  provided = cls;
}

export function loadWebTokenizers(): Promise<WebTokenizerClass> {
  if (provided) return Promise.resolve(provided);
  loading ??= importWebTokenizers().catch((e) => {
    loading = undefined;
    throw new Error(`could not load @mlc-ai/web-tokenizers: ${(e as Error).message}`);
  });
  return loading;
}

interface NodeProcess {
  versions?: { node?: string };
  getBuiltinModule?: (name: string) => unknown;
}

async function importWebTokenizers(): Promise<WebTokenizerClass> {
  const g = globalThis as Record<string, unknown>;
  const proc = g.process as NodeProcess | undefined;
  if (proc?.versions?.node && typeof proc.getBuiltinModule === 'function') {
    // Node: no `node:` import here (core/ is shared with the extension); Node >= 20.16 exposes builtins this way.
    const { createRequire } = proc.getBuiltinModule('module') as { createRequire(url: string): NodeRequire };
    const require = createRequire(import.meta.url);
    g.require ??= require;
    g.__filename ??= require.resolve('@mlc-ai/web-tokenizers');
  }
  const mod = (await import('@mlc-ai/web-tokenizers')) as Record<string, unknown>;
  const cls =
    (mod.Tokenizer as WebTokenizerClass | undefined) ??
    ((mod.default as Record<string, unknown> | undefined)?.Tokenizer as WebTokenizerClass | undefined) ??
    ((g.tokenizers as Record<string, unknown> | undefined)?.Tokenizer as WebTokenizerClass | undefined);
  if (!cls || typeof cls.fromJSON !== 'function') throw new Error('module has no Tokenizer.fromJSON');
  return cls;
}
