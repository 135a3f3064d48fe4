// Node-only: makes Dawn's wait for GPU work sleep instead of spin.
//
// While any promise of Dawn's Node binding is pending (onSubmittedWorkDone, mapAsync, pipeline creation), the binding
// polls for finished work by calling setImmediate back to back (AsyncRunner::ScheduleProcessEvents): the main thread
// holds a whole CPU core for the entire wait. On a CPU adapter (lavapipe, SwiftShader) that core is one the driver's
// compute threads need: on a 2-core machine a q4 matvec ran 1.5x faster, a buffer copy 1.3x, once the poll slept.
// Here Dawn's polls go through a 0 ms timer instead (Node runs it after about 1 ms): each wait ends at most ~1 ms
// after the work does, and the core stays free. Only Dawn's polls: the binding passes setImmediate a native function
// without a name; everything else keeps the real setImmediate.

type ImmediateFn = typeof globalThis.setImmediate;

let realSetImmediate: ImmediateFn | undefined;

/** Whether `fn` looks like the poll callback Dawn's binding hands to setImmediate (a nameless native function). */
export function isDawnPoll(fn: unknown): boolean {
  return typeof fn === 'function' && fn.name === '' && Function.prototype.toString.call(fn).includes('[native code]');
}

/** From now on Dawn's polls wait on a timer. Idempotent; `restoreDawnPolling` undoes it. */
export function sleepBetweenDawnPolls(): void {
  if (realSetImmediate) return;
  const real = globalThis.setImmediate;
  realSetImmediate = real;
  const patched = ((callback: (...args: unknown[]) => void, ...args: unknown[]) => {
    if (isDawnPoll(callback)) return setTimeout(callback, 0, ...args) as unknown as NodeJS.Immediate;
    return real(callback, ...args);
  }) as ImmediateFn;
  // setImmediate.__promisify__ and friends stay reachable.
  globalThis.setImmediate = Object.assign(patched, real);
}

export function restoreDawnPolling(): void {
  if (!realSetImmediate) return;
  globalThis.setImmediate = realSetImmediate;
  realSetImmediate = undefined;
}

export function dawnPollingSleeps(): boolean {
  return realSetImmediate !== undefined;
}
