// events.test.ts -- the events of contract 9.8 and the package's
// subscription to them:
//   - the decoder, event by event and entry by entry (no Redis);
//   - the subscription on a stream of its own (Redis only): where a group
//     starts, entries that are no events, the delivery limit, stop();
//   - against the worker (its sweep every 200 ms): each event type exactly
//     when the contract says, none for a replay, two subscribers sharing a
//     group, an instance killed with events in hand and another claiming
//     them, a throwing callback's event delivered again, garbage on the
//     worker's stream, the connections, and all of the subscription's
//     commands as the web app's Redis user of deploy/redis/users.acl
//     (CREDITS_REDIS_ACL_TEMPLATE, default that file in this repository).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { encode } from "@msgpack/msgpack";
import { Redis } from "ioredis";
import pg from "pg";
import {
    CreditsClient,
    type CreditsEvent,
    type DeadEvent,
    type Delivery,
    type EventSubscription,
    type SubscriptionError,
    type SubscriptionOptions,
    decodeEvent,
    subscribeEvents,
} from "../src/index.js";
import { applied, bal, clientList, databaseUri, eventually, needsWorker, prefix, redisUrl, runToken, sleep } from "./env.js";

const needsRedis = { skip: redisUrl ? false : "CREDITS_REDIS_URL is not set" };

/** An event as the worker encodes it (contract 9.8), for the tests that write their own stream. */
function wireEvent(eventId: number, type: string, user: string, extra: Record<string, unknown> = {}): Uint8Array {
    return encode({
        v: 1, event_id: eventId, type, user, at: 1_800_000_000_000 + eventId,
        balance: { total: 10, pack: 10, monthly: 0, grant: 0, held: 0 }, job: `job-${eventId}`, ...extra,
    });
}

describe("event decoding", () => {
    const balance = { total: 90, pack: 40, monthly: 50, grant: 0, held: 10 };
    const common = { v: 1, event_id: 7, user: "u1", at: 1_800_000_000_123, balance, job: "web:run-1" } as const;

    it("decodes each of the six types with exactly its keys", () => {
        const cases: CreditsEvent[] = [
            { ...common, type: "balance_low", threshold: 100 },
            { ...common, type: "balance_depleted" },
            { ...common, type: "balance_recovered", threshold: 100 },
            { ...common, type: "credits_expiring", job: "expire:12", lot: 12, credits: 250, expires_at: 1_800_600_000_000 },
            { ...common, type: "credits_expired", job: "expire:12", lot: 12, credits: 250 },
            { ...common, type: "hold_expired", job: "web:h-1", hold: "web:h-1", released: 40 },
        ];
        for (const e of cases) {
            const d = decodeEvent(encode(e));
            assert.deepEqual(d, { ok: true, event: e }, e.type);
        }
        // A key a newer worker adds is left out; a 64-bit integer is a number.
        const extra = decodeEvent(encode({ ...common, type: "balance_depleted", region: "eu", event_id: 2n ** 40n },
            { useBigInt64: true }));
        assert.deepEqual(extra, { ok: true, event: { ...common, type: "balance_depleted", event_id: 2 ** 40 } });
    });

    it("reports what it cannot accept, with the event_id when it can read one, and never throws", () => {
        const problem = (value: unknown) => {
            const d = decodeEvent(value instanceof Uint8Array ? value : encode(value, { useBigInt64: true }));
            assert.equal(d.ok, false, JSON.stringify(value, (_, v) => (typeof v === "bigint" ? String(v) : v)));
            return (d as { ok: false; problem: { kind: string; message: string; eventId?: number } }).problem;
        };
        assert.deepEqual(problem({ ...common, type: "balance_overdrawn" }),
            { kind: "unknown_type", type: "balance_overdrawn", eventId: 7, message: 'event type "balance_overdrawn" is not one this package knows' });
        assert.equal(problem({ ...common, v: 2, type: "balance_low", threshold: 1 }).kind, "unsupported_version");
        assert.deepEqual(problem({ ...common, type: "balance_low" }),
            { kind: "malformed", eventId: 7, message: "a balance_low event's threshold is not an integer" });
        assert.equal(problem({ ...common, type: "hold_expired", hold: 5, released: 1 }).message,
            "a hold_expired event's hold is not a non-empty string");
        assert.equal(problem({ ...common, type: "credits_expired", lot: 1 }).message, "a credits_expired event's credits is not an integer");
        assert.equal(problem({ ...common, type: "credits_expiring", lot: 1, credits: 2 }).message,
            "a credits_expiring event's expires_at is not an integer");
        assert.equal(problem({ ...common, type: "balance_depleted", balance: { total: 1, pack: 1, monthly: 0, grant: 0 } }).message,
            "event balance.held is not an integer");
        assert.equal(problem({ ...common, type: "balance_depleted", user: "" }).message, "event user is not a non-empty string");
        assert.equal(problem({ ...common, type: "balance_depleted", at: "now" }).message, "event at is not an integer");
        assert.equal(problem({ ...common, type: "balance_depleted", job: null }).message, "event job is not a non-empty string");
        assert.equal(problem({ ...common, type: "balance_depleted", event_id: 0 }).message, "event event_id is not a positive integer");
        assert.equal(problem({ ...common, type: 3 }).message, "event type is not a string");
        assert.match(problem({ ...common, type: "balance_depleted", event_id: 2n ** 60n }).message, /beyond Number.MAX_SAFE_INTEGER/);
        assert.equal(problem([1, 2]).message, "an event is not a msgpack map");
        assert.equal(problem(new Uint8Array([0xc1])).kind, "malformed");
        assert.equal(problem(new Uint8Array([])).kind, "malformed");
        for (let i = 0; i < 200; i++) {
            const bytes = new Uint8Array(1 + (i % 40)).map((_, j) => (i * 31 + j * 17) & 0xff);
            const d = decodeEvent(bytes); // never throws
            assert.equal(typeof d.ok, "boolean");
        }
    });
});

