// Long-document logic: chunking, retrieval, coverage, map-reduce planning. Pure TypeScript (no DOM, no browser API).

export * from './bounded.ts';
export * from './chunk.ts';
export * from './citations.ts';
export * from './coverage.ts';
export * from './garbled.ts';
export * from './mapReduce.ts';
export * from './mapReduceRun.ts';
export * from './plan.ts';
export * from './retrieval.ts';
export * from './select.ts';
export * from './suggest.ts';
export * from './text.ts';
