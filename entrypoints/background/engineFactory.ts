// The one place the background constructs its engine. Until the WebGPU engine lands this returns an engine that
// refuses to load, with a clear error; switch to `new WebGpuEngine(gpu)` (core/engine/webgpuEngine.ts) here.
import type { Engine, ModelInfo } from '../../core/engine/types';
import type { GpuContext } from '../../core/gpu/context';
import { ProtocolError } from '../../core/protocol/messages';

class EngineNotWiredYet implements Engine {
  async load(): Promise<ModelInfo> {
    throw new ProtocolError('engine-unavailable', 'The WebGPU engine is not part of this build yet.');
  }
  // biome-ignore lint/correctness/useYield: never yields: nothing can be loaded
  async *generate(): AsyncIterable<never> {
    throw new ProtocolError('engine-unavailable', 'The WebGPU engine is not part of this build yet.');
  }
  countTokens(): number {
    throw new ProtocolError('engine-unavailable', 'The WebGPU engine is not part of this build yet.');
  }
  async unload(): Promise<void> {}
}

export function createEngine(gpu: GpuContext): Engine {
  void gpu;
  return new EngineNotWiredYet();
}