/** What one subscription saw. */
interface Seen {
    events: { event: CreditsEvent; delivery: Delivery }[];
    dead: DeadEvent[];
    errors: SubscriptionError[];
}

function recorder(handle?: (event: CreditsEvent, delivery: Delivery) => void | Promise<void>) {
    const seen: Seen = { events: [], dead: [], errors: [] };
    const options: Pick<SubscriptionOptions, "onEvent" | "onDead" | "onError"> = {
        onEvent: async (event, delivery) => {
            await handle?.(event, delivery);
            seen.events.push({ event, delivery });
        },
        onDead: (dead) => { seen.dead.push(dead); },
        onError: (error) => { seen.errors.push(error); },
    };
    return { seen, options };
}

describe("the events subscription on a stream of its own", needsRedis, () => {
    const run = runToken();
    const pfx = `evsub-${run}`;
    const stream = `${pfx}:events`;
    let redis: Redis;
    const add = (bytes: Uint8Array | null, field = "event") =>
        redis.xadd(stream, "*", field, bytes ? Buffer.from(bytes) : "x");
    const pending = async (group: string) => Number(((await redis.xpending(stream, group)) as unknown[])[0]);

    before(() => { redis = new Redis(redisUrl); });
    after(() => redis.disconnect());

    it('a new group starts at the next event by default, at the oldest with start "all"', async () => {
        await add(wireEvent(1, "balance_depleted", "old"));
        const a = recorder();
        const b = recorder();
        const fresh = await subscribeEvents({ redis: redisUrl, prefix: pfx, group: "g-new", ...a.options });
        const all = await subscribeEvents({ redis, prefix: pfx, group: "g-all", start: "all", ...b.options });
        try {
            await add(wireEvent(2, "balance_depleted", "new"));
            await eventually("both see event 2", async () => (a.seen.events.length && b.seen.events.length === 2) || null);
            assert.deepEqual(a.seen.events.map((s) => s.event.event_id), [2]);
            assert.deepEqual(b.seen.events.map((s) => s.event.event_id), [1, 2]);
            assert.deepEqual(a.seen.events[0]?.delivery, { entryId: a.seen.events[0]?.delivery.entryId, deliveries: 1, group: "g-new", consumer: fresh.consumer });
        } finally {
            await Promise.all([fresh.stop(), all.stop()]);
        }
        // An existing group keeps its position, whatever start says.
        const c = recorder();
        const again = await subscribeEvents({ redis, prefix: pfx, group: "g-new", start: "all", ...c.options });
        try {
            await add(wireEvent(3, "balance_depleted", "new"));
            await eventually("event 3", async () => c.seen.events.length || null);
            await sleep(200);
            assert.deepEqual(c.seen.events.map((s) => s.event.event_id), [3]);
        } finally {
            await again.stop();
        }
    });

    it("entries that are no events go to onDead, acknowledged, and the loop goes on", async () => {
        const r = recorder();
        const sub = await subscribeEvents({ redis, prefix: pfx, group: "g-junk", ...r.options });
        try {
            await add(encode({ v: 1, event_id: 10, type: "balance_overdrawn", user: "u", at: 1, balance: {}, job: "j" }));
            await add(wireEvent(11, "balance_low", "u")); // no threshold
            await add(new Uint8Array([0xc1, 0x00]));
            await add(wireEvent(12, "balance_depleted", "u"), "payload");
            await add(encode({ v: 2, event_id: 13, type: "balance_depleted" }));
            await add(wireEvent(14, "hold_expired", "u", { hold: "h-1", released: 5 }));
            await eventually("the valid event after the junk", async () => r.seen.events.length || null);
            await eventually("five dead", async () => (r.seen.dead.length === 5 ? true : null));
            assert.deepEqual(r.seen.events.map((s) => [s.event.event_id, s.event.type]), [[14, "hold_expired"]]);
            const problems = r.seen.dead.map((d) => {
                assert.equal(d.reason, "invalid");
                return d.reason === "invalid" ? [d.problem.kind, d.problem.eventId ?? null] : [];
            });
            assert.deepEqual(problems, [["unknown_type", 10], ["malformed", 11], ["malformed", null], ["malformed", null],
                ["unsupported_version", 13]]);
            assert.equal(await pending("g-junk"), 0, "every entry acknowledged");
            assert.equal(sub.acknowledged, 6);
            assert.deepEqual(r.seen.errors, []);
        } finally {
            await sub.stop();
        }
    });

    it("an entry delivered more than maxDeliveries times (instances died with it) goes to onDead without the callback", async () => {
        await redis.xgroup("CREATE", stream, "g-ghost", "$", "MKSTREAM");
        const id = await add(wireEvent(20, "credits_expired", "u", { lot: 3, credits: 30 }));
        // A consumer that read it and died; claimed and lost twice more.
        await redis.xreadgroup("GROUP", "g-ghost", "ghost", "COUNT", 10, "STREAMS", stream, ">");
        for (let i = 0; i < 2; i++) await redis.xclaim(stream, "g-ghost", `ghost-${i}`, 0, id as string);
        const r = recorder();
        const sub = await subscribeEvents({
            redis, prefix: pfx, group: "g-ghost", minIdleMs: 100, maxDeliveries: 3, claimIntervalMs: 50, ...r.options,
        });
        try {
            await eventually("the dead entry", async () => r.seen.dead[0]);
            const dead = r.seen.dead[0];
            assert.ok(dead?.reason === "max_deliveries");
            assert.deepEqual([dead.entryId, dead.deliveries, dead.event.event_id, dead.error], [id, 4, 20, undefined]);
            assert.deepEqual(r.seen.events, [], "the callback never saw it");
            assert.equal(await pending("g-ghost"), 0);
        } finally {
            await sub.stop();
        }
    });

    it("stop() finishes the event in hand, acknowledges it and closes the connection; the rest waits for the group", async () => {
        let started!: () => void;
        const inHand = new Promise<void>((resolve) => { started = resolve; });
        let finished = false;
        const r = recorder(async (event) => {
            if (event.event_id !== 30) return;
            started();
            await sleep(400);
            finished = true;
        });
        const sub = await subscribeEvents({ redis, prefix: pfx, group: "g-stop", count: 1, connectionName: `stop-${run}`, ...r.options });
        const named = async () => (await clientList(redis)).filter((c) => c.name === `stop-${run}`).length;
        assert.equal(await named(), 1, "one connection");
        await add(wireEvent(30, "balance_depleted", "u"));
        await inHand;
        await add(wireEvent(31, "balance_depleted", "u"));
        const t0 = Date.now();
        await sub.stop();
        assert.ok(finished, "stop() waited for the callback");
        assert.ok(Date.now() - t0 >= 250);
        assert.deepEqual(r.seen.events.map((s) => s.event.event_id), [30]);
        assert.equal(await pending("g-stop"), 0, "the event in hand was acknowledged");
        await eventually("the connection closed", async () => ((await named()) === 0 ? true : null), 3000);
        await sub.stop(); // idempotent
        // The next instance of the group gets what this one did not read.
        const next = recorder();
        const sub2 = await subscribeEvents({ redis, prefix: pfx, group: "g-stop", ...next.options });
        try {
            await eventually("event 31", async () => next.seen.events[0]);
            assert.deepEqual(next.seen.events.map((s) => s.event.event_id), [31]);
        } finally {
            const t1 = Date.now();
            await sub2.stop();
            assert.ok(Date.now() - t1 < 1000, "stop() of a subscription blocked in its read is prompt");
        }
    });

    it("refuses bad options before connecting", async () => {
        const onEvent = () => undefined;
        const connectionName = `refused-${run}`;
        await assert.rejects(subscribeEvents({ redis: "localhost:6379", group: "g", onEvent }), { name: "CreditsValidationError", field: "redis" });
        await assert.rejects(subscribeEvents({ redis, prefix: pfx, group: "has space", connectionName, onEvent }), { field: "group" });
        await assert.rejects(subscribeEvents({ redis, prefix: pfx, group: "g", minIdleMs: 0, connectionName, onEvent }), { field: "minIdleMs" });
        await assert.rejects(subscribeEvents({ redis, prefix: pfx, group: "g", count: 1.5, connectionName, onEvent }), { field: "count" });
        await assert.rejects(subscribeEvents({ redis, prefix: "", group: "g", connectionName, onEvent }), { field: "prefix" });
        // @ts-expect-error -- start is "new" or "all"
        await assert.rejects(subscribeEvents({ redis, prefix: pfx, group: "g", start: "$", connectionName, onEvent }), { field: "start" });
        // @ts-expect-error -- onEvent is required
        await assert.rejects(subscribeEvents({ redis, prefix: pfx, group: "g", connectionName }), { field: "onEvent" });
        await sleep(100);
        assert.deepEqual((await clientList(redis)).filter((c) => c.name === connectionName), [], "no connection was opened");
    });

    it("an AbortSignal stops the subscription as stop() does; an aborted one refuses to subscribe", async () => {
        const connectionName = `abort-${run}`;
        const named = async () => (await clientList(redis)).filter((c) => c.name === connectionName).length;
        const r = recorder();
        const ac = new AbortController();
        const sub = await subscribeEvents({ redis, prefix: pfx, group: "g-abort", connectionName, signal: ac.signal, ...r.options });
        await add(wireEvent(40, "balance_depleted", "u"));
        await eventually("event 40", async () => r.seen.events[0]);
        assert.equal(await named(), 1);
        const t0 = Date.now();
        ac.abort();
        assert.ok(sub.isStopped, "stopping at once");
        await sub.done;
        assert.ok(Date.now() - t0 < 1000, "done soon, though the read was blocked");
        await eventually("the connection closed", async () => ((await named()) === 0 ? true : null), 3000);
        await add(wireEvent(41, "balance_depleted", "u"));
        await sleep(200);
        assert.deepEqual(r.seen.events.map((x) => x.event.event_id), [40], "nothing read after the abort");
        const reason = new Error("shutting down");
        await assert.rejects(subscribeEvents({ redis, prefix: pfx, group: "g-abort", connectionName, signal: AbortSignal.abort(reason), ...r.options }),
            (e) => e === reason);
        await sleep(100);
        assert.equal(await named(), 0, "an aborted signal opens no connection");
    });
});

