// server.ts -- runs the example backend (app.ts) with two made-up tools.
//
//   CREDITS_REDIS_URL=redis://127.0.0.1:6379 \
//   CREDITS_DATABASE_URI=postgresql://user@127.0.0.1:5432/db \
//   CREDITS_PREFIX=credits PORT=8080 npm run example [-- --events]
//
// With --events it also runs the events subscriber (credits-events.ts):
// it creates the app's two tables in that database if they are missing,
// joins the consumer group "webapp", keeps the low-credits banner that the
// balance route shows and queues the expiry emails in app_email_outbox.
// SIGINT or SIGTERM stops it all: the event in hand is finished first.

import { drizzle } from "drizzle-orm/node-postgres";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { CreditsClient } from "../src/index.js";
import { createApp } from "./app.js";
import { CREDITS_EVENTS_TABLES, startCreditsEvents } from "./credits-events.js";

const args = process.argv.slice(2);
if (args.some((a) => a !== "--events")) {
    console.error("usage: server.js [--events]");
    process.exit(2);
}
const events = args.includes("--events");
const redis = process.env.CREDITS_REDIS_URL ?? "redis://127.0.0.1:6379";
const database = process.env.CREDITS_DATABASE_URI;
if (!database) {
    console.error("server: set CREDITS_DATABASE_URI to the credits database, a postgresql:// URI");
    process.exit(2);
}
const port = Number(process.env.PORT ?? 8080);
const credits = new CreditsClient({ redis, prefix: process.env.CREDITS_PREFIX ?? "credits" });
const pool = new pg.Pool({ connectionString: database });
const stop = new AbortController();

if (events) {
    await pool.query(CREDITS_EVENTS_TABLES);
    const sub = await startCreditsEvents(credits, pool, stop.signal);
    console.log(`events subscriber: group ${sub.group}, consumer ${sub.consumer}`);
}

const server = createApp({
    credits,
    db: drizzle(pool),
    ...(events ? { appDb: pool } : {}),
    tools: {
        // An upscale costs 40 credits; a render up to 300, charged by the seconds it really took.
        upscale: { price: 40, maxSeconds: 60, run: async () => ({ cost: 40, output: { done: true } }) },
        render: { price: 300, maxSeconds: 900, run: async () => ({ cost: 120 + Math.floor(Math.random() * 180), output: { done: true } }) },
    },
});
server.listen(port, "127.0.0.1", () =>
    console.log(`example backend on http://127.0.0.1:${(server.address() as AddressInfo).port}`));

for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.on(signal, () => {
        server.close();
        stop.abort();
        void credits.close().then(() => pool.end());
    });
