// Dawn's polls (nameless native callbacks) go through a timer once sleepBetweenDawnPolls runs; every other
// setImmediate caller keeps the real one.
import { afterEach, describe, expect, test, vi } from 'vitest';
import { dawnPollingSleeps, isDawnPoll, restoreDawnPolling, sleepBetweenDawnPolls } from '../../core/node/dawnPolling';

/** A native function without a name, like the one Dawn's binding creates per poll. */
function nativeNameless(body: () => void): () => void {
  const fn = body.bind(null);
  Object.defineProperty(fn, 'name', { value: '' });
  return fn;
}

afterEach(() => restoreDawnPolling());

describe('Dawn poll throttling', () => {
  test('isDawnPoll: nameless native functions only', () => {
    expect(isDawnPoll(nativeNameless(() => {}))).toBe(true);
    expect(isDawnPoll(() => {})).toBe(false); // JS source
    expect(isDawnPoll((() => {}).bind(null))).toBe(false); // named "bound "
    expect(isDawnPoll(Math.max)).toBe(false); // native, named
    expect(isDawnPoll('function () { [native code] }')).toBe(false);
  });

  test('a Dawn poll goes to a 0 ms timer and still runs; other callbacks go to the real setImmediate', async () => {
    const realImmediate = vi.spyOn(globalThis, 'setImmediate');
    const timeout = vi.spyOn(globalThis, 'setTimeout');
    try {
      sleepBetweenDawnPolls();
      expect(dawnPollingSleeps()).toBe(true);
      const ran: string[] = [];
      await new Promise<void>((resolve) => {
        const poll = nativeNameless(() => {
          ran.push('poll');
          resolve();
        });
        setImmediate(poll);
        expect(timeout).toHaveBeenLastCalledWith(poll, 0);
        expect(realImmediate).not.toHaveBeenCalled();
        const js = () => ran.push('js');
        setImmediate(js);
        expect(realImmediate).toHaveBeenLastCalledWith(js);
      });
      expect(ran).toContain('poll');
    } finally {
      restoreDawnPolling();
      vi.restoreAllMocks();
    }
  });

  test('restore puts the real setImmediate back; sleeping twice patches once', async () => {
    const real = globalThis.setImmediate;
    sleepBetweenDawnPolls();
    const patched = globalThis.setImmediate;
    sleepBetweenDawnPolls();
    expect(globalThis.setImmediate).toBe(patched);
    expect(patched).not.toBe(real);
    restoreDawnPolling();
    expect(globalThis.setImmediate).toBe(real);
    expect(dawnPollingSleeps()).toBe(false);
    const timeout = vi.spyOn(globalThis, 'setTimeout');
    try {
      await new Promise<void>((resolve) => setImmediate(nativeNameless(() => resolve())));
      expect(timeout).not.toHaveBeenCalled();
    } finally {
      vi.restoreAllMocks();
    }
  });
});
