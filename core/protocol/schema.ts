// A tiny runtime validator for messages that cross the extension's process boundary. Each check returns the value it
// accepted or throws a SchemaError naming the path that failed, so a malformed message becomes a typed error.

export class SchemaError extends Error {
  constructor(
    readonly path: string,
    readonly expected: string,
    readonly got: unknown,
  ) {
    super(`${path}: expected ${expected}, got ${describe(got)}`);
    this.name = 'SchemaError';
  }
}

export type Check<T> = (value: unknown, path: string) => T;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v === 'object' ? 'an object' : typeof v;
}

export const str =
  (opts: { min?: number; max?: number } = {}): Check<string> =>
  (v, path) => {
    const min = opts.min ?? 0;
    const max = opts.max ?? Number.POSITIVE_INFINITY;
    if (typeof v !== 'string' || v.length < min || v.length > max) {
      const range = max === Number.POSITIVE_INFINITY ? `at least ${min}` : `${min}..${max}`;
      throw new SchemaError(path, `a string of ${range} characters`, v);
    }
    return v;
  };

export const num =
  (opts: { min?: number; max?: number; integer?: boolean } = {}): Check<number> =>
  (v, path) => {
    const min = opts.min ?? Number.NEGATIVE_INFINITY;
    const max = opts.max ?? Number.POSITIVE_INFINITY;
    const ok =
      typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max && (!opts.integer || Number.isInteger(v));
    if (!ok) {
      const kind = opts.integer ? 'an integer' : 'a finite number';
      const bounds = [Number.isFinite(min) ? `>= ${min}` : '', Number.isFinite(max) ? `<= ${max}` : '']
        .filter(Boolean)
        .join(' and ');
      throw new SchemaError(path, bounds ? `${kind} ${bounds}` : kind, v);
    }
    return v as number;
  };

export const bool: Check<boolean> = (v, path) => {
  if (typeof v !== 'boolean') throw new SchemaError(path, 'a boolean', v);
  return v;
};

export const literal =
  <T extends string>(...values: T[]): Check<T> =>
  (v, path) => {
    if (typeof v !== 'string' || !values.includes(v as T))
      throw new SchemaError(path, `one of ${values.join(', ')}`, v);
    return v as T;
  };

export const optional =
  <T>(check: Check<T>): Check<T | undefined> =>
  (v, path) =>
    v === undefined ? undefined : check(v, path);

export const nullable =
  <T>(check: Check<T>): Check<T | null> =>
  (v, path) =>
    v === null ? null : check(v, path);

export const array =
  <T>(item: Check<T>, maxLength = 10_000): Check<T[]> =>
  (v, path) => {
    if (!Array.isArray(v) || v.length > maxLength) throw new SchemaError(path, `an array of at most ${maxLength}`, v);
    return v.map((x, i) => item(x, `${path}[${i}]`));
  };

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

type Shape = Record<string, Check<unknown>>;
type FromShape<S extends Shape> = { [K in keyof S]: ReturnType<S[K]> };

/** An object with exactly these keys checked; unknown keys are dropped (never forwarded). */
export const obj =
  <S extends Shape>(shape: S): Check<FromShape<S>> =>
  (v, path) => {
    if (!isRecord(v)) throw new SchemaError(path, 'an object', v);
    const out: Record<string, unknown> = {};
    for (const [key, check] of Object.entries(shape)) {
      const value = check(v[key], `${path}.${key}`);
      if (value !== undefined) out[key] = value;
    }
    return out as FromShape<S>;
  };

/** Either `{count}` (positions) or `{fraction}` (of the context), as in the engine's TopKBudget. */
export const topKBudget: Check<{ count: number } | { fraction: number }> = (v, path) => {
  if (isRecord(v) && 'count' in v) return { count: num({ min: 1, integer: true })(v.count, `${path}.count`) };
  if (isRecord(v) && 'fraction' in v) return { fraction: num({ min: 0.001, max: 1 })(v.fraction, `${path}.fraction`) };
  throw new SchemaError(path, '{count} or {fraction}', v);
};
