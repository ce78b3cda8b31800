import type { CodegenConfig } from "@graphql-codegen/cli";

// Types come from the committed public API schema, so the app builds without a
// backend; `scripts/check-codegen` regenerates into a temporary directory and
// fails when the committed output differs.
const out = process.env.CODEGEN_OUT ?? "src/gql/";

const config: CodegenConfig = {
  schema: "../schema/api.graphql",
  documents: ["src/**/*.{ts,tsx}", "!src/gql/**/*"],
  ignoreNoDocuments: false,
  generates: {
    [out]: {
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: "string", Upload: "File" },
        strictScalars: true,
      },
    },
  },
};

export default config;
