// Apollo Client with its persisted-query link, as a mobile app ships it, against a live
// server. Every request body the link sends is logged, so the test sees what went over
// the wire. Prints one JSON object on stdout.
//   node apollo.mjs auto <url> <token>: the same query twice (automatic persisted queries)
//   node apollo.mjs trusted <url> <token> <manifest.json>: ids from a manifest, by operation
//     name (as @apollo/persisted-query-lists does); Mine is not in it
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { getOperationAST, print } from "graphql";

const [mode, url, token, manifestPath] = process.argv.slice(2);
const sha256 = (text) => createHash("sha256").update(text).digest("hex");

const sent = [];
async function loggingFetch(input, init) {
  const body = init?.body ? JSON.parse(init.body) : {};
  sent.push({
    method: init?.method ?? "GET",
    query: typeof body.query === "string",
    hash: body.extensions?.persistedQuery?.sha256Hash ?? null,
  });
  return fetch(input, init);
}

const operationName = (document) => getOperationAST(document)?.name?.value;

let persisted;
if (mode === "trusted") {
  // The manifest is {"sha256:<hex>": "<document>"}: the link sends the id the build wrote.
  const ids = {};
  for (const [id, text] of Object.entries(JSON.parse(readFileSync(manifestPath, "utf8")))) {
    ids[operationName(gql(text))] = id.replace(/^sha256:/, "");
  }
  persisted = new PersistedQueryLink({
    generateHash: (document) => ids[operationName(document)] ?? sha256(print(document)),
  });
} else {
  persisted = new PersistedQueryLink({ sha256 });
}

const client = new ApolloClient({
  cache: new InMemoryCache(),
  link: persisted.concat(
    new HttpLink({ uri: url, fetch: loggingFetch, headers: { authorization: `Bearer ${token}` } }),
  ),
});

async function run(query) {
  try {
    const { data } = await client.query({ query, fetchPolicy: "no-cache" });
    return { data };
  } catch (error) {
    return { error: error.name, codes: (error.errors ?? []).map((e) => e.extensions?.code) };
  }
}

const ME = gql`query Me { me { id displayName } }`;
const MINE = gql`query Mine { me { email } }`;
const out = { sent };
if (mode === "auto") {
  out.first = await run(ME);
  out.requestsForFirst = sent.length;
  out.second = await run(ME);
} else {
  out.me = await run(ME);
  out.mine = await run(MINE);
}
console.log(JSON.stringify(out));
