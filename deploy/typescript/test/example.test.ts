// example.test.ts -- the example backend (example/app.ts) end to end: HTTP
// requests to its five routes, the real worker deciding, the database
// read back through Drizzle, checked against creditsctl. The tool runs pay
// by consume here; the hold-and-capture path runs in its own suite, which
// is skipped while the worker does not know revision 2 (revision2.ts).
// Run with --test-concurrency=1: the monthly run allocates for every
// subscribed account in the database.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { drizzle } from "drizzle-orm/node-postgres";
import { Redis } from "ioredis";
import pg from "pg";
import { CreditsClient } from "../src/index.js";
import { createApp, type Tool } from "../example/app.js";
import { applied, databaseUri, needsWorker, prefix, redisUrl, runToken } from "./env.js";
import { revision2Pending } from "./revision2.js";

interface Started {
    url: string;
    stop(): Promise<void>;
}

async function start(holds: boolean, tools: Record<string, Tool>): Promise<Started> {
    const conn = new Redis(redisUrl);
    const credits = new CreditsClient({ redis: conn, prefix });
    const pool = new pg.Pool({ connectionString: databaseUri });
    const server = createApp({ credits, db: drizzle(pool), tools, holds, timeoutMs: 15000 });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return {
        url: `http://127.0.0.1:${port}`,
        stop: async () => {
            await new Promise((resolve) => server.close(resolve));
            await credits.close();
            conn.disconnect();
            await pool.end();
        },
    };
}

