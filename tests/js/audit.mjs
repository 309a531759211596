// The GraphQL-over-HTTP conformance audit of graphql-http, run against a live server.
// Prints [{id, name, status, reason}] as JSON on stdout. Usage: node audit.mjs <http url>
import { auditServer } from "graphql-http";

const [url] = process.argv.slice(2);
const results = await auditServer({ url });
const out = [];
for (const r of results) {
  const entry = { id: r.id, name: r.name, status: r.status };
  // A failure's reason may hold a Response whose body is read lazily.
  if (r.status !== "ok") entry.reason = r.reason;
  if (r.status !== "ok" && r.response) {
    entry.responseStatus = r.response.status;
    entry.responseBody = await r.response.text().catch(() => "");
  }
  out.push(entry);
}
console.log(JSON.stringify(out));
