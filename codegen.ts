// Typed documents for the GraphQL tests: every operation under test/graphql/ is checked against
// the schema the code builds and gets result and variable types.
import type { CodegenConfig } from '@graphql-codegen/cli';
import { printSchema } from 'graphql';
import { schema } from './src/graphql/schema.ts';

const config: CodegenConfig = {
  schema: printSchema(schema),
  documents: ['test/graphql/**/*.graphql'],
  ignoreNoDocuments: false,
  emitLegacyCommonJSImports: false,
  generates: {
    'test/generated/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: {
          UUID: 'string',
          DateTime: 'string',
          BigInt: { input: 'bigint | number | string', output: 'number | string' },
          JSONObject: 'Record<string, unknown>',
        },
      },
    },
  },
};

export default config;
