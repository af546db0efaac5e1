/** The foreign-reference check, decided once (src/kek/ownership.ts). */
import { describe, expect, it } from '@jest/globals';

import { InvalidInputError, UnknownKeyError } from '../../../src/errors.js';
import { mapError } from '../../../src/server/errors.js';
import {
  ForeignUnwrapRefError,
  ForeignWrapRefError,
  assertUnwrapRef,
  assertWrapRef,
  foreignUnwrapRef,
  type RefOwner,
} from '../../../src/kek/ownership.js';
import type { KekRef } from '../../../src/kek/types.js';

const owner: RefOwner = {
  kind: 'vault',
  description: 'Vault Transit key https://v/v1/transit/keys/kek',
  canUnwrap: (ref) => ref.provider === 'vault' && ref.key === 'kek',
};
const mine: KekRef = { provider: 'vault', key: 'kek', version: '3' };
const foreign: KekRef = { provider: 'aws', key: 'arn:aws:kms:eu-west-1:1:key/x', version: 'm1' };

function caught(fn: () => void): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
}

describe('wrap', () => {
  it('accepts what the owner can unwrap', () => {
    expect(() => assertWrapRef(owner, mine)).not.toThrow();
  });

  it('refuses a foreign ref: ForeignWrapRefError, an InvalidInputError → gRPC INVALID_ARGUMENT', () => {
    const e = caught(() => assertWrapRef(owner, foreign));
    expect(e).toBeInstanceOf(ForeignWrapRefError);
    expect(e).toBeInstanceOf(InvalidInputError);
    expect(mapError(e).code).toBe(3); // INVALID_ARGUMENT
    expect((e as InvalidInputError).retryable).toBe(false);
    expect(e.message).toContain(
      'vault wrap: asked to wrap with aws:arn:aws:kms:eu-west-1:1:key/x version m1',
    );
    expect(e.message).toContain(owner.description);
  });

  it('`owns` overrides canUnwrap; `why` explains', () => {
    expect(() => assertWrapRef(owner, foreign, { owns: true })).not.toThrow();
    const e = caught(() => assertWrapRef(owner, mine, { owns: false, why: 'resolved with another context' }));
    expect(e).toBeInstanceOf(ForeignWrapRefError);
    expect(e.message).toContain('(resolved with another context)');
  });
});

describe('unwrap', () => {
  it('accepts what the owner can unwrap', () => {
    expect(() => assertUnwrapRef(owner, mine)).not.toThrow();
  });

  it('refuses a foreign ref: ForeignUnwrapRefError, an UnknownKeyError → gRPC NOT_FOUND, like the envelope', () => {
    const e = caught(() => assertUnwrapRef(owner, foreign));
    expect(e).toBeInstanceOf(ForeignUnwrapRefError);
    expect(e).toBeInstanceOf(UnknownKeyError);
    expect(mapError(e).code).toBe(5); // NOT_FOUND
    expect(e.message).toBe(
      `vault unwrap: aws:arn:aws:kms:eu-west-1:1:key/x version m1 is not this provider's key (${owner.description}); add that key as the provider or under decryptOnly`,
    );
    expect(caught(() => assertUnwrapRef(owner, foreign, 'set x.decryptKeys')).message).toMatch(
      /; set x.decryptKeys$/,
    );
    expect(foreignUnwrapRef(owner, foreign)).toBeInstanceOf(ForeignUnwrapRefError);
  });

  it('clips very long refs (they come from stored data)', () => {
    const e = caught(() =>
      assertUnwrapRef(owner, { provider: 'vault', key: 'k'.repeat(5000), version: '1' }),
    );
    expect(e.message.length).toBeLessThan(600);
  });
});
