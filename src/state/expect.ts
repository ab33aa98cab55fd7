/**
 * Conditions of a conditional transition, with Cinder's `conditional_update` semantics:
 *
 * - a scalar means equal; `null` matches a missing or null value;
 * - a list means one of; a `null` in the list also matches missing;
 * - `not(x)` / `not([…])` negates, and so also matches missing — unless `null` is itself among
 *   the excluded values (Cinder's `auto_none`).
 *
 * Pure: no I/O. Both store adapters evaluate conditions with {@link firstFailure}.
 */

/** A value a condition compares with. */
export type Scalar = string | number | boolean | null;

const NOT = Symbol('not');

/** A negated condition; build it with {@link not}. */
export interface NotCondition {
  readonly [NOT]: true;
  readonly values: readonly Scalar[];
}

/** One condition on one field. */
export type Condition = Scalar | readonly Scalar[] | NotCondition;

/** Conditions by field name (all must hold). */
export type Expect = Readonly<Record<string, Condition | undefined>>;

/** Which condition failed, and what the field held instead. */
export interface FailedCondition {
  /** The field, e.g. `status`; `exists` / `op.exists` for presence; `op.<field>` on the op record. */
  readonly field: string;
  /** The condition in plain data: a value, a list, or `{ not: [...] }`. */
  readonly expected: unknown;
  /** What the field held (null when missing). */
  readonly actual: unknown;
}

/** Negates a condition: `not('attached')`, `not(['a', 'b'])`, `not(null)`. */
export function not(value: Scalar | readonly Scalar[]): NotCondition {
  return { [NOT]: true, values: Array.isArray(value) ? [...(value as readonly Scalar[])] : [value as Scalar] };
}

/** True for a condition built with {@link not}. */
export function isNot(condition: Condition): condition is NotCondition {
  return typeof condition === 'object' && condition !== null && NOT in condition;
}

function equalsScalar(actual: unknown, expected: Scalar): boolean {
  if (expected === null) return actual === null || actual === undefined;
  return actual === expected;
}

/** True when `actual` (undefined: missing) satisfies `condition`. */
export function matches(actual: unknown, condition: Condition): boolean {
  if (isNot(condition)) return !condition.values.some((v) => equalsScalar(actual, v));
  if (Array.isArray(condition)) return (condition as readonly Scalar[]).some((v) => equalsScalar(actual, v));
  return equalsScalar(actual, condition as Scalar);
}

/** The condition as plain data, for results, logs and JSON. */
export function describeExpected(condition: Condition): unknown {
  if (isNot(condition)) return { not: condition.values.length === 1 ? condition.values[0] : [...condition.values] };
  return Array.isArray(condition) ? [...(condition as readonly Scalar[])] : condition;
}

/**
 * The first condition of `expect` that `view` does not satisfy, in the order the conditions
 * were written; undefined when all hold. `prefix` names fields of a nested record (`op.`).
 */
export function firstFailure(view: Readonly<Record<string, unknown>>, expect: Expect, prefix = ''): FailedCondition | undefined {
  for (const [field, condition] of Object.entries(expect)) {
    if (condition === undefined) continue;
    const actual = view[field];
    if (!matches(actual, condition)) {
      return { field: `${prefix}${field}`, expected: describeExpected(condition), actual: actual ?? null };
    }
  }
  return undefined;
}

/**
 * A condition in words for messages: `available or error`, `not attached`, `null`.
 * Lists read `a, b or c`, as people write them.
 */
export function conditionInWords(expected: unknown): string {
  const words = (values: readonly unknown[]): string => {
    const texts = values.map(scalarText);
    return texts.length <= 1 ? (texts[0] ?? 'nothing') : `${texts.slice(0, -1).join(', ')} or ${texts[texts.length - 1]}`;
  };
  if (Array.isArray(expected)) return words(expected as unknown[]);
  if (typeof expected === 'object' && expected !== null && 'not' in expected) {
    const excluded = expected.not;
    return `not ${Array.isArray(excluded) ? words(excluded as unknown[]) : words([excluded])}`;
  }
  return scalarText(expected);
}

function scalarText(value: unknown): string {
  if (value === null || value === undefined) return 'none';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return value.toString();
  return JSON.stringify(value);
}
