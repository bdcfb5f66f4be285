// The UUID scalar as answers carry it: ids as PostgreSQL prints them pass without a pattern run,
// anything else goes through graphql-scalars' own check.
import { isScalarType } from 'graphql';
import { describe, expect, it } from 'vitest';
import { schema } from '../../src/graphql/schema.ts';

const uuid = schema.getType('UUID');
if (!isScalarType(uuid)) throw new Error('UUID is not a scalar');

describe('the UUID scalar', () => {
  it('answers ids in the form PostgreSQL prints them, and in upper case', () => {
    expect(uuid.serialize('0192f3a4-5b6c-7d8e-9f01-23456789abcd')).toBe('0192f3a4-5b6c-7d8e-9f01-23456789abcd');
    expect(uuid.serialize('0192F3A4-5B6C-7D8E-9F01-23456789ABCD')).toBe('0192F3A4-5B6C-7D8E-9F01-23456789ABCD');
  });

  it('refuses to answer what is not a UUID', () => {
    expect(() => uuid.serialize('not-a-uuid')).toThrow();
    expect(() => uuid.serialize('0192f3a45b6c7d8e9f0123456789abcd0000')).toThrow();
    expect(() => uuid.serialize(42)).toThrow();
  });

  it('still checks what callers send', () => {
    expect(() => uuid.parseValue('0192f3a4-5b6c-7d8e-9f01-23456789abcx')).toThrow();
  });
});
