// graphql-codegen for the OMS gateway: typed documents for every operation in operations/.
// npm i -D @graphql-codegen/cli @graphql-codegen/client-preset && npx graphql-codegen
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: '../schema.graphql',
  documents: ['operations/**/*.graphql'],
  generates: {
    './src/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        strictScalars: true,
        scalars: {
          // Exact decimal strings such as "599.99": parse with a decimal library, never Number().
          Decimal: 'string',
          // ISO 8601 text exactly as the OMS wrote it: `new Date(value)` when you need one.
          DateTime: 'string',
          // Free-form JSON (attributes, translations, configs).
          JSON: 'unknown',
        },
      },
    },
  },
};

export default config;
