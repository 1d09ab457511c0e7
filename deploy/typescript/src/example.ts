// example.ts -- the three flows of the web app against a running worker:
// a payment webhook grants a pack, a tool run spends credits (and is
// retried with the same idempotency key), and the balance page reads the
// ledger.
//
//   CREDITS_REDIS_URL=redis://127.0.0.1:6379 CREDITS_DATABASE_URL=... \
//   CREDITS_PREFIX=credits npm run example
//
// The catalog must hold a pack "starter" (creditsctl pack set starter
// --credits 500).

import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import pg from "pg";
import { CreditsClient, CreditsTimeoutError, readBalance } from "./credits.js";
import { pgConfig } from "./pgconfig.js";

const redis = new Redis(process.env.CREDITS_REDIS_URL ?? "redis://127.0.0.1:6379");
const db = new pg.Pool(pgConfig(process.env.CREDITS_DATABASE_URL));
const credits = new CreditsClient(redis, { prefix: process.env.CREDITS_PREFIX ?? "credits" });

const user = process.env.EXAMPLE_USER ?? `example-${randomUUID().slice(0, 8)}`;
const show = (what: string, x: unknown) => console.log(`${what}:`, JSON.stringify(x));

try {
    // 1. The payment provider calls the webhook: grant the pack. Answer the
    //    provider 2xx only after this resolves (the credits are committed);
    //    on a timeout answer 5xx: the provider retries with the same event
    //    ID, which the worker replays instead of granting twice.
    const eventId = `evt_${randomUUID()}`;
    const purchase = await credits.purchaseFromWebhook({
        eventId, captureId: `cap_${randomUUID()}`, userId: user, packId: "starter",
    });
    show("purchase", purchase);

    // 2. A tool run: spend 40 credits under the run's idempotency key, and
    //    start the tool only when the consume is applied.
    const runKey = `run_${randomUUID()}`;
    const spend = { id: runKey, user, amount: 40, tool: "upscale", ref: "video-42" };
    const first = await credits.consume(spend);
    show("consume", first);
    if (first.status === "rejected" && first.error === "insufficient_credits")
        console.log(`not enough credits: ${first.balance?.total ?? 0} left`);

    //    The request is retried (a double click, a network retry): same key,
    //    same answer, replayed: true, nothing spent twice.
    const again = await credits.consume(spend);
    show("consume again", again);

    //    More than the user has: rejected, with the balance to show.
    try {
        show("too expensive", await credits.consume({ id: `run_${randomUUID()}`, user, amount: 1_000_000 }));
    } catch (e) {
        if (!(e instanceof CreditsTimeoutError)) throw e;
        console.log("still queued; poll credits.getResult(id) later");
    }

    // 3. The balance page reads the ledger in PostgreSQL.
    show("balance", await readBalance(db, user));
} finally {
    await credits.close();
    redis.disconnect();
    await db.end();
}
