// What a lookup that must fail failed with: an IdmountError (anything else fails the test).
import { expect } from 'vitest';
import { IdmountError } from '../../src/errors.js';

export async function failure(promise: Promise<unknown>): Promise<IdmountError> {
  const err = await promise.then(
    () => new Error('expected the lookup to fail, and it succeeded'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(IdmountError);
  return err as IdmountError;
}
