// Node-only: which Vulkan driver Dawn should use. On a machine without a GPU, Dawn needs one of the two software
// drivers that scripts/gpu-env.sh sets up (the same discovery as scripts/with-gpu.sh, in TypeScript for the CLI
// and the bench). On a machine with a real GPU, the system's Vulkan loader finds it and nothing is changed.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project folder (this file is core/node/vulkanDrivers.ts). */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export type VulkanDriverName = 'lavapipe' | 'swiftshader' | 'system';

export interface VulkanDriver {
  name: VulkanDriverName;
  /** The ICD manifest (absent for `system`). */
  icd?: string;
  /** Environment variables to set for Dawn to use this driver (`VK_ICD_FILENAMES`, `LD_LIBRARY_PATH`). */
  env: Record<string, string>;
}

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export class NoVulkanDriverError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoVulkanDriverError';
  }
}

/** Software drivers present under `root` (the project folder), best first: lavapipe (shader-f16, faster), then
 * SwiftShader. */
export function findVulkanDrivers(root = PROJECT_ROOT): VulkanDriver[] {
  const drivers: VulkanDriver[] = [];
  const mesaLib = join(root, '.cache/mesa/root/usr/lib/x86_64-linux-gnu');
  const lavapipeIcd = join(root, '.cache/mesa/lvp_icd.json');
  if (existsSync(lavapipeIcd) && existsSync(join(mesaLib, 'libvulkan_lvp.so'))) {
    const ld = process.env.LD_LIBRARY_PATH;
    drivers.push({
      name: 'lavapipe',
      icd: lavapipeIcd,
      env: { VK_ICD_FILENAMES: lavapipeIcd, LD_LIBRARY_PATH: ld ? `${mesaLib}:${ld}` : mesaLib, NODEVICE_SELECT: '1' },
    });
  }
  if (existsSync(SWIFTSHADER_ICD)) {
    drivers.push({
      name: 'swiftshader',
      icd: SWIFTSHADER_ICD,
      env: { VK_ICD_FILENAMES: SWIFTSHADER_ICD, NODEVICE_SELECT: '1' },
    });
  }
  return drivers;
}

/** A hardware Vulkan driver is installed and its device nodes exist (NVIDIA, or any DRM render node whose ICD is
 * registered). Software ICDs (lvp) do not count. */
export function hasHardwareVulkan(): boolean {
  const icdDirs = [
    '/etc/vulkan/icd.d',
    '/usr/share/vulkan/icd.d',
    '/usr/local/share/vulkan/icd.d',
    '/usr/local/nvidia/share/vulkan/icd.d', // NVIDIA container images mount the driver here
  ];
  const icds = icdDirs.flatMap((dir) => (existsSync(dir) ? readdirSync(dir) : []));
  const hardwareIcds = icds.filter((f) => f.endsWith('.json') && !/^lvp|swiftshader/i.test(f));
  if (hardwareIcds.some((f) => /nvidia/i.test(f)) && existsSync('/dev/nvidia0')) return true;
  const renderNodes = existsSync('/dev/dri') ? readdirSync('/dev/dri').filter((f) => f.startsWith('renderD')) : [];
  return renderNodes.length > 0 && hardwareIcds.some((f) => !/nvidia/i.test(f));
}

/**
 * Makes sure Dawn in this process will find a usable Vulkan driver. When VK_ICD_FILENAMES (or VK_DRIVER_FILES) is
 * already set and `prefer` does not ask for another driver, or a hardware GPU is present, nothing happens (returns the driver in use). Otherwise the current Node process is run
 * again as a child with the best software driver's environment (the loader reads VK_ICD_FILENAMES and
 * LD_LIBRARY_PATH only at start), and this process exits with the child's status; the call does not return.
 * `prefer` (or env RR_GPU_DRIVER) picks a driver by name.
 */
export function ensureVulkanDriver(root = PROJECT_ROOT, prefer?: VulkanDriverName): VulkanDriverName {
  const wanted = prefer ?? (process.env.RR_GPU_DRIVER as VulkanDriverName | undefined);
  // VK_ICD_FILENAMES / VK_DRIVER_FILES (its newer name) chosen by the caller: keep them.
  const chosen = process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES;
  if (chosen) {
    const current = chosen.includes('lvp_icd') ? 'lavapipe' : chosen === SWIFTSHADER_ICD ? 'swiftshader' : 'system';
    if (!prefer || prefer === current) return current;
  }
  if (wanted === 'system' || (!wanted && !chosen && hasHardwareVulkan())) return 'system';
  const drivers = findVulkanDrivers(root);
  const driver = wanted ? drivers.find((d) => d.name === wanted) : drivers[0];
  if (!driver) {
    throw new NoVulkanDriverError(
      (wanted ? `The Vulkan driver "${wanted}" is not set up. ` : 'No Vulkan driver for WebGPU was found. ') +
        'Run `npm run gpu-env` (as root it installs SwiftShader and Mesa lavapipe into .cache/mesa).',
    );
  }
  const env: NodeJS.ProcessEnv = { ...process.env, ...driver.env, RR_GPU_DRIVER: driver.name };
  delete env.VK_DRIVER_FILES; // would override VK_ICD_FILENAMES in newer loaders
  const result = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env,
  });
  if (result.error) throw result.error;
  process.exit(result.status ?? 1);
}

/** Same as ensureVulkanDriver() for the project this file belongs to (the name the CLI uses). */
export function ensureVulkanDriverEnv(prefer?: VulkanDriverName): VulkanDriverName {
  return ensureVulkanDriver(PROJECT_ROOT, prefer);
}
