// The background service worker owns the engine. Side effects stay inside defineBackground: WXT imports this file in
// Node at build time.
export default defineBackground(() => {
  console.log('Recycled Reader background started');
});