async function call(base: string, method: string, path: string, body?: unknown, key?: string) {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (key) headers["idempotency-key"] = key;
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = JSON.stringify(body);
    const res = await fetch(`${base}${path}`, init);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const ctl = async (...args: string[]) =>
    JSON.parse((await promisify(execFile)(process.env.CREDITSCTL ?? "creditsctl", args)).stdout) as Record<string, unknown>;

describe("the example backend, end to end", needsWorker, () => {
    const run = runToken();
    const user = `app-${run}`;
    const ran: unknown[] = [];
    let app: Started;

    before(async () => {
        app = await start(false, {
            upscale: { price: 40, run: async (input) => { ran.push(input); return { cost: 40, output: { upscaled: input } }; } },
            broken: { price: 5, run: async () => { throw new Error("the GPU fell over"); } },
        });
    });
    after(() => app.stop());

    it("the payment webhook grants the pack, once per event and once per payment", async () => {
        const event = { event_id: `evt-${run}`, capture_id: `cap-${run}`, user, pack: "starter" };
        const first = await call(app.url, "POST", "/webhooks/payment", event);
        assert.equal(first.status, 200);
        assert.deepEqual([first.body.status, first.body.granted, first.body.replayed], ["applied", 500, false]);
        const again = await call(app.url, "POST", "/webhooks/payment", event);
        assert.deepEqual([again.status, again.body.status, again.body.replayed], [200, "applied", true]);
        const other = await call(app.url, "POST", "/webhooks/payment", { ...event, event_id: `evt-${run}-2` });
        assert.deepEqual([other.status, other.body.status, other.body.error], [200, "rejected", "duplicate_payment"]);
        const bad = await call(app.url, "POST", "/webhooks/payment", { event_id: `evt-${run}-3`, user, pack: "starter" });
        assert.deepEqual([bad.status, bad.body.field], [400, "capture_id"]);
    });

    it("a tool run is paid once, however often it is retried", async () => {
        const r = await call(app.url, "POST", "/tools/upscale/runs", { user, input: "video-1" }, `run-${run}-1`);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.deepEqual([r.body.charged, r.body.balance], [40, { total: 460, pack: 460, monthly: 0 }]);
        const retry = await call(app.url, "POST", "/tools/upscale/runs", { user, input: "video-1" }, `run-${run}-1`);
        assert.deepEqual([retry.status, retry.body.replayed, retry.body.charged], [200, true, 40]);
        assert.deepEqual(ran, ["video-1"], "the tool ran once");
        const noKey = await call(app.url, "POST", "/tools/upscale/runs", { user, input: "video-1" });
        assert.deepEqual([noKey.status, noKey.body.field], [400, "Idempotency-Key"]);
        const reused = await call(app.url, "POST", "/tools/broken/runs", { user }, `run-${run}-1`);
        assert.deepEqual([reused.status, reused.body.error], [409, "idempotency_key_reused"]);
        const failed = await call(app.url, "POST", "/tools/broken/runs", { user }, `run-${run}-broken`);
        assert.deepEqual([failed.status, failed.body.error, failed.body.charged], [502, "tool_failed", 5]);
        assert.equal((await call(app.url, "POST", "/tools/nope/runs", { user }, `run-${run}-x`)).status, 404);
    });

    it("a run the user cannot afford is 402 with the balance, and its key stays refused", async () => {
        const poor = `${user}-poor`;
        const r = await call(app.url, "POST", "/tools/upscale/runs", { user: poor }, `run-${run}-poor`);
        assert.deepEqual([r.status, r.body.error, r.body.balance], [402, "insufficient_credits", { total: 0, pack: 0, monthly: 0 }]);
        assert.match(String(r.body.message), /new key/);
        await call(app.url, "POST", "/webhooks/payment", { event_id: `evt-${run}-poor`, capture_id: `cap-${run}-poor`, user: poor, pack: "starter" });
        const sameKey = await call(app.url, "POST", "/tools/upscale/runs", { user: poor }, `run-${run}-poor`);
        assert.equal(sameKey.status, 402, "the stored refusal replays under the old key");
        const newKey = await call(app.url, "POST", "/tools/upscale/runs", { user: poor }, `run-${run}-poor-2`);
        assert.equal(newKey.status, 200);
    });

    it("the monthly run allocates every subscribed account once per period", async () => {
        const credits = new CreditsClient({ redis: redisUrl, prefix });
        try {
            // Subscribing (the first allocation) is the payment flow's job; the cron renews.
            applied(await credits.allocate({ user, plan: "pro", period: "2026-11" }));
        } finally {
            await credits.close();
        }
        const first = await call(app.url, "POST", "/cron/monthly", { period: "2026-12" });
        assert.equal(first.status, 200, JSON.stringify(first.body));
        assert.ok(Number(first.body.accounts) >= 1 && Number(first.body.applied) + Number(first.body.replayed) >= 1, JSON.stringify(first.body));
        const second = await call(app.url, "POST", "/cron/monthly", { period: "2026-12" });
        assert.equal(second.body.applied, 0, "a second run allocates nothing");
        assert.ok(Number(second.body.replayed) >= 1, JSON.stringify(second.body));
        const balance = await ctl("balance", user, "--json");
        assert.equal(balance.monthly, 2000, "two months of the pro plan (cap 2000)");
        const bad = await call(app.url, "POST", "/cron/monthly", { period: "2026-13" });
        assert.deepEqual([bad.status, bad.body.field], [400, "period"]);
    });

    it("the balance and history routes read the ledger as creditsctl does", async () => {
        const b = await call(app.url, "GET", `/users/${user}/balance`);
        const expected = await ctl("balance", user, "--json");
        assert.equal(b.status, 200);
        assert.deepEqual([b.body.total, b.body.pack, b.body.monthly], [expected.total, expected.pack, expected.monthly]);
        assert.deepEqual(b.body.expiringSoon, [], "the starter pack expires in 90 days");

        const all = (await ctl("history", user, "--limit", "100", "--json")).entries as { job: string; delta: number }[];
        const seen: { job: string; delta: number }[] = [];
        let path = `/users/${user}/history?limit=2`;
        for (;;) {
            const page = await call(app.url, "GET", path);
            assert.equal(page.status, 200);
            seen.push(...(page.body.entries as { jobId: string; delta: number }[]).map((e) => ({ job: e.jobId, delta: e.delta })));
            if (page.body.next === null) break;
            path = `/users/${user}/history?limit=2&before=${String(page.body.next)}`;
        }
        assert.deepEqual(seen, all.map((e) => ({ job: e.job, delta: e.delta })));
        assert.equal((await call(app.url, "GET", `/users/${user}/history?limit=0`)).status, 400);
    });
});

describe("the example backend's hold-and-capture path", { skip: needsWorker.skip || revision2Pending }, () => {
    const run = runToken();
    const user = `app-hold-${run}`;
    let app: Started;

    before(async () => {
        app = await start(true, {
            render: { price: 300, run: async () => ({ cost: 120, output: "rendered" }) },
            broken: { price: 50, run: async () => { throw new Error("the GPU fell over"); } },
        });
        await call(app.url, "POST", "/webhooks/payment", { event_id: `evt-${run}`, capture_id: `cap-${run}`, user, pack: "starter" });
    });
    after(() => app.stop());

    it("holds the price, captures the real cost, releases the rest", async () => {
        const r = await call(app.url, "POST", "/tools/render/runs", { user }, `run-${run}-1`);
        assert.deepEqual([r.status, r.body.charged, r.body.released], [200, 120, 180], JSON.stringify(r.body));
        const retry = await call(app.url, "POST", "/tools/render/runs", { user }, `run-${run}-1`);
        assert.deepEqual([retry.status, retry.body.replayed], [200, true]);
    });

    it("a failed run gives its hold back", async () => {
        const r = await call(app.url, "POST", "/tools/broken/runs", { user }, `run-${run}-2`);
        assert.deepEqual([r.status, r.body.error, r.body.released], [502, "tool_failed", 50]);
        const b = await call(app.url, "GET", `/users/${user}/balance`);
        assert.equal(b.body.total, 500 - 120);
    });
});
