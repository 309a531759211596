// graphql-codegen's client preset with persistedDocuments (SHA-256 ids, which the server
// requires; the preset's default is SHA-1), as an app's build runs it, over
// the project's schema and the given documents. Writes <out>/persisted-documents.json
// (with the typed client code beside it). Usage: node codegen.mjs <out dir> <documents>...
import { generate } from "@graphql-codegen/cli";
import { fileURLToPath } from "node:url";

const [out, ...documents] = process.argv.slice(2);
await generate(
  {
    schema: fileURLToPath(new URL("../../schema.graphql", import.meta.url)),
    documents,
    silent: true,
    generates: {
      [`${out}/`]: { preset: "client", presetConfig: { persistedDocuments: { hashAlgorithm: "sha256" }, fragmentMasking: false } },
    },
  },
  true,
);
