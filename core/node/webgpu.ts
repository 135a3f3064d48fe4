// Node-only: a WebGPU implementation (Dawn, from the `webgpu` package). Used by tests, the CLI and the bench.
// Driver discovery (SwiftShader / Mesa lavapipe) lives in core/node/vulkanDrivers.ts.
import { create, globals } from 'webgpu';
import { createGpuContext, type GpuContext, GpuUnavailableError } from '../../kernels/gpuContext';

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

export async function createNodeGpuContext(opts: { forceF32?: boolean } = {}): Promise<GpuContext> {
  try {
    return await createGpuContext(getNodeGpu(), opts);
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
