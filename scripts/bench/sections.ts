// The bench's section registry. A section is a file in scripts/bench/sections/ whose default export is a
// BenchSection; `npm run bench` runs them all in `order`, `npm run bench -- NAME...` only those named.
// To add one (runtime, attention, snapshot, ...): create scripts/bench/sections/<name>.ts, nothing else.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { VulkanDriverName } from '../../core/node/vulkanDrivers';
import type { GpuContext } from '../../kernels/gpuContext';
import type { Timing, TimingOptions } from './timing';

/** One line of a section's table. Keys become columns (in first-seen order); numbers are printed rounded. */
export type BenchRow = Record<string, string | number | boolean | null>;

export interface BenchContext {
  gpu: GpuContext;
  driver: VulkanDriverName;
  /** A CPU implementation of Vulkan (SwiftShader, lavapipe): keep sizes modest unless `large`. */
  cpuAdapter: boolean;
  /** `--large`: model-sized shapes even on a CPU adapter. */
  large: boolean;
  /** Samples per timing (median taken). */
  samples: number;
  /** Times GPU work: median per repetition (see timing.ts). */
  time(encode: (pass: GPUComputePassEncoder) => void, opts?: TimingOptions): Promise<Timing>;
  /** Copy bandwidth (read + write bytes per second, GB/s) of this device, measured once and shared. */
  copyBandwidth(): Promise<number>;
  /** Prints a progress line (stderr; keeps stdout for the tables). */
  log(message: string): void;
  /** Headline figures sections add under fixed names (an issue's contract: #9, #10); written as the JSON's
   * top-level `summary` and printed at the end. */
  summary: Record<string, unknown>;
}

export interface BenchSection {
  name: string;
  description: string;
  /** Lower runs first. */
  order: number;
  /** Runs only when named on the command line (tuning sweeps and other slow extras). */
  explicitOnly?: boolean;
  run(ctx: BenchContext): Promise<BenchRow[]>;
}

const SECTIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'sections');

export async function loadSections(): Promise<BenchSection[]> {
  const files = readdirSync(SECTIONS_DIR).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
  const sections: BenchSection[] = [];
  for (const file of files) {
    const mod = (await import(pathToFileURL(join(SECTIONS_DIR, file)).href)) as { default?: BenchSection };
    const s = mod.default;
    if (!s || typeof s.run !== 'function' || typeof s.name !== 'string') {
      throw new Error(`scripts/bench/sections/${file} must default-export a BenchSection ({ name, order, run })`);
    }
    sections.push(s);
  }
  return sections.sort((a, b) => a.order - b.order || a.name.localeCompare(b.name));
}

/** Formats rows as an aligned text table. */
export function formatTable(rows: BenchRow[]): string {
  if (rows.length === 0) return '  (no rows)';
  const columns: string[] = [];
  for (const row of rows) for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
  const cell = (v: BenchRow[string] | undefined): string => {
    if (v === undefined || v === null) return '';
    if (typeof v === 'number') {
      if (Number.isInteger(v)) return String(v);
      const a = Math.abs(v);
      return a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
    }
    return String(v);
  };
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const numeric = columns.map((c) =>
    rows.every((r) => r[c] === undefined || r[c] === null || typeof r[c] === 'number'),
  );
  const line = (vals: string[]) =>
    `  ${vals.map((v, i) => (numeric[i] ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('  ')}`.trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}
