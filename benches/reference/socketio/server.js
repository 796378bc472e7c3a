// Reference Socket.IO broadcaster for Switchboard's fan-out benchmark (benches/fanout.rs).
//
// - Clients connect over the WebSocket transport (`/socket.io/?EIO=4&transport=websocket`).
// - `POST /trigger` with a JSON body: `io.emit("message", body)` to every connected client (on every node when
//   REDIS_URL is set: @socket.io/redis-adapter, keys under REDIS_KEY), then answers 200 once the emit returned.
// - `GET /count`: how many clients this node holds.
//
// Environment: PORT (0 = any free port; the chosen one is printed as `listening on 127.0.0.1:PORT`),
// REDIS_URL (optional), REDIS_KEY (adapter key prefix; unique per benchmark run). Loopback only.

"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

async function main() {
  const server = http.createServer((req, res) => {
    if (req.method === "POST" && req.url === "/trigger") {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        let body;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch (e) {
          res.writeHead(400, { "Content-Type": "text/plain" });
          res.end("bad json");
          return;
        }
        io.emit("message", body);
        res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": "2" });
        res.end("ok");
      });
      return;
    }
    if (req.method === "GET" && req.url === "/count") {
      const n = String(io.engine.clientsCount);
      res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": String(Buffer.byteLength(n)) });
      res.end(n);
      return;
    }
    res.writeHead(404, { "Content-Length": "0" });
    res.end();
  });
  server.keepAliveTimeout = 120_000;

  const io = new Server(server, {
    transports: ["websocket"],
    serveClient: false,
    perMessageDeflate: false,
    // Keep connections open for the whole run even when the load generator is busy.
    pingInterval: 25_000,
    pingTimeout: 60_000,
    maxHttpBufferSize: 1e6,
  });

  if (process.env.REDIS_URL) {
    const { createClient } = require("redis");
    const { createAdapter } = require("@socket.io/redis-adapter");
    const pub = createClient({ url: process.env.REDIS_URL });
    const sub = pub.duplicate();
    pub.on("error", (e) => console.error("redis pub:", e.message));
    sub.on("error", (e) => console.error("redis sub:", e.message));
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub, { key: process.env.REDIS_KEY || "switchboard-bench" }));
  }

  const port = Number(process.env.PORT || 0);
  server.listen(port, "127.0.0.1", () => {
    console.log(`listening on 127.0.0.1:${server.address().port}`);
  });
  const stop = () => process.exit(0);
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
