// bench/push's stand-in for FCM as Google serves it: HTTP/2 over TLS (HTTP/1.1 also
// accepted, as for the OAuth token that google-auth fetches with requests). Node's
// http2 server, so that the fake is not what limits the figures: every message is
// accepted. The behaviour the tests need (errors by token) is in tests/fake_fcm.py.
//   node bench/fake_fcm_h2.mjs PORT CERT.pem KEY.pem
import fs from "node:fs";
import http2 from "node:http2";

const [port, cert, key] = process.argv.slice(2);
const ACCESS_TOKEN = "fake-oauth-token";
let ids = 0;

const server = http2.createSecureServer({
  cert: fs.readFileSync(cert),
  key: fs.readFileSync(key),
  allowHTTP1: true,
});
server.on("request", (req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    res.setHeader("content-type", "application/json");
    if (req.method === "POST" && req.url === "/token") {
      res.end(JSON.stringify({ access_token: ACCESS_TOKEN, expires_in: 3600, token_type: "Bearer" }));
      return;
    }
    const send = req.url.match(/^\/v1\/projects\/([^/]+)\/messages:send$/);
    if (req.method !== "POST" || !send) {
      res.statusCode = 404;
      res.end("{}");
      return;
    }
    if (req.headers.authorization !== `Bearer ${ACCESS_TOKEN}`) {
      res.statusCode = 401;
      res.end(JSON.stringify({ error: { code: 401, status: "UNAUTHENTICATED" } }));
      return;
    }
    const { message } = JSON.parse(Buffer.concat(chunks).toString());
    if (!message || !message.token) {
      res.statusCode = 400;
      res.end(JSON.stringify({ error: { code: 400, status: "INVALID_ARGUMENT" } }));
      return;
    }
    ids += 1;
    res.end(JSON.stringify({ name: `projects/${send[1]}/messages/${ids}` }));
  });
});
server.listen(Number(port), "127.0.0.1", () => console.log("listening"));
