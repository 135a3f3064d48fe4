// Time to first token after Ask, with and without pre-read, through the real host (core/host) and engine on this
// adapter: "cold" asks about a page nothing has read yet; "pre-read" first lets the host put the page into the KV
// cache (what the popup / side panel do when they open with the model loaded), then asks. Same model, same page
// length, same run. Bytes-moved prediction: the cold Ask prefills the page and the question, the pre-read Ask only
// the question, so the ratio should approach (page + question tokens) / (question tokens) for prefill-bound TTFT.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineHost } from '../../../core/host/host';
import { createNodeEngine } from '../../../core/node/nodeEngine';
import type { HostEvent, PageContent } from '../../../core/protocol/messages';
import { writeFixtureModelDir } from '../../../core/testing/fixtureModelDir';
import type { BenchRow, BenchSection } from '../sections';

const QUESTION = 'w1 w2 w3 w4 w5 w6 w7 w8';

function page(words: number, salt: number): PageContent {
  const text = Array.from({ length: words }, (_, i) => `w${(i * 7 + salt * 13) % 90}`).join(' ');
  return { title: '', url: `https://bench.invalid/${salt}`, text };
}

const section: BenchSection = {
  name: 'preread',
  description: 'Time to first token after Ask, cold vs after pre-read (host + engine, generated chatml model)',
  order: 60,
  async run(bench) {
    const dir = mkdtempSync(join(tmpdir(), 'rr-bench-preread-'));
    const shape =
      bench.cpuAdapter && !bench.large ? { hiddenSize: 256, numLayers: 4 } : { hiddenSize: 1024, numLayers: 8 };
    writeFixtureModelDir(
      {
        template: 'chatml',
        quantization: bench.gpu.f16 ? 'q4f16_1' : 'q4f32_1',
        contextWindow: 8192,
        numHeads: 8,
        numKvHeads: 4,
        headDim: shape.hiddenSize / 8,
        intermediateSize: shape.hiddenSize * 2,
        vocabSize: 96,
        seed: 11,
        ...shape,
      },
      dir,
    );
    const pages = new Map<number, PageContent>();
    const memory = new Map<string, unknown>();
    const store = {
      get: async (k: string) => memory.get(k),
      set: async (k: string, v: unknown) => void memory.set(k, v),
    };
    const host = new EngineHost({
      openGpu: async () => bench.gpu,
      createEngine: async () => {
        const engine = await createNodeEngine({ gpu: bench.gpu });
        // Whatever model id the settings name, the bench's generated folder is what loads.
        return {
          load: (_spec, o) => engine.load({ kind: 'dir', path: dir }, o),
          generate: (input, o) => engine.generate(input, o),
          countTokens: (t) => engine.countTokens(t),
          unload: () => engine.unload(),
        };
      },
      readPage: async (tabId) => pages.get(tabId)!,
      localStore: store,
      sessionStore: store,
      modelFiles: { cachedBaseUrls: async () => new Set(), delete: async () => 0 },
      clearSnapshots: async () => 0,
      fetchText: async () => '',
      keepAlive: () => {},
    });
    const events: HostEvent[] = [];
    host.subscribe((e) => events.push(e));
    const rows: BenchRow[] = [];
    try {
      await host.handle({
        type: 'setSettings',
        settings: { fastMode: false, maxAnswerTokens: 4, contextWindow: 8192 },
      });
      await host.handle({ type: 'loadModel', modelId: (await host.handle({ type: 'getState' })).defaultModelId });
      const ttft = async (tabId: number) => {
        const t0 = performance.now();
        const { jobId } = await host.handle({ type: 'ask', tabId, question: QUESTION });
        while (!events.some((e) => e.type === 'delta' && e.jobId === jobId)) await new Promise((r) => setTimeout(r, 1));
        const ms = performance.now() - t0;
        while (!events.some((e) => e.type === 'done' && e.jobId === jobId)) await new Promise((r) => setTimeout(r, 2));
        const done = events.find((e) => e.type === 'done' && e.jobId === jobId) as Extract<HostEvent, { type: 'done' }>;
        return { ms, prefilled: done.stats?.prefillTokens ?? 0, prompt: done.stats?.promptTokens ?? 0 };
      };
      const lengths = bench.cpuAdapter && !bench.large ? [1000, 3000] : [2000, 6000];
      let tab = 1;
      for (const words of lengths) {
        const cold: number[] = [];
        const warm: number[] = [];
        let coldPrefill = 0;
        let warmPrefill = 0;
        let prompt = 0;
        for (let s = 0; s < Math.max(1, Math.min(3, bench.samples)); s++) {
          pages.set(tab, page(words, tab));
          const c = await ttft(tab++);
          cold.push(c.ms);
          coldPrefill = c.prefilled;
          prompt = c.prompt;
          pages.set(tab, page(words, tab));
          await host.handle({ type: 'preRead', tabId: tab });
          // The pre-read ends when its prefill reports all tokens done.
          while (
            !events.some(
              (e) =>
                e.type === 'progress' &&
                e.jobId === null &&
                e.tabId === tab &&
                e.progress.prefill !== undefined &&
                e.progress.prefill.done === e.progress.prefill.total,
            )
          )
            await new Promise((r) => setTimeout(r, 2));
          await new Promise((r) => setTimeout(r, 20));
          const w = await ttft(tab++);
          warm.push(w.ms);
          warmPrefill = w.prefilled;
        }
        const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
        const coldMs = median(cold);
        const warmMs = median(warm);
        bench.log(`preread: ${words} words: cold ${coldMs.toFixed(0)} ms, pre-read ${warmMs.toFixed(0)} ms`);
        rows.push({
          model: `chatml h${shape.hiddenSize} L${shape.numLayers}`,
          promptTokens: prompt,
          coldPrefillTokens: coldPrefill,
          prereadPrefillTokens: warmPrefill,
          predictedRatio: coldPrefill / Math.max(1, warmPrefill),
          ttftColdMs: coldMs,
          ttftPrereadMs: warmMs,
          speedup: coldMs / warmMs,
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return rows;
  },
};

export default section;
