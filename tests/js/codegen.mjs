// graphql-codegen's client preset with persistedDocuments, as an app's build runs it, over
// the project's schema and the given .graphql documents: writes <out>/persisted-documents.json
// and the typed client code beside it (ids "sha256:<hex>", the preset's default since v6;
// v5's default was SHA-1, which the server refuses). The preset is driven through @graphql-codegen/core, as the codegen CLI
// drives it, without the CLI's ~200 further packages (config and URL loaders, prompts, watchers).
// Usage: node codegen.mjs <schema.graphql> <out dir> <documents.graphql>...
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { codegen } from "@graphql-codegen/core";
import { preset } from "@graphql-codegen/client-preset";
import { createNoopProfiler } from "@graphql-codegen/plugin-helpers";
import { buildASTSchema, parse } from "graphql";

const [schemaPath, out, ...documentPaths] = process.argv.slice(2);
const schema = parse(await readFile(schemaPath, "utf8"));
const documents = await Promise.all(
  documentPaths.map(async (location) => {
    const rawSDL = await readFile(location, "utf8");
    return { location, rawSDL, document: parse(rawSDL) };
  }),
);
const outputs = await preset.buildGeneratesSection({
  baseOutputDir: `${out}/`,
  presetConfig: { persistedDocuments: true, fragmentMasking: false },
  plugins: [],
  schema,
  schemaAst: buildASTSchema(schema),
  documents,
  config: {},
  pluginMap: {},
  pluginContext: {},
  profiler: createNoopProfiler(),
  documentTransforms: [],
});
// Together: the persisted-documents output waits for the typed documents' hashes.
await Promise.all(
  outputs.map(async (output) => {
    const content = await codegen({ ...output, profiler: createNoopProfiler() });
    await mkdir(dirname(output.filename), { recursive: true });
    await writeFile(output.filename, content);
  }),
);
