// The founders' layering, checked by `npm run lint:deps` (and the lint step of `npm test`):
//   entrypoints → core → kernels, and the UI reaches the engine only through typed messages
//   (popup / side panel → core/protocol → background → core/engine → kernels).
// The cruise covers core kernels components entrypoints tests scripts (package.json lint:deps); the rules
// constrain product code. Each rule's comment says what it protects. tests/unit/dependencyRules.test.ts proves the rules can fail.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'kernels-bottom-layer',
      comment:
        'kernels/ is the bottom layer: WGSL and its wrappers depend on nothing of the app (no core/, no entrypoints/, ' +
        'components/, tests/, scripts/, no Node built-ins), so the kernels run and are tested on their own.',
      severity: 'error',
      from: { path: '^kernels/' },
      to: { pathNot: ['^kernels/', '^node_modules/'] },
    },
    {
      name: 'core-not-up',
      comment:
        'core/ runs in Node and in the extension alike: it never imports the extension layer (entrypoints/, ' +
        'components/) nor test or script code.',
      severity: 'error',
      from: { path: '^core/' },
      to: { path: '^(entrypoints|components|tests|scripts)/' },
    },
    {
      name: 'core-no-extension-api',
      comment: 'core/ never imports browser-extension APIs (it runs in Node); entrypoints/ wire them in.',
      severity: 'error',
      from: { path: '^core/' },
      to: { path: '^node_modules/(wxt|webextension-polyfill|@wxt-dev)/' },
    },
    {
      name: 'product-not-tests-or-scripts',
      comment: 'Product code (core, kernels, components, entrypoints) never depends on tests/ or scripts/.',
      severity: 'error',
      from: { path: '^(core|kernels|components|entrypoints)/' },
      to: { path: '^(tests|scripts)/' },
    },
    {
      name: 'product-not-testing-helpers',
      comment:
        'core/testing/ holds generators for test fixtures (models, pages); the product never ships them, so ' +
        'nothing outside core/testing/ in the product imports them.',
      severity: 'error',
      from: { path: '^(core|kernels|components|entrypoints)/', pathNot: '^core/testing/' },
      to: { path: '^core/testing/' },
    },
    {
      name: 'node-only-in-node',
      comment:
        'core/node/ is the Node-only side (Dawn device, Vulkan drivers, directory stores): no product module outside ' +
        'it and core/testing/ imports it, so nothing Node-only reaches the extension bundles.',
      severity: 'error',
      from: { path: '^(core|kernels|components|entrypoints)/', pathNot: '^core/(node|testing)/' },
      to: { path: '^core/node/' },
    },
    {
      name: 'no-node-builtins-in-product',
      comment:
        'Product code runs in the browser: Node built-ins (node:fs, node:path, …) only in core/node/ and core/testing/.',
      severity: 'error',
      from: { path: '^(core|kernels|components|entrypoints)/', pathNot: '^core/(node|testing)/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'core-no-folder-cycles',
      comment:
        'No two folders of core/ import each other in a cycle (core/a → core/b → core/a): a type lives with the ' +
        'module that owns it, and the folders stay in one order.',
      severity: 'error',
      scope: 'folder',
      from: { path: '^core/' },
      to: { path: '^core/', circular: true },
    },
    {
      name: 'ui-through-messages',
      comment:
        'The UI (components/, popup, side panel) talks to the engine only through typed messages: from core/ it ' +
        'imports core/protocol/ (message types, client, settings) and core/pdf/ (the popup reads a PDF file the user ' +
        'picks, then sends the text); never kernels/, core/engine, core/host or the other core folders.',
      severity: 'error',
      from: { path: '^(components|entrypoints/(popup|sidepanel))/' },
      to: { path: '^(kernels/|core/)', pathNot: '^core/(protocol|pdf)/' },
    },
    {
      name: 'components-not-entrypoints',
      comment: 'components/ is the UI shared by the popup and the side panel: it never imports an entrypoint.',
      severity: 'error',
      from: { path: '^components/' },
      to: { path: '^entrypoints/' },
    },
    {
      name: 'content-script-small',
      comment:
        'The content script runs inside every page it reads: it imports only the page-text helpers (core/document/) ' +
        'and its message types (core/protocol/), never the engine, the host or kernels.',
      severity: 'error',
      from: { path: '^entrypoints/content/' },
      to: { path: '^(kernels/|core/|components/)', pathNot: '^core/(protocol|document)/' },
    },
    {
      name: 'entrypoints-kernels-only-gpu-context',
      comment:
        'entrypoints/ reach kernels/ only for the GPU device handle (kernels/gpuContext.ts): the background is the ' +
        'composition root that opens the adapter and hands it to core/engine; every kernel is driven by core/engine.',
      severity: 'error',
      from: { path: '^entrypoints/' },
      to: { path: '^kernels/', pathNot: '^kernels/gpuContext\\.ts$' },
    },
    {
      name: 'entrypoints-independent',
      comment:
        'Entrypoints (background, content, popup, side panel) are separate bundles in separate contexts: none ' +
        'imports another; what they share lives in components/ or core/.',
      severity: 'error',
      from: { path: '^entrypoints/([^/]+)/' },
      to: { path: '^entrypoints/', pathNot: '^entrypoints/$1/' },
    },
    {
      name: 'no-circular',
      comment: 'No module imports itself through a chain of imports (product code).',
      severity: 'error',
      from: { path: '^(core|kernels|components|entrypoints)/' },
      to: { circular: true },
    },
    {
      name: 'no-orphans',
      comment:
        'A product module nothing imports and that imports nothing is dead code or a forgotten test target ' +
        '(the cruise includes tests/ and scripts/, so a reference kernel used only by its GPU test counts as used).',
      severity: 'error',
      from: { orphan: true, path: '^(core|kernels|components|entrypoints)/', pathNot: '\\.d\\.ts$' },
      to: {},
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that resolves to nothing is a typo or a missing package.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: '^node_modules' },
    exclude: { path: '^(\\.wxt|\\.output|\\.cache)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // Folder-scope rules (core-no-folder-cycles) need the folder metrics.
    metrics: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.tsx', '.d.ts', '.js', '.mjs', '.cjs', '.json'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
  },
};