describe("events against the worker", needsWorker, () => {
    const run = runToken();
    const wait = { timeoutMs: 15000 };
    let conn: Redis;
    let db: pg.Pool;
    let credits: CreditsClient;
    let all: EventSubscription;
    /** Every event of this run's users, as one subscription of its own group saw them. */
    const seen: CreditsEvent[] = [];
    /** The entry of each of those events. */
    const entryOf = new Map<number, string>();
    /** The entries that subscription found no events. */
    const deadOfAll: DeadEvent[] = [];
    const k = (name: string) => `ev-${run}-${name}`;
    const eventsOf = (user: string) => seen.filter((e) => e.user === user).sort((a, b) => a.event_id - b.event_id);
    const brief = (e: CreditsEvent) => {
        const own: Record<string, unknown> = { ...e };
        for (const key of ["v", "event_id", "user", "at", "balance"]) delete own[key];
        return { ...own, total: e.balance.total };
    };
    const setLow = (user: string, n: number | null) =>
        db.query("UPDATE credits.accounts SET low_balance = $2 WHERE user_id = $1", [user, n]);

    before(async () => {
        conn = new Redis(redisUrl);
        db = new pg.Pool({ connectionString: databaseUri });
        credits = new CreditsClient({ redis: conn, prefix });
        all = await credits.subscribe({
            group: `all-${run}`,
            onEvent: (e, delivery) => {
                if (!e.user.startsWith(`ev-${run}`)) return;
                seen.push(e);
                entryOf.set(e.event_id, delivery.entryId);
            },
            onDead: (dead) => { deadOfAll.push(dead); },
        });
    });
    after(async () => {
        await credits.close();
        conn.disconnect();
        await db.end();
    });

    it("balance_low, balance_recovered and balance_depleted exactly at the crossings; none for a replay", async () => {
        const user = k("t");
        const consume = (name: string, amount: number) => credits.consume({ key: k(`t-${name}`), user, amount }, wait);
        applied(await credits.purchase({ key: k("t-buy"), user, pack: "starter", paymentRef: k("t-pay") }, wait));
        await setLow(user, 100);
        applied(await consume("350", 350)); // 500 -> 150
        applied(await consume("50", 50)); // -> 100: at the threshold is not below it
        const low = applied(await consume("1", 1)); // -> 99: balance_low
        assert.equal(applied(await consume("1", 1)).replayed, true);
        const up = applied(await credits.grant({ key: k("t-g1"), user, amount: 1 }, wait)); // -> 100: recovered
        assert.equal(applied(await credits.grant({ key: k("t-g1"), user, amount: 1 }, wait)).replayed, true);
        const zero = applied(await consume("100", 100)); // 100 -> 0: low, then depleted
        assert.deepEqual(zero.balance, bal(0, 0));
        assert.equal(applied(await consume("100", 100)).replayed, true);
        const back = applied(await credits.grant({ key: k("t-g2"), user, amount: 500 }, wait)); // -> 500: recovered
        await eventually("the last recovery", async () => eventsOf(user).find((e) => e.job === back.id));
        await sleep(600); // three sweeps: nothing more comes
        assert.deepEqual(eventsOf(user).map(brief), [
            { type: "balance_low", job: low.id, threshold: 100, total: 99 },
            { type: "balance_recovered", job: up.id, threshold: 100, total: 100 },
            { type: "balance_low", job: zero.id, threshold: 100, total: 0 },
            { type: "balance_depleted", job: zero.id, total: 0 },
            { type: "balance_recovered", job: back.id, threshold: 100, total: 500 },
        ]);
        // The first balance_low, every key: the row credits.events holds, the job's result.
        const { rows: [row] } = await db.query<{ id: number; at: number }>(
            `SELECT event_id::int AS id, floor(extract(epoch FROM at) * 1000)::float8 AS at FROM credits.events
              WHERE user_id = $1 AND job_id = $2 AND type = 'balance_low'`, [user, low.id]);
        assert.ok(row);
        assert.deepEqual(eventsOf(user)[0], {
            v: 1, event_id: row.id, type: "balance_low", user, at: row.at, balance: bal(99, 0), job: low.id, threshold: 100,
        });
        assert.deepEqual(low.balance, bal(99, 0), "the balance after the change, as in its result");
        assert.ok(Math.abs(row.at - low.done_at) < 1000, "at is the change's time");
        // The same events as credits.events holds, every one published.
        const { rows } = await db.query(
            "SELECT event_id::int AS id, type, job_id, published_at IS NOT NULL AS published FROM credits.events WHERE user_id = $1 ORDER BY event_id",
            [user]);
        assert.deepEqual(rows, eventsOf(user).map((e) => ({ id: e.event_id, type: e.type, job_id: e.job, published: true })));
    });

    it("the plan's threshold applies, and the account's own wins over it", async () => {
        const user = k("p");
        const plan = `ev-${run}`;
        await db.query("INSERT INTO credits.plans (plan_id, monthly_credits, rollover_cap, low_balance) VALUES ($1, 200, 400, 150)", [plan]);
        const first = applied(await credits.allocate({ user, plan, period: "2026-11" }, wait)); // 0 -> 200: recovered (150)
        const low = applied(await credits.consume({ key: k("p-60"), user, amount: 60 }, wait)); // -> 140: low (150)
        await setLow(user, 100);
        applied(await credits.consume({ key: k("p-30"), user, amount: 30 }, wait)); // -> 110: nothing (100)
        const own = applied(await credits.consume({ key: k("p-20"), user, amount: 20 }, wait)); // -> 90: low (100)
        await eventually("the account's threshold", async () => eventsOf(user).find((e) => e.job === own.id));
        await sleep(400);
        assert.deepEqual(eventsOf(user).map(brief), [
            { type: "balance_recovered", job: first.id, threshold: 150, total: 200 },
            { type: "balance_low", job: low.id, threshold: 150, total: 140 },
            { type: "balance_low", job: own.id, threshold: 100, total: 90 },
        ]);
    });

    it("hold_expired: the sweep releases a short hold with no other job of its user", async () => {
        const user = k("h");
        applied(await credits.grant({ key: k("h-g"), user, amount: 100 }, wait));
        const h = applied(await credits.hold({ key: k("h-1"), user, amount: 40, ttlSeconds: 1 }, wait));
        assert.deepEqual(h.balance, bal(0, 0, 60, 40));
        const e = await eventually("hold_expired", async () => eventsOf(user).find((x) => x.type === "hold_expired"), 10000);
        assert.ok(e.type === "hold_expired");
        assert.deepEqual([e.hold, e.released, e.job, e.balance], [h.id, 40, h.id, bal(0, 0, 100)]);
        assert.ok(e.at >= h.hold_expires_at, "released after its expiry");
        const { rows } = await db.query("SELECT status, closed_by FROM credits.holds WHERE hold_id = $1", [h.id]);
        assert.deepEqual(rows, [{ status: "expired", closed_by: null }]);
        assert.deepEqual(eventsOf(user).map((x) => x.type), ["hold_expired"], "no threshold set: nothing else");
    });

    it("credits_expired: a lot moved past its expiry is written off by the sweep", async () => {
        const user = k("x");
        applied(await credits.purchase({ key: k("x-buy"), user, pack: "starter", paymentRef: k("x-pay") }, wait));
        const { rows: [lot] } = await db.query<{ lot_id: string }>(
            `UPDATE credits.lots SET expires_at = now() - interval '1 second', granted_at = now() - interval '2 days'
              WHERE user_id = $1 RETURNING lot_id`, [user]);
        const lotId = Number(lot?.lot_id);
        const e = await eventually("credits_expired", async () => eventsOf(user).find((x) => x.type === "credits_expired"), 10000);
        await eventually("balance_depleted", async () => eventsOf(user).find((x) => x.type === "balance_depleted"), 5000);
        await sleep(400);
        assert.deepEqual(eventsOf(user).map(brief), [
            { type: "credits_expired", job: `expire:${lotId}`, lot: lotId, credits: 500, total: 0 },
            { type: "balance_depleted", job: `expire:${lotId}`, total: 0 },
        ]);
        assert.deepEqual(e.balance, bal(0, 0));
        const { rows } = await db.query(
            "SELECT kind, delta::int, job_id FROM credits.entries WHERE lot_id = $1 AND kind = 'expire'", [lotId]);
        assert.deepEqual(rows, [{ kind: "expire", delta: -500, job_id: `expire:${lotId}` }]);
    });

    it("credits_expiring comes once per lot", async () => {
        const user = k("s");
        const p1 = applied(await credits.purchase({ key: k("s-buy1"), user, pack: "soon", paymentRef: k("s-pay1") }, wait));
        const n1 = await eventually("the first notice", async () => eventsOf(user).find((x) => x.type === "credits_expiring"), 10000);
        assert.ok(n1.type === "credits_expiring");
        assert.deepEqual([n1.job, n1.credits, n1.expires_at, n1.balance], [`expire:${n1.lot}`, 100, p1.expires_at, bal(100, 0)]);
        applied(await credits.consume({ key: k("s-c"), user, amount: 10 }, wait));
        await sleep(1000); // five sweeps
        const p2 = applied(await credits.purchase({ key: k("s-buy2"), user, pack: "soon", paymentRef: k("s-pay2") }, wait));
        await eventually("the second notice", async () =>
            (eventsOf(user).filter((x) => x.type === "credits_expiring").length >= 2 ? true : null), 10000);
        await sleep(1000);
        const notices = eventsOf(user).filter((x) => x.type === "credits_expiring");
        assert.equal(notices.length, 2, JSON.stringify(notices));
        const n2 = notices[1];
        assert.ok(n2?.type === "credits_expiring");
        assert.notEqual(n2.lot, n1.lot);
        assert.deepEqual([n2.credits, n2.expires_at], [100, p2.expires_at]);
        const { rows } = await db.query(
            "SELECT count(*)::int AS n FROM credits.lots WHERE user_id = $1 AND expiry_noticed_at IS NOT NULL", [user]);
        assert.deepEqual(rows, [{ n: 2 }]);
    });

    it("two subscribers in one group share the events: each event goes to one of them", async () => {
        const group = `shared-${run}`;
        const slow = async () => { await sleep(15); };
        const a = recorder(slow);
        const b = recorder(slow);
        const subA = await credits.subscribe({ group, consumer: "a", count: 1, connectionName: `ev-a-${run}`, ...a.options });
        const subB = await credits.subscribe({ group, consumer: "b", count: 1, connectionName: `ev-b-${run}`, ...b.options });
        try {
            const names = (await clientList(conn)).map((c) => c.name);
            assert.deepEqual([names.filter((n) => n === `ev-a-${run}`).length, names.filter((n) => n === `ev-b-${run}`).length], [1, 1],
                "one connection per subscription");
            const users = Array.from({ length: 12 }, (_, i) => k(`share-${i}`));
            await Promise.all(users.map(async (user) => {
                applied(await credits.grant({ key: `${user}-g`, user, amount: 10 }, wait));
                applied(await credits.consume({ key: `${user}-c`, user, amount: 10 }, wait)); // balance_depleted
            }));
            const mine = (s: Seen) => s.events.filter((x) => users.includes(x.event.user)).map((x) => x.event.event_id);
            await eventually("every depletion delivered", async () =>
                (new Set([...mine(a.seen), ...mine(b.seen)]).size === users.length ? true : null));
            await sleep(300);
            const [ofA, ofB] = [mine(a.seen), mine(b.seen)];
            assert.equal(ofA.length + ofB.length, users.length, `each event once: a ${ofA.join(",")}, b ${ofB.join(",")}`);
            assert.deepEqual(ofA.filter((id) => ofB.includes(id)), [], "none delivered to both");
            assert.ok(ofA.length > 0 && ofB.length > 0, `both took a share: a ${ofA.length}, b ${ofB.length}`);
            assert.equal(Number(((await conn.xpending(`${prefix}:events`, group)) as unknown[])[0]), 0);
        } finally {
            await Promise.all([subA.stop(), subB.stop()]);
        }
        const names = (await clientList(conn)).map((c) => c.name);
        assert.ok(!names.includes(`ev-a-${run}`) && !names.includes(`ev-b-${run}`), "stop() closed both connections");
    });

    it("an instance killed with events in hand: another instance of its group claims them, none lost, none twice", async () => {
        const group = `killed-${run}`;
        const stream = `${prefix}:events`;
        await conn.xgroup("CREATE", stream, group, "$", "MKSTREAM");
        const users = Array.from({ length: 6 }, (_, i) => k(`killed-${i}`));
        await Promise.all(users.map(async (user) => {
            applied(await credits.grant({ key: `${user}-g`, user, amount: 10 }, wait));
            applied(await credits.consume({ key: `${user}-c`, user, amount: 10 }, wait)); // balance_depleted
        }));
        const ours = await eventually("the six events on the stream", async () => {
            const ids = users.map((u) => eventsOf(u).find((e) => e.type === "balance_depleted")?.event_id);
            return ids.every((id) => id !== undefined) ? (ids as number[]) : null;
        });
        const entries = ours.map((id) => entryOf.get(id));

        // The doomed instance reads them all at once and dies in its first callback.
        const child = spawn(process.execPath, [new URL("./events-child.js", import.meta.url).pathname, group], {
            env: { ...process.env, CREDITS_REDIS_URL: redisUrl, CREDITS_PREFIX: prefix },
            stdio: ["ignore", "pipe", "inherit"],
        });
        const exited = once(child, "exit");
        const lines: string[] = [];
        createInterface({ input: child.stdout }).on("line", (line) => lines.push(line));
        const heldByDoomed = async () =>
            ((await conn.xpending(stream, group, "-", "+", 100, "doomed")) as [string][]).map(([id]) => id);
        try {
            await eventually("the doomed instance in its first callback", async () => (lines.length >= 2 ? true : null));
            await eventually("every event pending with the doomed instance", async () => {
                const held = await heldByDoomed();
                return entries.every((id) => id !== undefined && held.includes(id)) ? true : null;
            });
            assert.equal(lines[0], "subscribed");
            assert.equal(lines.length, 2, `one callback started, none finished: ${lines.join(" | ")}`);
            assert.ok(entries.includes((JSON.parse(lines[1] ?? "{}") as { entryId: string }).entryId));
        } finally {
            child.kill("SIGKILL");
        }
        assert.deepEqual(await exited, [null, "SIGKILL"]);

        const r = recorder();
        const survivor = await credits.subscribe({ group, consumer: "survivor", minIdleMs: 500, claimIntervalMs: 100, ...r.options });
        try {
            const mine = () => r.seen.events.filter((x) => users.includes(x.event.user));
            await eventually("the dead instance's events, claimed", async () => (mine().length >= users.length ? true : null), 10000);
            await sleep(700); // more than minIdleMs: nothing comes twice
            assert.deepEqual(mine().map((x) => x.event.event_id).sort((a, b) => a - b), [...ours].sort((a, b) => a - b));
            for (const { event, delivery } of mine()) {
                assert.deepEqual([delivery.deliveries, delivery.consumer, delivery.entryId], [2, "survivor", entryOf.get(event.event_id)],
                    "delivered a second time, to the survivor, from the same entry");
                assert.equal(event.type, "balance_depleted");
            }
            assert.deepEqual(await heldByDoomed(), [], "the dead instance holds nothing");
            assert.equal(Number(((await conn.xpending(stream, group)) as unknown[])[0]), 0, "every entry acknowledged");
            assert.deepEqual([r.seen.dead, r.seen.errors], [[], []]);
        } finally {
            await survivor.stop();
        }
    });

    it("garbage on the worker's stream is reported to onDead, acknowledged, and the events after it still come", async () => {
        const group = `junk-${run}`;
        const stream = `${prefix}:events`;
        const r = recorder();
        const sub = await credits.subscribe({ group, ...r.options });
        try {
            const junk = [
                await conn.xadd(stream, "*", "event", Buffer.from([0xc1, 0xff, 0x00, 0x13])), // not msgpack
                await conn.xadd(stream, "*", "event", Buffer.from(encode("balance_low"))), // msgpack, not a map
                await conn.xadd(stream, "*", "note", "no event field"),
            ];
            const user = k("junk");
            applied(await credits.grant({ key: `${user}-g`, user, amount: 3 }, wait));
            const spent = applied(await credits.consume({ key: `${user}-c`, user, amount: 3 }, wait));
            const e = await eventually("the event after the garbage", async () =>
                r.seen.events.find((x) => x.event.user === user)?.event);
            assert.deepEqual([e.type, e.job], ["balance_depleted", spent.id]);
            assert.deepEqual(r.seen.dead.map((d) => [d.reason, d.entryId, d.deliveries, d.reason === "invalid" ? d.problem.kind : null]),
                junk.map((id) => ["invalid", id, 1, "malformed"]));
            assert.deepEqual(r.seen.dead.map((d) => (d.reason === "invalid" ? d.problem.message : "")).slice(1),
                ["an event is not a msgpack map", "the entry has no field event"]);
            assert.deepEqual(r.seen.errors, []);
            assert.ok(!sub.isStopped);
            assert.equal(Number(((await conn.xpending(stream, group)) as unknown[])[0]), 0, "the garbage acknowledged too");
            // Every other group of the stream saw the same garbage and went on.
            await eventually("the suite's subscription saw it too", async () =>
                (junk.every((id) => deadOfAll.some((d) => d.entryId === id)) ? true : null));
            assert.ok(!all.isStopped);
        } finally {
            await sub.stop();
        }
    });

    it("a throwing callback gets its event again; past maxDeliveries it goes to onDead, acknowledged", async () => {
        const group = `retry-${run}`;
        const [once, always] = [k("retry-once"), k("retry-always")];
        const calls = new Map<string, number[]>();
        const r = recorder((event, delivery) => {
            if (event.user !== once && event.user !== always) return;
            calls.set(event.user, [...(calls.get(event.user) ?? []), delivery.deliveries]);
            if (event.user === always || delivery.deliveries === 1) throw new Error(`refused ${event.user}`);
        });
        const sub = await credits.subscribe({ group, minIdleMs: 300, claimIntervalMs: 100, maxDeliveries: 3, ...r.options });
        try {
            for (const user of [once, always]) {
                applied(await credits.grant({ key: `${user}-g`, user, amount: 5 }, wait));
                applied(await credits.consume({ key: `${user}-c`, user, amount: 5 }, wait));
            }
            await eventually("the retried event handled", async () => r.seen.events.find((x) => x.event.user === once), 10000);
            const dead = await eventually("the dead event", async () => r.seen.dead.find((d) => d.reason === "max_deliveries"), 10000);
            assert.deepEqual(calls.get(once), [1, 2], "delivered again after it threw");
            assert.deepEqual(calls.get(always), [1, 2, 3], "three deliveries, then dead");
            assert.ok(dead.reason === "max_deliveries");
            assert.deepEqual([dead.event.user, dead.event.type, dead.deliveries, String(dead.error)],
                [always, "balance_depleted", 3, `Error: refused ${always}`]);
            const failures = r.seen.errors.filter((x) => x.kind === "callback");
            assert.deepEqual(failures.map((x) => (x.kind === "callback" ? [x.event.user, x.deliveries] : [])),
                [[once, 1], [always, 1], [always, 2], [always, 3]]);
            await sleep(500);
            assert.equal(calls.get(always)?.length, 3, "an acknowledged dead event is not delivered again");
            assert.equal(Number(((await conn.xpending(`${prefix}:events`, group)) as unknown[])[0]), 0);
        } finally {
            await sub.stop();
        }
    });

    it("as the web app's Redis user of deploy/redis/users.acl: the group, the reads, the claims, the delivery counts, the housekeeping", async () => {
        // The template's credits-webapp line, for this run's prefix, with a password of the test's own.
        const template = readFileSync(process.env.CREDITS_REDIS_ACL_TEMPLATE ?? new URL("../../../redis/users.acl", import.meta.url), "utf8");
        const line = template.split("\n").find((l) => l.startsWith("user credits-webapp "));
        assert.ok(line, "users.acl has the user credits-webapp");
        const password = randomUUID();
        const name = `${prefix}-webapp`;
        const rules = (line.replace(/^user credits-webapp /, "").match(/\([^)]*\)|\S+/g) ?? [])
            .map((r) => (r.startsWith("#") ? `>${password}` : r.replaceAll("~credits:", `~${prefix}:`)));
        assert.ok(rules.includes(`>${password}`));
        await conn.call("ACL", "SETUSER", name, "reset", ...rules);
        const url = new URL(redisUrl);
        [url.username, url.password] = [name, password];
        const group = `acl-${run}`;
        const stream = `${prefix}:events`;
        // A consumer that left long ago, with nothing pending: the subscription removes it.
        await conn.xgroup("CREATE", stream, group, "$", "MKSTREAM");
        await conn.xgroup("CREATECONSUMER", stream, group, "gone");
        await sleep(20);
        const user = k("acl");
        const r = recorder((event, delivery) => {
            if (event.user === user && delivery.deliveries === 1) throw new Error("not yet");
        });
        const sub = await subscribeEvents({
            redis: url.href, prefix, group, consumer: "acl", forgetConsumersAfterMs: 10, minIdleMs: 300, claimIntervalMs: 100, ...r.options,
        });
        try {
            const consumers = async () => ((await conn.xinfo("CONSUMERS", stream, group)) as unknown[][]).map((c) => String(c[1]));
            assert.deepEqual(await consumers(), [], "the consumer gone was removed (XINFO CONSUMERS, XGROUP DELCONSUMER)");
            applied(await credits.grant({ key: `${user}-g`, user, amount: 2 }, wait));
            applied(await credits.consume({ key: `${user}-c`, user, amount: 2 }, wait));
            const got = await eventually("the event, delivered again (XAUTOCLAIM, XPENDING)", async () =>
                r.seen.events.find((x) => x.event.user === user), 10000);
            assert.deepEqual([got.event.type, got.delivery.deliveries], ["balance_depleted", 2]);
            assert.deepEqual(await consumers(), ["acl"], "Redis makes a consumer when it first gets an entry");
            await eventually("acknowledged (XACK)", async () =>
                (Number(((await conn.xpending(stream, group)) as unknown[])[0]) === 0 ? true : null));
            assert.deepEqual(r.seen.errors.map((e) => (e.kind === "callback" ? `callback ${e.deliveries}` : `${e.kind}: ${String((e as { error?: unknown }).error)}`)),
                ["callback 1"], "no command refused");
        } finally {
            await sub.stop();
            await conn.call("ACL", "DELUSER", name);
        }
    });

    it("the client's subscriptions hold one connection each, and close() ends them", async () => {
        const c = new CreditsClient({ redis: redisUrl, prefix });
        const name = `ev-close-${run}`;
        const subs = await Promise.all([1, 2, 3].map((i) => c.subscribe({ group: `close-${run}-${i}`, connectionName: name, onEvent: () => undefined })));
        const count = async () => (await clientList(conn)).filter((x) => x.name === name).length;
        assert.equal(await count(), 3);
        await c.close();
        assert.ok(subs.every((s) => s.isStopped));
        await eventually("the connections closed", async () => ((await count()) === 0 ? true : null), 3000);
        await assert.rejects(c.subscribe({ group: "late", onEvent: () => undefined }), /closed/);
        assert.ok(!all.isStopped, "another client's subscription goes on");
    });
});
