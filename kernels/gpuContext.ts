// What every kernel host needs: the device and the few facts about it that pick a code path.
export interface GpuContext {
  device: GPUDevice;
  /** `shader-f16` is enabled on the device: kernels may use f16 storage and arithmetic. */
  f16: boolean;
  /** `subgroups` is enabled on the device. */
  subgroups: boolean;
  adapterInfo: AdapterSummary;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  /** Subgroup sizes the adapter may run with (absent or 0 when it does not say). */
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

/** Subgroup sizes the kernels generated per subgroup size (fully unrolled lane reads, subgroupRead.ts) are made for. */
export const SUBGROUP_SIZES: readonly number[] = [4, 8, 16, 32];

/** The subgroup size of the adapter when it is fixed (min = max) and one of SUBGROUP_SIZES, else undefined. */
export function fixedSubgroupSize(ctx: GpuContext): number | undefined {
  const { subgroupMinSize, subgroupMaxSize } = ctx.adapterInfo;
  if (!ctx.subgroups || !subgroupMinSize || subgroupMinSize !== subgroupMaxSize) return undefined;
  return SUBGROUP_SIZES.includes(subgroupMinSize) ? subgroupMinSize : undefined;
}

/** SwiftShader and lavapipe (and any adapter that calls itself software) run WebGPU on the CPU: invocations of a
 * workgroup become SIMD lanes. */
export function isCpuAdapter(a: AdapterSummary): boolean {
  return /swiftshader|llvmpipe|lavapipe|software/i.test(`${a.vendor} ${a.architecture} ${a.device} ${a.description}`);
}

export class GpuUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuUnavailableError';
  }
}

/** Asks for the adapter's largest limits: long contexts need big bindings and workgroup storage. */
export async function createGpuContext(gpu: GPU | undefined, opts: { forceF32?: boolean } = {}): Promise<GpuContext> {
  if (!gpu) throw new GpuUnavailableError('WebGPU is not available in this environment (navigator.gpu is missing).');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new GpuUnavailableError('No WebGPU adapter was found (the GPU or its driver is not usable).');
  const wantF16 = adapter.features.has('shader-f16') && !opts.forceF32;
  const wantSubgroups = adapter.features.has('subgroups');
  const requiredFeatures: GPUFeatureName[] = [];
  if (wantF16) requiredFeatures.push('shader-f16');
  if (wantSubgroups) requiredFeatures.push('subgroups' as GPUFeatureName);
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
  });
  const info = adapter.info;
  return {
    device,
    f16: wantF16,
    subgroups: wantSubgroups,
    adapterInfo: {
      vendor: info?.vendor ?? '',
      architecture: info?.architecture ?? '',
      device: info?.device ?? '',
      description: info?.description ?? '',
      features: [...adapter.features].sort(),
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
      subgroupMinSize: (info as { subgroupMinSize?: number } | undefined)?.subgroupMinSize ?? 0,
      subgroupMaxSize: (info as { subgroupMaxSize?: number } | undefined)?.subgroupMaxSize ?? 0,
    },
  };
}

export function describeAdapter(a: AdapterSummary): string {
  const name = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') || 'unnamed adapter';
  const f16 = a.features.includes('shader-f16') ? 'shader-f16' : 'no shader-f16';
  const sg = a.features.includes('subgroups') ? 'subgroups' : 'no subgroups';
  return `${name} [${f16}, ${sg}, maxStorageBufferBindingSize ${a.maxStorageBufferBindingSize}]`;
}
