// revision2.test.ts -- revision 2's seven job types (hold, capture,
// release, refund, revoke, grant, cancel) against the running worker, per
// sections 9.3 to 9.5 of the contract. Skipped only while the worker
// refuses the new types as unknown (revision2.ts asks it); from the day it
// knows them these tests run, and must pass.
//
// One user, one story: a 500-credit pack and a 1,000-credit month, then
// holds, captures, releases, refunds, grants, a revocation and a
// cancellation, each checked against the numbers the rules give.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { CreditsClient, type Balance } from "../src/index.js";
import { applied, prefix, redisUrl, rejected, runToken } from "./env.js";
import { revision2Pending } from "./revision2.js";

const DAY_MS = 86_400_000;

describe("revision 2 against the worker", { skip: revision2Pending }, () => {
    const run = runToken();
    const user = `r2-${run}`;
    const wait = { timeoutMs: 15000 };
    let conn: Redis;
    let credits: CreditsClient;
    const k = (name: string) => `r2-${run}-${name}`;
    const bal = (pack: number, monthly: number, grant: number, held: number): Balance =>
        ({ total: pack + monthly + grant, pack, monthly, grant, held });

    before(async () => {
        conn = new Redis(redisUrl);
        credits = new CreditsClient({ redis: conn, prefix });
        applied(await credits.purchase({ key: k("buy"), user, pack: "starter", paymentRef: k("pay") }, wait));
        const a = applied(await credits.allocate({ user, plan: "pro", period: "2026-11" }, wait));
        assert.deepEqual(a.balance, bal(500, 1000, 0, 0), "grant and held are in every balance map (9.5)");
    });
    after(async () => {
        await credits.close();
        conn.disconnect();
    });

    it("hold takes credits in the consume order and reports them as held", async () => {
        const h = applied(await credits.hold({ key: k("h1"), user, amount: 300, tool: "render", ref: "v1" }, wait));
        assert.equal(h.held, 300);
        assert.ok(Math.abs(h.hold_expires_at - h.done_at - 3600_000) <= 1000, "the default ttl is 3600 s");
        assert.deepEqual(h.balance, bal(200, 1000, 0, 300), "pack credits first");
    });

    it("capture charges the real cost and releases the rest; the hold is then closed", async () => {
        const c = applied(await credits.capture({ key: k("c1"), user, hold: k("h1"), amount: 200 }, wait));
        assert.equal(c.charged, 200);
        assert.equal(c.released, 100);
        assert.deepEqual(c.balance, bal(300, 1000, 0, 0));
        rejected(await credits.capture({ key: k("c1-again"), user, hold: k("h1"), amount: 1 }, wait), "hold_closed");
        rejected(await credits.release({ key: k("r1-late"), user, hold: k("h1") }, wait), "hold_closed");
        rejected(await credits.release({ key: k("r-none"), user, hold: k("no-such-hold") }, wait), "unknown_hold");
        rejected(await credits.capture({ key: k("c-other"), user: `${user}-other`, hold: k("h1"), amount: 1 }, wait),
            "unknown_hold");
    });

    it("release gives every credit of a hold back", async () => {
        const h = applied(await credits.hold({ key: k("h2"), user, amount: 100, ttlSeconds: 60 }, wait));
        assert.ok(Math.abs(h.hold_expires_at - h.done_at - 60_000) <= 1000);
        assert.deepEqual(h.balance, bal(200, 1000, 0, 100));
        const r = applied(await credits.release({ key: k("r2"), user, hold: k("h2") }, wait));
        assert.equal(r.released, 100);
        assert.deepEqual(r.balance, bal(300, 1000, 0, 0));
    });

    it("a capture above the hold is capture_exceeds_hold and changes nothing", async () => {
        applied(await credits.hold({ key: k("h3"), user, amount: 50 }, wait));
        const over = rejected(await credits.capture({ key: k("c3"), user, hold: k("h3"), amount: 60 }, wait),
            "capture_exceeds_hold");
        assert.equal(over.replayed, false);
        const r = applied(await credits.release({ key: k("r3"), user, hold: k("h3") }, wait));
        assert.deepEqual(r.balance, bal(300, 1000, 0, 0));
    });

    it("refund gives a charge back, in parts, never more than it spent", async () => {
        applied(await credits.consume({ key: k("spend"), user, amount: 40 }, wait));
        const part = applied(await credits.refund({ key: k("f1"), user, charge: k("spend"), amount: 10 }, wait));
        assert.equal(part.refunded, 10);
        assert.deepEqual(part.balance, bal(270, 1000, 0, 0));
        const rest = applied(await credits.refund({ key: k("f2"), user, charge: k("spend") }, wait));
        assert.equal(rest.refunded, 30, "no amount: all that is left");
        assert.deepEqual(rest.balance, bal(300, 1000, 0, 0));
        rejected(await credits.refund({ key: k("f3"), user, charge: k("spend") }, wait), "refund_exceeds_charge");
        rejected(await credits.refund({ key: k("f4"), user, charge: k("no-such-charge"), amount: 1 }, wait),
            "unknown_charge");
    });

    it("grant adds a grant lot, expiring only with valid_days", async () => {
        const g = applied(await credits.grant({ key: k("g1"), user, amount: 50, validDays: 30, reason: "support" }, wait));
        assert.equal(g.granted, 50);
        assert.ok(g.expires_at !== undefined && Math.abs(g.expires_at - g.done_at - 30 * DAY_MS) <= 1000);
        assert.deepEqual(g.balance, bal(300, 1000, 50, 0));
        const forever = applied(await credits.grant({ key: k("g2"), user, amount: 20 }, wait));
        assert.equal(forever.expires_at, undefined);
        assert.deepEqual(forever.balance, bal(300, 1000, 70, 0));
    });

    it("revoke takes a purchase's credits back, once", async () => {
        const r = applied(await credits.revoke({ key: k("rv1"), user, paymentRef: k("pay") }, wait));
        assert.equal(r.revoked, 300);
        assert.deepEqual(r.balance, bal(0, 1000, 70, 0));
        rejected(await credits.revoke({ key: k("rv2"), user, paymentRef: k("pay") }, wait), "already_revoked");
        rejected(await credits.revoke({ key: k("rv3"), user, paymentRef: k("no-such-payment") }, wait), "unknown_payment");
    });

    it("cancel ends the plan and, with forfeit, the monthly credits", async () => {
        const c = applied(await credits.cancel({ key: k("x1"), user, forfeit: true }, wait));
        assert.equal(c.forfeited, 1000);
        assert.deepEqual(c.balance, bal(0, 0, 70, 0));
        rejected(await credits.cancel({ key: k("x2"), user }, wait), "no_plan");
    });

    it("a hold over the balance is insufficient_credits, with the balance", async () => {
        const r = rejected(await credits.hold({ key: k("h4"), user, amount: 1000 }, wait), "insufficient_credits");
        assert.deepEqual(r.balance, bal(0, 0, 70, 0));
    });
});
