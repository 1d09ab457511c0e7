// example.test.ts -- the example backend (example/app.ts) end to end: HTTP
// requests to its routes, the real worker deciding, the database read back
// through Drizzle, checked against creditsctl. A tool run holds its price,
// captures the real cost and releases the hold when the tool fails. Then
// example/server.js --events as a process of its own: the banner and the
// expiry email from the worker's events, and its stop on SIGTERM; and the
// README's events code, which is example/credits-events.ts.
// Run with --test-concurrency=1: the monthly run allocates for every
// subscribed account in the database.

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { drizzle } from "drizzle-orm/node-postgres";
import { Redis } from "ioredis";
import pg from "pg";
import { CreditsClient } from "../src/index.js";
import { createApp, type Tool } from "../example/app.js";
import { applied, bal, databaseUri, eventually, needsWorker, prefix, redisUrl, runToken, sleep } from "./env.js";

interface Started {
    url: string;
    stop(): Promise<void>;
}

async function start(tools: Record<string, Tool>): Promise<Started> {
    const conn = new Redis(redisUrl);
    const credits = new CreditsClient({ redis: conn, prefix });
    const pool = new pg.Pool({ connectionString: databaseUri });
    const server = createApp({ credits, db: drizzle(pool), tools, timeoutMs: 15000 });
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
    let gate: () => void = () => undefined;
    let app: Started;
    const buy = (u: string, name: string) =>
        call(app.url, "POST", "/webhooks/payment", { event_id: `evt-${run}-${name}`, capture_id: `cap-${run}-${name}`, user: u, pack: "starter" });

    before(async () => {
        app = await start({
            // Held at 300, it really costs 120.
            render: { price: 300, run: async (input) => { ran.push(input); return { cost: 120, output: { rendered: input } }; } },
            broken: { price: 50, run: async () => { throw new Error("the GPU fell over"); } },
            // Runs until the test opens the gate.
            gated: { price: 10, run: () => new Promise((resolve) => { gate = () => resolve({ cost: 10, output: "late" }); }) },
            // Outlives its one-second hold.
            slow: { price: 30, maxSeconds: 1, run: async () => { await sleep(1500); return { cost: 20, output: "slow" }; } },
        });
    });
    after(() => app.stop());

    it("the payment webhook grants the pack, once per event and once per payment", async () => {
        const first = await buy(user, "1");
        assert.equal(first.status, 200);
        assert.deepEqual([first.body.status, first.body.granted, first.body.replayed], ["applied", 500, false]);
        const again = await buy(user, "1");
        assert.deepEqual([again.status, again.body.status, again.body.replayed], [200, "applied", true]);
        const other = await call(app.url, "POST", "/webhooks/payment", { event_id: `evt-${run}-1b`, capture_id: `cap-${run}-1`, user, pack: "starter" });
        assert.deepEqual([other.status, other.body.status, other.body.error], [200, "rejected", "duplicate_payment"]);
        const bad = await call(app.url, "POST", "/webhooks/payment", { event_id: `evt-${run}-3`, user, pack: "starter" });
        assert.deepEqual([bad.status, bad.body.field], [400, "capture_id"]);
    });

    it("a run holds its price, captures the real cost and gives the rest back; a retry runs nothing again", async () => {
        const r = await call(app.url, "POST", "/tools/render/runs", { user, input: "video-1" }, `run-${run}-1`);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.deepEqual([r.body.charged, r.body.released, r.body.balance], [120, 180, bal(380, 0)]);
        const retry = await call(app.url, "POST", "/tools/render/runs", { user, input: "video-1" }, `run-${run}-1`);
        assert.deepEqual([retry.status, retry.body.state, retry.body.charged, retry.body.replayed], [200, "done", 120, true]);
        assert.deepEqual(ran, ["video-1"], "the tool ran once");
    });

    it("a retry while the run is still going answers 202 running; the run then settles once", async () => {
        const key = `run-${run}-gated`;
        const first = call(app.url, "POST", "/tools/gated/runs", { user }, key);
        await eventually("the hold", async () => {
            const b = await ctl("balance", user, "--json");
            return b.held === 10 ? b : null;
        });
        const retry = await call(app.url, "POST", "/tools/gated/runs", { user }, key);
        assert.deepEqual([retry.status, retry.body.state], [202, "running"]);
        gate();
        const done = await first;
        assert.deepEqual([done.status, done.body.charged, done.body.balance], [200, 10, bal(370, 0)]);
    });

    it("a failed run releases its hold: it costs nothing, and its retry says it failed", async () => {
        const r = await call(app.url, "POST", "/tools/broken/runs", { user }, `run-${run}-broken`);
        assert.deepEqual([r.status, r.body.error, r.body.released], [502, "tool_failed", 50]);
        const retry = await call(app.url, "POST", "/tools/broken/runs", { user }, `run-${run}-broken`);
        assert.deepEqual([retry.status, retry.body.state], [502, "failed"]);
        const b = await call(app.url, "GET", `/users/${user}/balance`);
        assert.deepEqual([b.body.total, b.body.held], [370, 0]);
    });

    it("a run that outlives its hold is charged by a late consume", async () => {
        const r = await call(app.url, "POST", "/tools/slow/runs", { user }, `run-${run}-slow`);
        assert.deepEqual([r.status, r.body.charged, r.body.late, r.body.balance], [200, 20, true, bal(350, 0)], JSON.stringify(r.body));
        const retry = await call(app.url, "POST", "/tools/slow/runs", { user }, `run-${run}-slow`);
        assert.deepEqual([retry.status, retry.body.state, retry.body.late], [200, "done", true]);
    });

    it("refusals: no key, a key reused for another run, an unknown tool", async () => {
        const noKey = await call(app.url, "POST", "/tools/render/runs", { user });
        assert.deepEqual([noKey.status, noKey.body.field], [400, "Idempotency-Key"]);
        const reused = await call(app.url, "POST", "/tools/broken/runs", { user }, `run-${run}-1`);
        assert.deepEqual([reused.status, reused.body.error], [409, "idempotency_key_reused"]);
        assert.equal((await call(app.url, "POST", "/tools/nope/runs", { user }, `run-${run}-x`)).status, 404);
    });

    it("a run the user cannot afford is 402 with the balance, and its key stays refused", async () => {
        const poor = `${user}-poor`;
        const r = await call(app.url, "POST", "/tools/render/runs", { user: poor }, `run-${run}-poor`);
        assert.deepEqual([r.status, r.body.error, r.body.balance], [402, "insufficient_credits", bal(0, 0)]);
        assert.match(String(r.body.message), /new key/);
        await buy(poor, "poor");
        const sameKey = await call(app.url, "POST", "/tools/render/runs", { user: poor }, `run-${run}-poor`);
        assert.deepEqual([sameKey.status, sameKey.body.balance], [402, bal(0, 0)], "the stored refusal replays under the old key");
        const newKey = await call(app.url, "POST", "/tools/render/runs", { user: poor }, `run-${run}-poor-2`);
        assert.deepEqual([newKey.status, newKey.body.charged], [200, 120]);
    });

    it("support: goodwill credits once per ticket, and a run's charge refunded", async () => {
        const g = await call(app.url, "POST", "/support/grants", { ticket: `t-${run}-1`, user, amount: 25, reason: "render failed twice", valid_days: 30 });
        assert.deepEqual([g.status, g.body.granted, g.body.balance], [200, 25, bal(350, 0, 25)]);
        assert.equal(typeof g.body.expires_at, "number");
        const again = await call(app.url, "POST", "/support/grants", { ticket: `t-${run}-1`, user, amount: 25, reason: "render failed twice", valid_days: 30 });
        assert.deepEqual([again.body.replayed, again.body.balance], [true, bal(350, 0, 25)]);

        const refund = await call(app.url, "POST", "/support/refunds", { ticket: `t-${run}-2`, user, run: `run-${run}-1` });
        assert.deepEqual([refund.status, refund.body.refunded, refund.body.balance], [200, 120, bal(470, 0, 25)]);
        const twice = await call(app.url, "POST", "/support/refunds", { ticket: `t-${run}-3`, user, run: `run-${run}-1` });
        assert.deepEqual([twice.status, twice.body.error], [409, "refund_exceeds_charge"]);
        const late = await call(app.url, "POST", "/support/refunds", { ticket: `t-${run}-4`, user, run: `run-${run}-slow`, amount: 5 });
        assert.deepEqual([late.status, late.body.refunded], [200, 5], "the late consume's charge");
    });

    it("a refunded payment revokes what is left of its pack", async () => {
        const u = `${user}-chargeback`;
        await buy(u, "cb");
        applied(await (async () => {
            const credits = new CreditsClient({ redis: redisUrl, prefix });
            try {
                return await credits.consume({ key: `spend-${run}-cb`, user: u, amount: 100 });
            } finally {
                await credits.close();
            }
        })());
        const event = { type: "payment.refunded", event_id: `evt-${run}-cb-refund`, capture_id: `cap-${run}-cb`, user: u };
        const r = await call(app.url, "POST", "/webhooks/payment", event);
        assert.deepEqual([r.status, r.body.status, r.body.revoked, r.body.balance], [200, "applied", 400, bal(0, 0)]);
        const again = await call(app.url, "POST", "/webhooks/payment", event);
        assert.deepEqual([again.body.status, again.body.replayed], ["applied", true]);
        const other = await call(app.url, "POST", "/webhooks/payment", { ...event, event_id: `evt-${run}-cb-2` });
        assert.deepEqual([other.status, other.body.error], [200, "already_revoked"]);
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
        assert.deepEqual([b.body.total, b.body.pack, b.body.monthly, b.body.grant, b.body.held],
            [expected.total, expected.pack, expected.monthly, expected.grant, expected.held]);
        const next = b.body.nextExpiry as { at: string; credits: number };
        assert.deepEqual([`${next.at.slice(0, 19)}Z`, next.credits], [expected.next_expiry, expected.next_expiry_credits]);
        assert.equal(b.body.expiringSoon, null, "the grant expires in 30 days, the pack in 90");
        assert.deepEqual(b.body.holds, []);

        const all = (await ctl("history", user, "--limit", "100", "--json")).jobs as { job: string; type: string; delta: number }[];
        assert.ok(all.length >= 10);
        const seen: { job: string; type: string; delta: number }[] = [];
        let path = `/users/${user}/history?limit=3`;
        for (;;) {
            const page = await call(app.url, "GET", path);
            assert.equal(page.status, 200);
            seen.push(...(page.body.jobs as { jobId: string; type: string; delta: number }[]).map((j) => ({ job: j.jobId, type: j.type, delta: j.delta })));
            if (page.body.next === null) break;
            path = `/users/${user}/history?limit=3&before=${String(page.body.next)}`;
        }
        assert.deepEqual(seen, all.map((j) => ({ job: j.job, type: j.type, delta: j.delta })));
        assert.equal((await call(app.url, "GET", `/users/${user}/history?limit=0`)).status, 400);
    });
});

