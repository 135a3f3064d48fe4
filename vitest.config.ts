import { defineConfig } from 'vitest/config';

// Three layers, all run by `npm test` (scripts/test.sh):
//   unit: plain logic in Node;
//   gpu:  kernels and the runtime on a real WebGPU adapter (Dawn over Vulkan); run once per driver;
//   e2e:  the built extension in Chromium.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts', 'tests/unit/**/*.test.tsx'],
          environment: 'node',
          // A hang guard, not a speed target: the 1M-character tests take ~1 s alone but passed 5 s on a loaded 2-core
          // machine running the unit files in parallel.
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'gpu',
          include: ['tests/gpu/**/*.test.ts'],
          setupFiles: ['tests/gpu/setup.ts'],
          // One Dawn instance per process; files run one after another in a single fork.
          pool: 'forks',
          maxWorkers: 1,
          isolate: false,
          testTimeout: 600_000,
          hookTimeout: 600_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          pool: 'forks',
          maxWorkers: 1,
          testTimeout: 600_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
