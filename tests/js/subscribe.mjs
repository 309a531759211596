// Subscribes to walletUpdated with graphql-ws, as a mobile app would, and prints
// the first update as JSON on stdout. Usage: node subscribe.mjs <ws url> <token>
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token] = process.argv.slice(2);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
  retryAttempts: 0,
});

const query = `subscription WalletUpdated {
  walletUpdated { wallet { id balance pendingBalance } entry { id kind amount balanceAfter } }
}`;

const timer = setTimeout(() => {
  console.error("no update within 10 s");
  process.exit(2);
}, 10000);

client.subscribe(
  { query },
  {
    next: (result) => {
      console.log(JSON.stringify(result));
      clearTimeout(timer);
      client.dispose().then(() => process.exit(0));
    },
    error: (err) => {
      console.error("error", JSON.stringify(err, Object.getOwnPropertyNames(err)));
      process.exit(1);
    },
    complete: () => {},
  },
);
// Tell the test runner we are subscribed.
client.on("connected", () => console.error("connected"));
