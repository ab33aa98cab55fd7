import { describe, expect, it } from 'vitest';
import { type Condition, conditionInWords, describeExpected, firstFailure, matches, not } from '../../../src/state/expect.js';

describe('matches (Cinder conditional_update semantics)', () => {
  const cases: [string, unknown, Condition, boolean][] = [
    ['scalar equal', 'available', 'available', true],
    ['scalar different', 'in-use', 'available', false],
    ['scalar vs missing', undefined, 'available', false],
    ['number equal', 2, 2, true],
    ['number is not its string', 2, '2', false],
    ['boolean', false, false, true],
    ['null matches null', null, null, true],
    ['null matches missing', undefined, null, true],
    ['null does not match a value', 'x', null, false],
    ['list contains', 'error', ['available', 'error'], true],
    ['list does not contain', 'in-use', ['available', 'error'], false],
    ['list without null does not match missing', undefined, ['available'], false],
    ['list with null matches missing', undefined, [null, 'success'], true],
    ['list with null matches a listed value', 'success', [null, 'success'], true],
    ['empty list matches nothing', 'x', [], false],
    ['not scalar excludes it', 'attached', not('attached'), false],
    ['not scalar matches another value', 'detached', not('attached'), true],
    ['not scalar matches missing (auto_none)', undefined, not('attached'), true],
    ['not scalar matches null (auto_none)', null, not('attached'), true],
    ['not list excludes members', 'migrating', not(['migrating', 'starting']), false],
    ['not list matches missing', undefined, not(['migrating', 'starting']), true],
    ['not(null) excludes missing', undefined, not(null), false],
    ['not(null) matches a value', 'x', not(null), true],
    ['not list with null excludes missing', undefined, not(['x', null]), false],
    ['not list with null matches others', 'y', not(['x', null]), true],
  ];
  it.each(cases)('%s', (_name, actual, condition, result) => {
    expect(matches(actual, condition)).toBe(result);
  });
});

describe('firstFailure', () => {
  it('returns the first failing condition in written order, with the actual value', () => {
    const view = { status: 'in-use', attach_status: 'attached', size: 1 };
    expect(firstFailure(view, { size: 1, status: ['available', 'error'], attach_status: not('attached') })).toEqual({
      field: 'status',
      expected: ['available', 'error'],
      actual: 'in-use',
    });
    expect(firstFailure(view, { attach_status: not('attached'), status: 'available' })).toEqual({
      field: 'attach_status',
      expected: { not: 'attached' },
      actual: 'attached',
    });
    expect(firstFailure(view, { size: 1, status: 'in-use' })).toBeUndefined();
  });

  it('reports a missing field as null and prefixes nested records', () => {
    expect(firstFailure({}, { owner: 'me' }, 'op.')).toEqual({ field: 'op.owner', expected: 'me', actual: null });
  });

  it('skips conditions given as undefined', () => {
    expect(firstFailure({ a: 1 }, { a: 1, b: undefined })).toBeUndefined();
  });
});

describe('describing conditions', () => {
  it('turns conditions into plain data and words', () => {
    expect(describeExpected(not(['a', 'b']))).toEqual({ not: ['a', 'b'] });
    expect(describeExpected(not('a'))).toEqual({ not: 'a' });
    expect(conditionInWords(['available', 'error', 'error_extending'])).toBe('available, error or error_extending');
    expect(conditionInWords(['available'])).toBe('available');
    expect(conditionInWords({ not: 'attached' })).toBe('not attached');
    expect(conditionInWords({ not: ['a', null] })).toBe('not a or none');
    expect(conditionInWords(null)).toBe('none');
    expect(conditionInWords(0)).toBe('0');
  });
});
