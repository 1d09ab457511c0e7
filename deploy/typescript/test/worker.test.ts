// worker.test.ts -- contract v1's three job types through the client
// (revision 2's seven are in revision2.test.ts),
// against a running worker (see env.ts), and the shared reader's promises:
// each decision reaches its caller, id_conflict at once, a result published
// before a wait is found, time limits and AbortSignals are kept, and the
// connections stay two.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { encode } from "@msgpack/msgpack";
import { Redis } from "ioredis";
import pg from "pg";
import {
    CreditsAbortError,
    CreditsClient,
    CreditsClosedError,
    CreditsIdConflictError,
    CreditsTimeoutError,
    STREAM_OF,
    type CreditsResult,
    type JobType,
} from "../src/index.js";
import {
    applied, bal, clientList, databaseUri, eventually, needsWorker, prefix, redisUrl, rejected, runToken,
} from "./env.js";
import { denormalize, parseMeaning, readTsv } from "./vectors.js";

describe("contract v1 against the worker", needsWorker, () => {
    const run = runToken();
    const user = `ts-${run}`;
    let redis: Redis;
    let admin: Redis;
    let db: pg.Pool;
    let credits: CreditsClient;
    // The first job may wait for the worker's first read.
    const wait = { timeoutMs: 15000 };

    before(() => {
        redis = new Redis(redisUrl, { connectionName: `ts-test-${run}` });
        admin = new Redis(redisUrl);
        db = new pg.Pool({ connectionString: databaseUri });
        credits = new CreditsClient({ redis, prefix, readerConnectionName: `ts-test-${run}-results` });
    });
    after(async () => {
        await credits.close();
        redis.disconnect();
        admin.disconnect();
        await db.end();
    });

    let purchased: CreditsResult;
    it("purchase: applied, with the pack's credits and expiry", async () => {
        const r = applied(await credits.purchase({ key: `evt-${run}`, user, pack: "starter", paymentRef: `cap-${run}` }, wait));
        purchased = r;
        assert.equal(r.id, `evt-${run}`);
        assert.equal(r.granted, 500);
        assert.equal(r.replayed, false);
        assert.deepEqual(r.balance, bal(500, 0));
        const days90 = 90 * 86_400_000;
        assert.ok(Math.abs(r.expires_at - r.done_at - days90) <= 3_600_000, "expires 90 days after it was applied");
    });

    it("purchase: the same webhook event again is a replay", async () => {
        const r = await credits.purchase({ key: `evt-${run}`, user, pack: "starter", paymentRef: `cap-${run}` }, wait);
        assert.equal(r.status, "applied");
        assert.equal(r.replayed, true);
        assert.equal(r.done_at, purchased.done_at);
    });

    it("purchase: another event for the same payment is duplicate_payment; an unknown pack is unknown_pack", async () => {
        const dup = rejected(await credits.purchase({ key: `evt-${run}-b`, user, pack: "starter", paymentRef: `cap-${run}` }, wait),
            "duplicate_payment");
        assert.equal(dup.balance, undefined);
        rejected(await credits.purchase({ key: `evt-${run}-c`, user, pack: "no-such-pack", paymentRef: `cap-${run}-c` }, wait),
            "unknown_pack");
    });

    it("allocate: the plan's monthly credits under alloc:{user}:{period}; a second run allocates nothing", async () => {
        const r = applied(await credits.allocate({ user, plan: "pro", period: "2026-11" }, wait));
        assert.equal(r.id, `alloc:${user}:2026-11`);
        assert.equal(r.granted, 1000);
        assert.equal(r.forfeited, 0);
        assert.deepEqual(r.balance, bal(500, 1000));
        const again = await credits.allocate({ user, plan: "pro", period: "2026-11" }, wait);
        assert.equal(again.replayed, true);
        rejected(await credits.allocate({ key: `manual-${run}`, user, plan: "pro", period: "2026-11" }, wait),
            "already_allocated");
        rejected(await credits.allocate({ user, plan: "pro", period: "2026-10" }, wait), "stale_period");
        rejected(await credits.allocate({ user: `${user}-np`, plan: "no-such-plan", period: "2026-11" }, wait),
            "unknown_plan");
    });

    let consumed: CreditsResult;
    it("consume: applied, pack credits first; the same key again is a replay that spends nothing", async () => {
        const req = { key: `run-${run}-1`, user, amount: 40, tool: "upscale", ref: "video-42" };
        const r = applied(await credits.consume(req, wait));
        consumed = r;
        assert.equal(r.charged, 40);
        assert.deepEqual(r.balance, bal(460, 1000));
        const again = await credits.consume(req, wait);
        assert.equal(again.replayed, true);
        assert.equal(again.done_at, consumed.done_at);
        const { rows } = await db.query(
            `SELECT count(*)::int AS n, sum(delta)::int AS delta, min(tool) AS tool, min(ref) AS ref
               FROM credits.entries WHERE job_id = $1`, [req.key]);
        assert.deepEqual(rows[0], { n: 1, delta: -40, tool: "upscale", ref: "video-42" });
    });

    it("consume: over the balance is insufficient_credits with the balance; the key replays it forever", async () => {
        const key = `run-${run}-2`;
        const r = rejected(await credits.consume({ key, user: `${user}-poor`, amount: 100 }, wait), "insufficient_credits");
        assert.deepEqual(r.balance, bal(0, 0));
        // The user buys credits; the same key still answers the stored rejection...
        await credits.purchase({ key: `evt-${run}-poor`, user: `${user}-poor`, pack: "starter", paymentRef: `cap-${run}-poor` }, wait);
        const retried = rejected(await credits.consume({ key, user: `${user}-poor`, amount: 100 }, wait), "insufficient_credits");
        assert.equal(retried.replayed, true);
        // ...and the next attempt, under a new key, is applied.
        assert.equal(applied(await credits.consume({ key: `run-${run}-2b`, user: `${user}-poor`, amount: 100 }, wait)).charged, 100);
    });

    it("id_conflict reaches the caller at once, without asking for P:reply", async () => {
        const key = `run-${run}-1`;
        await assert.rejects(credits.consume({ key, user, amount: 41, tool: "upscale", ref: "video-42" }, { timeoutMs: 60000 }),
            (e: unknown) => e instanceof CreditsIdConflictError && e.jobId === key &&
                (e.result as { error?: string }).error === "id_conflict");
        assert.equal(await admin.exists(credits.key(`reply:${key}`)), 0, "the client never asks for a reply list");
        // A conflicting user or type is one too.
        await assert.rejects(credits.consume({ key, user: `${user}-other`, amount: 40 }, wait), CreditsIdConflictError);
        await assert.rejects(credits.purchase({ key, user, pack: "starter", paymentRef: `cap-${run}-x` }, wait),
            CreditsIdConflictError);
    });

    it("getResult reads a stored decision, or null", async () => {
        const r = await credits.getResult(`run-${run}-1`);
        assert.ok(r);
        assert.equal(r.status, "applied");
        assert.equal(await credits.getResult(`never-${run}`), null);
    });

    it("waitForResult finds a decision published before the wait began", async () => {
        const { jobId } = await credits.enqueue("consume", { key: `run-${run}-early`, user, amount: 1 });
        await eventually("the decision", () => credits.getResult(jobId));
        const r = await credits.waitForResult(jobId, { timeoutMs: 1000 });
        assert.equal(r.type === "consume" && r.status === "applied" && r.charged, 1);
    });

    it("waitForResult started before the job is sent gets it from the stream", async () => {
        const jobId = credits.jobId("consume", `run-${run}-late`);
        const waiting = credits.waitForResult(jobId, wait);
        await credits.enqueue("consume", { key: `run-${run}-late`, user, amount: 2 });
        const r = await waiting;
        assert.equal(r.type === "consume" && r.status === "applied" && r.charged, 2);
    });

    it("a timed-out wait rejects with CreditsTimeoutError that says how to find out", async () => {
        await assert.rejects(credits.waitForResult(`never-${run}`, { timeoutMs: 100 }), (e: unknown) =>
            e instanceof CreditsTimeoutError && e.jobId === `never-${run}` && e.timeoutMs === 100 && e.sent &&
            /may still be applied/.test(e.message) && /getResult\("never-/.test(e.message));
    });

    it("an AbortSignal stops a call: aborted before sending, nothing is sent", async () => {
        const key = `run-${run}-aborted`;
        await assert.rejects(credits.consume({ key, user, amount: 1 }, { signal: AbortSignal.abort() }),
            (e: unknown) => e instanceof CreditsAbortError && !e.sent && e.jobId === key);
        // A job sent after it is decided; had the aborted one been sent, it
        // would have been decided first (stream order).
        const later = applied(await credits.consume({ key: `${key}-later`, user, amount: 1 }, wait));
        assert.equal(later.charged, 1);
        assert.equal(await credits.getResult(key), null);
        const { rows } = await db.query("SELECT count(*)::int AS n FROM credits.jobs WHERE job_id = $1", [key]);
        assert.equal(rows[0].n, 0, "the worker never saw the aborted job");
    });

    it("an AbortSignal during a wait rejects with sent: true and the signal's reason", async () => {
        const controller = new AbortController();
        const call = credits.waitForResult(`never-${run}-2`, { signal: controller.signal, timeoutMs: 60000 });
        setTimeout(() => controller.abort(new Error("the user left")), 20);
        await assert.rejects(call, (e: unknown) => e instanceof CreditsAbortError && e.sent &&
            (e.cause as Error).message === "the user left" && /may still be applied/.test(e.message));
    });

    it("concurrent calls with the same key (a double click) spend once", async () => {
        const req = { key: `run-${run}-double`, user, amount: 7 };
        const [a, b] = await Promise.all([credits.consume(req, wait), credits.consume(req, wait)]);
        assert.equal(applied(a).done_at, applied(b).done_at, "one decision");
        const { rows } = await db.query(`SELECT sum(delta)::int AS delta FROM credits.entries WHERE job_id = $1`, [req.key]);
        assert.equal(rows[0].delta, -7);
    });

    it("ID prefixes: each job ID is its stream's prefix and the key", async () => {
        const namespaced = new CreditsClient({ redis, prefix, idPrefixes: { consume: "web:", purchase: "pay:", allocate: "alloc:" } });
        try {
            const p = await namespaced.purchase({ key: `evt-${run}-ns`, user: `${user}-ns`, pack: "starter", paymentRef: `cap-${run}-ns` }, wait);
            assert.equal(p.id, `pay:evt-${run}-ns`);
            const c = await namespaced.consume({ key: `run-${run}-ns`, user: `${user}-ns`, amount: 3 }, wait);
            assert.equal(c.id, `web:run-${run}-ns`);
            const a = await namespaced.allocate({ user: `${user}-ns`, plan: "pro", period: "2026-11" }, wait);
            assert.equal(a.id, `alloc:${user}-ns:2026-11`);
        } finally {
            await namespaced.close();
        }
    });

    it("two connections in all: the command connection and one reader", async () => {
        const calls = Array.from({ length: 50 }, (_, i) =>
            credits.consume({ key: `run-${run}-conn-${i}`, user, amount: 1 }, wait));
        const mine = (await clientList(admin)).filter((c) => c.name?.startsWith(`ts-test-${run}`));
        await Promise.all(calls);
        assert.deepEqual(mine.map((c) => c.name).sort(), [`ts-test-${run}`, `ts-test-${run}-results`]);
    });

    it("close() ends the waits in progress with CreditsClosedError", async () => {
        const closing = new CreditsClient({ redis, prefix });
        const waiting = closing.waitForResult(`never-${run}-3`, { timeoutMs: 60000 });
        await new Promise((resolve) => setTimeout(resolve, 50));
        await closing.close();
        await assert.rejects(waiting, CreditsClosedError);
        assert.equal(redis.status, "ready", "the app's own connection stays open");
    });

    it("every ok job vector, re-encoded under fresh IDs, is accepted by the worker", async () => {
        const jobs = readTsv("jobs.tsv", ["name", "outcome", "hex", "meaning"]).filter((j) => j.outcome === "ok");
        const ids: string[] = [];
        for (const v of jobs) {
            const job = denormalize(parseMeaning(v.meaning ?? "")) as Record<string, unknown>;
            job.id = `vec-${run}-${v.name}`;
            job.user = `vec-${run}`;
            if (job.type === "purchase") job.payment_ref = `vec-${run}-${v.name}`;
            // Each on the stream of its type (revision 2's types share the three streams).
            await admin.xadd(credits.key(`jobs:${STREAM_OF[job.type as JobType]}`), "*", "job", Buffer.from(encode(job)));
            ids.push(job.id as string);
        }
        for (const id of ids) {
            const r = await credits.waitForResult(id, wait);
            const error = (r as { error?: string }).error ?? "";
            assert.ok(!["invalid_job", "unsupported_version", "wrong_stream", "id_conflict"].includes(error),
                `${id}: ${error} ${(r as { message?: string }).message ?? ""}`);
        }
    });
});
