import { readFileSync, writeFileSync } from 'node:fs';
import preact from '@preact/preset-vite';
import { defineConfig } from 'wxt';
import { kvCodeFiles, kvCodeVersionOf } from './core/node/kvCodeVersion';

const CATALOG_JSON = 'core/catalog/webllm-models.json';

/**
 * `@mlc-ai/web-llm` does not tree-shake (importing just `prebuiltAppConfig` bundles 6 MB), so the build extracts the
 * supported models' records into a JSON file the extension imports. Rewritten only when the installed WebLLM differs.
 */
async function refreshModelCatalog(): Promise<void> {
  const { prebuiltAppConfig } = await import('@mlc-ai/web-llm');
  const { extractRecords } = await import('./core/catalog/catalog');
  const version = JSON.parse(readFileSync('node_modules/@mlc-ai/web-llm/package.json', 'utf8')).version as string;
  const next = { webllmVersion: version, model_list: extractRecords(prebuiltAppConfig.model_list) };
  const current = readFileSync(CATALOG_JSON, 'utf8');
  if (JSON.stringify(JSON.parse(current)) !== JSON.stringify(next))
    writeFileSync(CATALOG_JSON, `${JSON.stringify(next, null, 2)}\n`);
}

// Chrome MV3 first, Firefox second (`wxt build -b firefox`).
export default defineConfig({
  vite: () => ({
    plugins: [preact()],
    // The snapshot engine version: a hash of the code that computes K/V (core/snapshot/engineVersion.ts).
    define: { __RR_KV_CODE_VERSION__: JSON.stringify(kvCodeVersionOf(kvCodeFiles(process.cwd()))) },
  }),
  hooks: { 'build:before': refreshModelCatalog },
  manifest: ({ browser }) => ({
    name: 'Recycled Reader',
    description: 'Ask about long pages and PDFs with a local LLM on your GPU. Nothing you read leaves your machine.',
    permissions: [
      'storage',
      'activeTab',
      'scripting',
      'unlimitedStorage',
      'contextMenus',
      ...(browser === 'firefox' ? [] : ['sidePanel']),
    ],
    // Defaults that do not clash with the browser's own; users change them at chrome://extensions/shortcuts.
    commands: {
      _execute_action: { suggested_key: { default: 'Alt+Shift+R' }, description: 'Open Recycled Reader' },
      ...(browser === 'firefox'
        ? {}
        : {
            'open-side-panel': {
              suggested_key: { default: 'Alt+Shift+S' },
              description: 'Open the Recycled Reader side panel',
            },
          }),
    },
    optional_host_permissions: ['<all_urls>'],
    // The tokenizer (@mlc-ai/web-tokenizers) is WebAssembly: extension pages and the worker must be allowed to
    // compile it. Nothing else is relaxed.
    content_security_policy:
      browser === 'firefox'
        ? "script-src 'self' 'wasm-unsafe-eval'; object-src 'self'"
        : { extension_pages: "script-src 'self' 'wasm-unsafe-eval'; object-src 'self'" },
    action: { default_title: 'Recycled Reader' },
    ...(browser === 'firefox' ? { browser_specific_settings: { gecko: { id: 'recycled-reader@example.org' } } } : {}),
  }),
});
