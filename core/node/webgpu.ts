// Node-only: a WebGPU implementation (Dawn, from the `webgpu` package). Used by tests, the CLI and the bench.
// Driver discovery (SwiftShader / Mesa lavapipe) lives in core/node/vulkanDrivers.ts.
import { create, globals } from 'webgpu';
import { createGpuContext, type GpuContext, GpuUnavailableError, isCpuAdapter } from '../../kernels/gpuContext';
import { sleepBetweenDawnPolls } from './dawnPolling';

let nodeGpu: GPU | undefined;

/** Dawn crashes if the object returned by create() is garbage collected, so it lives on globalThis. */
export function getNodeGpu(): GPU {
  if (!nodeGpu) {
    Object.assign(globalThis, globals);
    nodeGpu = create([]) as unknown as GPU;
    (globalThis as Record<string, unknown>).__recycledReaderDawn = nodeGpu;
  }
  return nodeGpu;
}

export interface NodeGpuOptions {
  forceF32?: boolean;
  /** How Dawn waits for GPU work: 'sleep' polls on a ~1 ms timer, 'spin' back to back (Dawn's own way). Default:
   * sleep on a CPU adapter, whose compute threads need the core a spinning wait holds (core/node/dawnPolling.ts),
   * spin on a GPU, where the wait's latency counts and a core is cheap. */
  dawnPolling?: 'sleep' | 'spin';
}

export async function createNodeGpuContext(opts: NodeGpuOptions = {}): Promise<GpuContext> {
  try {
    const ctx = await createGpuContext(getNodeGpu(), opts);
    if ((opts.dawnPolling ?? (isCpuAdapter(ctx.adapterInfo) ? 'sleep' : 'spin')) === 'sleep') sleepBetweenDawnPolls();
    return ctx;
  } catch (e) {
    if (e instanceof GpuUnavailableError) {
      throw new GpuUnavailableError(
        `${e.message} In Node this needs a Vulkan driver: run \`npm run gpu-env\` (as root it installs SwiftShader ` +
          'and Mesa lavapipe) and use the scripts that set VK_ICD_FILENAMES.',
      );
    }
    throw e;
  }
}
