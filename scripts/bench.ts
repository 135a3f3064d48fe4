// GPU benchmarks over the same kernels and runtime the extension uses.
//   npm run bench [-- SECTION...] [--json FILE] [--large] [--samples N] [--driver lavapipe|swiftshader|system] [--list]
// Without SECTION, runs every section in scripts/bench/sections/ (see scripts/bench/sections.ts to add one).
// On a machine without a GPU it re-runs itself under a software Vulkan driver (lavapipe first); sizes stay modest
// on such CPU adapters unless --large.
import { runBench } from './bench/run';
import { loadSections } from './bench/sections';

loadSections()
  .then((sections) => runBench(process.argv.slice(2), sections))
  .then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    },
  );
