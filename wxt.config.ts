import preact from '@preact/preset-vite';
import { defineConfig } from 'wxt';

// Chrome MV3 first, Firefox second (`wxt build -b firefox`).
export default defineConfig({
  vite: () => ({ plugins: [preact()] }),
  manifest: {
    name: 'Recycled Reader',
    description: 'Ask about long pages and PDFs with a local LLM on your GPU. Nothing you read leaves your machine.',
    permissions: ['storage', 'activeTab', 'scripting', 'sidePanel', 'unlimitedStorage'],
    optional_host_permissions: ['<all_urls>'],
    action: { default_title: 'Recycled Reader' },
  },
});
