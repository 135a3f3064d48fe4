// A GPU device lost mid-answer (driver reset, GPU process crash; here: device.destroy()): the running job ends with a
// clear gpu-lost error, and the next request creates a new device and reloads the model. Real Dawn devices, a real
// LocalEngine + GpuModel over a generated fixture model; the host is the product's EngineHost.
import { describe, expect, test } from 'vitest';
import { LocalEngine } from '../../core/engine/engine';
import { GpuModel } from '../../core/engine/gpuModel';
import type { HostEnv, KeyValueStore } from '../../core/host/env';
import { EngineHost } from '../../core/host/host';
import { DirSource } from '../../core/node/dirSource';
import { createNodeGpuContext } from '../../core/node/webgpu';
import type { HostEvent, JobView } from '../../core/protocol/messages';
import { writeFixtureModelDir } from '../../core/testing/fixtureModelDir';
import type { GpuContext } from '../../kernels/gpuContext';

function memory(): KeyValueStore {
  const m = new Map<string, unknown>();
  return { get: async (k) => m.get(k), set: async (k, v) => void m.set(k, v) };
}

describe('GPU device lost', () => {
  test('destroying the device mid-generation ends the job with gpu-lost; the next ask gets a new device', async () => {
    const { dir } = writeFixtureModelDir({ template: 'chatml', quantization: 'q0f32', contextWindow: 1024, seed: 3 });
    const devices: GpuContext[] = [];
    const env: HostEnv = {
      openGpu: async () => {
        // A device of its own (forced f32 so both drivers run the same path): this test destroys it.
        const ctx = await createNodeGpuContext({ forceF32: true });
        devices.push(ctx);
        return ctx;
      },
      createEngine: async (gpu) =>
        new LocalEngine({
          openSource: () => new DirSource(dir),
          createRunner: (model, contextWindow) => GpuModel.create(gpu, model.config, model.weights, { contextWindow }),
        }),
      readPage: async () => ({ title: 'Fixture', url: 'https://example.org/f', text: 'w1 w2 w3 w4 w5 w6 w7 w8' }),
      localStore: memory(),
      sessionStore: memory(),
      modelFiles: { cachedBaseUrls: async () => new Set(), delete: async () => 0 },
      clearSnapshots: async () => 0,
      fetchText: async () => '',
      keepAlive: () => {},
    };
    const host = new EngineHost(env);
    const events: HostEvent[] = [];
    let destroyed = false;
    host.subscribe((e) => {
      events.push(e);
      // The first streamed token: the model is loaded and decoding on this device. Pull it out from under the job.
      if (e.type === 'delta' && !destroyed) {
        destroyed = true;
        devices[0].device.destroy();
      }
    });
    const model = { modelId: 'custom:http://127.0.0.1/fixture/', baseUrl: 'http://127.0.0.1/fixture/', label: 'f' };
    await host.handle({
      type: 'setSettings',
      settings: { customModels: [model], modelId: model.modelId, maxAnswerTokens: 80, fastMode: false },
    });
    const finished = async (jobId: string): Promise<JobView> => {
      for (let i = 0; i < 6000; i++) {
        const job = host.state(1).job;
        if (job?.jobId === jobId && job.status !== 'running') return job;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error('the job did not finish');
    };
    const first = await finished((await host.handle({ type: 'ask', tabId: 1, question: 'w2' })).jobId);
    expect(destroyed).toBe(true);
    expect(first.status).toBe('error');
    expect(first.error?.code).toBe('gpu-lost');
    expect(first.error?.message).toMatch(/GPU.*lost.*Retry/i);
    expect(host.state().engine.state).toBe('error');
    // Retry: a new device, the model loaded again, the answer written.
    const second = await finished((await host.handle({ type: 'ask', tabId: 1, question: 'w2' })).jobId);
    expect(second.error).toBeNull();
    expect(second.status).toBe('done');
    expect(second.answer.length).toBeGreaterThan(0);
    expect(devices).toHaveLength(2);
    expect(host.state().engine.state).toBe('ready');
    devices[1].device.destroy();
  }, 600_000);
});
