// The bench driver behind scripts/bench.ts (see there for usage): argument parsing, Vulkan driver, device, sections.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { dawnPollingSleeps } from '../../core/node/dawnPolling';
import { ensureVulkanDriverEnv, type VulkanDriverName } from '../../core/node/vulkanDrivers';
import { createNodeGpuContext } from '../../core/node/webgpu';
import { describeAdapter, isCpuAdapter } from '../../kernels/gpuContext';
import { type BenchContext, type BenchRow, type BenchSection, formatTable } from './sections';
import { copyBytes, measureCopy } from './sections/copy';
import { orderedSummary } from './summary';
import { timeGpu } from './timing';

const USAGE =
  'usage: npm run bench -- [SECTION...] [--json FILE] [--large] [--samples N] ' +
  '[--driver lavapipe|swiftshader|system] [--dawn-polling sleep|spin] [--list]';

async function summarize(
  bench: BenchContext,
  adapter: string,
  copy: Promise<number> | undefined,
  prefillRan: boolean,
): Promise<Record<string, unknown>> {
  // The copy section's own figure, else the one other sections measured to compare with.
  const copyGBs = bench.summary.copyGBs ?? (copy ? await copy : null);
  return orderedSummary({ ...bench.summary, adapter, copyGBs }, prefillRan);
}

/** Runs the bench: `argv` as on the command line (without node and the script), `sections` to choose from. */
export async function runBench(argv: string[], sections: BenchSection[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'string' },
      large: { type: 'boolean', default: false },
      samples: { type: 'string' },
      driver: { type: 'string' },
      // How Dawn waits for GPU work (core/node/dawnPolling.ts); default: sleep on a CPU adapter, spin on a GPU.
      'dawn-polling': { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.list) {
    for (const s of sections)
      console.log(`${s.name.padEnd(14)} ${s.description}${s.explicitOnly ? ' (only when named)' : ''}`);
    return;
  }
  const unknown = positionals.filter((p) => !sections.some((s) => s.name === p));
  if (unknown.length) {
    throw new Error(
      `unknown bench section(s): ${unknown.join(', ')}; known: ${sections.map((s) => s.name).join(', ')}`,
    );
  }
  const driverArg = values.driver as VulkanDriverName | undefined;
  if (driverArg && !['lavapipe', 'swiftshader', 'system'].includes(driverArg)) throw new Error(USAGE);
  const pollingArg = values['dawn-polling'];
  if (pollingArg !== undefined && pollingArg !== 'sleep' && pollingArg !== 'spin') throw new Error(USAGE);
  const samples = values.samples === undefined ? undefined : Number(values.samples);
  if (samples !== undefined && !(Number.isInteger(samples) && samples > 0)) {
    throw new Error('--samples needs a positive integer');
  }

  // Re-executes this process under a Vulkan driver when none is selected (does not return in that case).
  const driver = ensureVulkanDriverEnv(driverArg);
  const gpu = await createNodeGpuContext({ dawnPolling: pollingArg });
  const a = gpu.adapterInfo;
  const cpuAdapter = isCpuAdapter(a);
  console.log(`adapter: ${describeAdapter(a)}`);
  console.log(
    `driver: ${driver}${process.env.VK_ICD_FILENAMES ? ` (VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES})` : ''}` +
      `, ${cpuAdapter ? 'CPU adapter' : 'GPU'}, f16 ${gpu.f16}, subgroups ${gpu.subgroups}` +
      `, timer ${gpu.device.features.has('timestamp-query') ? 'timestamp-query' : 'wall clock'}` +
      `, Dawn's wait ${dawnPollingSleeps() ? 'sleeps' : 'spins'}`,
  );

  let copy: Promise<number> | undefined;
  const bench: BenchContext = {
    gpu,
    driver,
    cpuAdapter,
    large: values.large ?? false,
    samples: samples ?? (cpuAdapter ? 5 : 15),
    time: (encode, opts) => timeGpu(gpu, encode, { samples: bench.samples, ...opts }),
    copyBandwidth: () => {
      copy ??= measureCopy(gpu, bench, copyBytes(bench)).then(([, gbs]) => gbs);
      return copy;
    },
    log: (m) => process.stderr.write(`  .. ${m}\n`),
    summary: {},
  };

  const selected = positionals.length
    ? sections.filter((s) => positionals.includes(s.name))
    : sections.filter((s) => !s.explicitOnly);
  const results: Record<string, BenchRow[]> = {};
  for (const s of selected) {
    console.log(`\n## ${s.name}: ${s.description}`);
    const started = performance.now();
    const rows = await s.run(bench);
    results[s.name] = rows;
    console.log(formatTable(rows));
    console.log(`  (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }

  const summary = await summarize(bench, describeAdapter(a), copy, 'prefill' in results);
  console.log(`\nsummary: ${JSON.stringify(summary, null, 2)}`);

  if (values.json) {
    mkdirSync(dirname(values.json), { recursive: true });
    const report = {
      summary,
      date: new Date().toISOString(),
      adapter: a,
      driver,
      cpuAdapter,
      dawnPolling: dawnPollingSleeps() ? 'sleep' : 'spin',
      large: bench.large,
      samples: bench.samples,
      copyGBs: copy ? await copy : undefined,
      sections: results,
    };
    writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\nwrote ${values.json}`);
  }
}