describe("the example backend's events subscriber (server.js --events)", needsWorker, () => {
    const run = runToken();
    const user = `app-ev-${run}`;
    let pool: pg.Pool;
    let credits: CreditsClient;
    let server: ReturnType<typeof spawn>;
    let exited: Promise<unknown[]>;
    const lines: string[] = [];
    let url = "";

    before(async () => {
        pool = new pg.Pool({ connectionString: databaseUri });
        credits = new CreditsClient({ redis: redisUrl, prefix });
        server = spawn(process.execPath, [new URL("../example/server.js", import.meta.url).pathname, "--events"], {
            env: { ...process.env, CREDITS_REDIS_URL: redisUrl, CREDITS_DATABASE_URI: databaseUri, CREDITS_PREFIX: prefix, PORT: "0" },
            stdio: ["ignore", "pipe", "inherit"],
        });
        exited = once(server, "exit");
        createInterface({ input: server.stdout as NodeJS.ReadableStream }).on("line", (line) => lines.push(line));
        url = await eventually("the server listening", async () =>
            lines.map((l) => /^example backend on (http:\/\/127\.0\.0\.1:\d+)$/.exec(l)?.[1]).find(Boolean));
    });
    after(async () => {
        if (server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
        await credits.close();
        await pool.end();
    });

    it("the banner follows the user's balance events, the expiry email is queued once, SIGTERM stops it", async () => {
        assert.match(lines[0] ?? "", /^events subscriber: group webapp, consumer \S+$/, "subscribed before listening");
        const wait = { timeoutMs: 15000 };
        const banner = async () => (await call(url, "GET", `/users/${user}/balance`)).body.banner;
        const row = async () => (await pool.query("SELECT below, threshold::int FROM app_credit_banners WHERE user_id = $1", [user])).rows[0];
        const bought = await call(url, "POST", "/webhooks/payment", { event_id: `evt-${run}-1`, capture_id: `cap-${run}-1`, user, pack: "starter" });
        assert.equal(bought.body.status, "applied");
        await pool.query("UPDATE credits.accounts SET low_balance = 100 WHERE user_id = $1", [user]);
        assert.equal(await banner(), null, "500 credits: no banner");

        applied(await credits.consume({ key: `ev-${run}-410`, user, amount: 410 }, wait)); // 500 -> 90: balance_low
        assert.deepEqual(await eventually("the low banner", async () => {
            const b = await banner();
            return b === null ? null : b;
        }), { kind: "low", credits: 90, threshold: 100 });
        assert.deepEqual(await row(), { below: true, threshold: 100 });

        const soon = await call(url, "POST", "/webhooks/payment", { event_id: `evt-${run}-2`, capture_id: `cap-${run}-2`, user, pack: "soon" });
        assert.equal(soon.body.status, "applied"); // 90 -> 190: balance_recovered; the sweep announces the 3-day lot
        await eventually("the banner gone", async () => ((await row())?.below === false ? true : null));
        assert.equal(await banner(), null);
        const email = await eventually("the expiry email", async () =>
            (await pool.query<{ subject: string; body: string; event_id: string }>(
                "SELECT subject, body, event_id FROM app_email_outbox WHERE user_id = $1", [user])).rows[0]);
        assert.equal(email.subject, "100 paid credits expire in 3 days");
        // Keyed by its event, which names the soon pack's lot.
        const { rows: [event] } = await pool.query<{ type: string; expires_at: number; paid: boolean }>(
            `SELECT e.type, floor(extract(epoch FROM e.expires_at) * 1000)::float8 AS expires_at, l.payment_ref = $2 AS paid
               FROM credits.events e JOIN credits.lots l USING (lot_id) WHERE e.event_id = $1`, [email.event_id, `cap-${run}-2`]);
        assert.ok(event);
        assert.deepEqual([event.type, event.paid], ["credits_expiring", true]);
        assert.equal(email.body, `100 paid credits expire in 3 days, on ${new Date(event.expires_at).toUTCString()}. ` +
            "Credits are spent soonest-expiring first: use them before then.");

        applied(await credits.consume({ key: `ev-${run}-190`, user, amount: 190 }, wait)); // 190 -> 0: balance_low, balance_depleted
        assert.deepEqual(await eventually("the empty banner", async () => {
            const b = (await banner()) as { kind: string } | null;
            return b?.kind === "empty" ? b : null;
        }), { kind: "empty" });
        await sleep(600); // sweeps: nothing announced twice
        const { rows: emails } = await pool.query("SELECT subject FROM app_email_outbox WHERE user_id = $1", [user]);
        assert.deepEqual(emails, [{ subject: "100 paid credits expire in 3 days" }], "one email");

        server.kill("SIGTERM");
        assert.deepEqual(await exited, [0, null], "SIGTERM: a clean exit");
    });
});

describe("README: the events wiring", () => {
    it("is example/credits-events.ts word for word, but for the package's name in its import", () => {
        const source = readFileSync(new URL("../../example/credits-events.ts", import.meta.url), "utf8")
            .replace('from "../src/index.js";', 'from "@credits-worker/client";');
        assert.ok(source.startsWith("// credits-events.ts -- "));
        const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
        assert.ok(readme.includes(`\`\`\`ts\n${source}\`\`\`\n`), "README.md holds example/credits-events.ts as it is");
    });
});
