// The console's GraphQL operations against the service's schema: a field renamed or removed in
// the API fails here, for the admin actions no browser test clicks as much as for the views.
import { parse, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import * as documents from '../../console/src/documents.ts';
import { schema } from '../../src/graphql/schema.ts';

describe("the console's operations", () => {
  it.each(Object.entries(documents))('%s is valid against the schema', (_name, source) => {
    const document = parse(source);
    expect(validate(schema, document).map((error) => error.message)).toEqual([]);
  });

  it('are each named, once, so that the service logs and metrics tell them apart', () => {
    const names = Object.values(documents).flatMap((source) =>
      parse(source).definitions.flatMap((definition) => (definition.kind === 'OperationDefinition' ? [definition.name?.value] : [])),
    );
    expect(names.every((name) => name?.startsWith('Console'))).toBe(true);
    expect(new Set(names).size).toBe(names.length);
  });
});
