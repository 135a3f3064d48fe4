// Building blocks for the schemas of messages that cross the extension's process boundary, on valibot. Each block
// carries a plain-words expectation as its valibot message ("an integer >= 0"), so `parseWith` can turn the first
// issue into a SchemaError naming the path, what was expected and what came ("ask.tabId: expected an integer >= 0,
// got -1"), and a malformed message becomes a typed error.
import * as v from 'valibot';

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

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value === 'object' ? 'an object' : typeof value;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What a schema built here expects, in words: the message of a required key that is missing. */
const expectations = new WeakMap<object, string>();
function described<S extends v.GenericSchema>(schema: S, expected: string): S {
  expectations.set(schema, expected);
  return schema;
}

export const str = (opts: { min?: number; max?: number } = {}) => {
  const min = opts.min ?? 0;
  const max = opts.max ?? Number.POSITIVE_INFINITY;
  const expected = `a string of ${max === Number.POSITIVE_INFINITY ? `at least ${min}` : `${min}..${max}`} characters`;
  return described(
    v.pipe(v.string(expected), v.minLength(min, expected), v.maxLength(max, expected)) as v.GenericSchema<
      unknown,
      string
    >,
    expected,
  );
};

export const num = (opts: { min?: number; max?: number; integer?: boolean } = {}) => {
  const min = opts.min ?? Number.NEGATIVE_INFINITY;
  const max = opts.max ?? Number.POSITIVE_INFINITY;
  const bounds = [Number.isFinite(min) ? `>= ${min}` : '', Number.isFinite(max) ? `<= ${max}` : '']
    .filter(Boolean)
    .join(' and ');
  const kind = opts.integer ? 'an integer' : 'a finite number';
  const expected = bounds ? `${kind} ${bounds}` : kind;
  const checks = [
    v.finite<number, string>(expected),
    ...(opts.integer ? [v.integer<number, string>(expected)] : []),
    v.minValue<number, number, string>(min, expected),
    v.maxValue<number, number, string>(max, expected),
  ];
  return described(v.pipe(v.number(expected), ...checks) as v.GenericSchema<unknown, number>, expected);
};

export const bool = described(v.boolean('a boolean'), 'a boolean');

export const literal = <const T extends readonly [string, ...string[]]>(...values: T) => {
  const expected = `one of ${values.join(', ')}`;
  return described(v.picklist(values, expected), expected);
};

export const optional = <S extends v.GenericSchema>(schema: S) => v.optional(schema);
export const nullable = <S extends v.GenericSchema>(schema: S) => v.nullable(schema);

/** An array of at most `maxLength` items; the length is checked before any item is. */
export const array = <S extends v.GenericSchema>(item: S, maxLength = 10_000) => {
  const expected = `an array of at most ${maxLength}`;
  return described(
    v.pipe(
      v.custom<unknown[]>((x) => Array.isArray(x) && x.length <= maxLength, expected),
      v.array(item, expected),
    ),
    expected,
  );
};

/** An object with exactly these keys checked; unknown keys are dropped (never forwarded); arrays are refused. */
export const obj = <E extends v.ObjectEntries>(entries: E) => {
  const objectSchema = v.object(entries, (issue) => {
    // valibot reports a missing required key on the object, with the key as the last path item: say what that key
    // expects instead of "an object".
    const last = issue.path?.at(-1);
    if (last?.origin === 'key' && typeof last.key === 'string' && last.key in entries)
      return expectations.get(entries[last.key]) ?? 'a value';
    return 'an object';
  });
  return described(v.pipe(v.custom<Record<string, unknown>>(isRecord, 'an object'), objectSchema), 'an object');
};

const countBudget = obj({ count: num({ min: 1, integer: true }) });
const fractionBudget = obj({ fraction: num({ min: 0.001, max: 1 }) });
/** Either `{count}` (positions) or `{fraction}` (of the context), as in the engine's TopKBudget; the key present
 * picks the branch, so an error names the field that is wrong rather than "no branch matched". */
export const topKBudget = described(
  v.pipe(
    v.custom<Record<string, unknown>>((x) => isRecord(x) && ('count' in x || 'fraction' in x), '{count} or {fraction}'),
    v.lazy((x) => (isRecord(x) && 'count' in x ? countBudget : fractionBudget)),
  ),
  '{count} or {fraction}',
);

function pathOf(prefix: string, issue: v.BaseIssue<unknown>): string {
  let path = prefix;
  for (const item of issue.path ?? []) {
    const key = (item as { key: unknown }).key;
    path += typeof key === 'number' ? `[${key}]` : `.${String(key)}`;
  }
  return path;
}

/** Runs `schema` on `value` and returns its output, or throws a SchemaError for the first issue, its path starting
 * at `prefix`. Stops at the first issue: a hostile message costs one walk at most. */
export function parseWith<S extends v.GenericSchema>(schema: S, value: unknown, prefix: string): v.InferOutput<S> {
  const result = v.safeParse(schema, value, { abortEarly: true });
  if (result.success) return result.output;
  const issue = result.issues[0];
  throw new SchemaError(pathOf(prefix, issue), issue.message, issue.input);
}

/** True when the inferred type of a schema and the hand-written type agree both ways and have the same keys (an
 * optional key on one side only would still be assignable both ways). Used in type-level checks. */
export type Same<A, B> = [A] extends [B]
  ? [B] extends [A]
    ? [keyof A] extends [keyof B]
      ? [keyof B] extends [keyof A]
        ? true
        : false
      : false
    : false
  : false;
