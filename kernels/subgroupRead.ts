// Reading one lane's value in every lane of a subgroup, as the CPU-adapter kernels do in their inner loops
// (matvecRows, matmulRows, prefillAttentionRows: a value loaded by one lane, used by all of them).
//
// subgroupBroadcast(value, lane) says exactly that, but lavapipe (Mesa 25.0, LLVM 15) lowers a broadcast from a
// constant lane to an extract and a splat: two or three shuffles per value (vpshufd, vpermq, vpbroadcastd, ...). A
// shuffle whose index the compiler cannot see as a constant -- the lane plus `laneBase`, a uniform the wrapper always
// sets to 0 -- becomes one vpermps per value. The prefill matmul's loop body (8 tokens x 2 rows) fell from 3,409 to
// 2,928 x86 instructions (GALLIVM_DEBUG=asm) with the same results; docs/BENCH.md has the timings.

/** WGSL for `value` as lane `lane` of the subgroup holds it. The kernel defines `laneBase`, a u32 that is 0 at run
 * time and comes from a uniform. */
export function readLane(value: string, lane: number): string {
  return `subgroupShuffle(${value}, laneBase + ${lane}u)`;
}
