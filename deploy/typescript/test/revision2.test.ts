// revision2.test.ts -- revision 2's seven job types (hold, capture,
// release, refund, revoke, grant, cancel) against the running worker, per
// sections 9.3 to 9.5 of the contract: each applied, each of its stored
// rejections, replays, and the balance's five keys after every decision.
//
// One user, one story: a 500-credit pack and a 1,000-credit month, then
// holds, captures, releases, refunds, grants, a revocation and a
// cancellation, each checked against the numbers the rules give. The
// expiry, conflict and replay cases use users of their own.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import pg from "pg";
import { CreditsIdConflictError, CreditsClient } from "../src/index.js";
import { applied, bal, databaseUri, needsWorker, prefix, redisUrl, rejected, runToken, sleep } from "./env.js";

const DAY_MS = 86_400_000;

describe("revision 2 against the worker", needsWorker, () => {
    const run = runToken();
    const user = `r2-${run}`;
    const wait = { timeoutMs: 15000 };
    let conn: Redis;
    let db: pg.Pool;
    let credits: CreditsClient;
    const k = (name: string) => `r2-${run}-${name}`;

    before(async () => {
        conn = new Redis(redisUrl);
        db = new pg.Pool({ connectionString: databaseUri });
        credits = new CreditsClient({ redis: conn, prefix });
        applied(await credits.purchase({ key: k("buy"), user, pack: "starter", paymentRef: k("pay") }, wait));
        const a = applied(await credits.allocate({ user, plan: "pro", period: "2026-11" }, wait));
        assert.deepEqual(a.balance, bal(500, 1000), "grant and held are in every balance map (9.5)");
    });
    after(async () => {
        await credits.close();
        conn.disconnect();
        await db.end();
    });

    it("hold takes credits in the consume order and reports them as held; a retry holds nothing more", async () => {
        const req = { key: k("h1"), user, amount: 300, tool: "render", ref: "v1" };
        const h = applied(await credits.hold(req, wait));
        assert.equal(h.held, 300);
        assert.ok(Math.abs(h.hold_expires_at - h.done_at - 3600_000) <= 1000, "the default ttl is 3600 s");
        assert.deepEqual(h.balance, bal(200, 1000, 0, 300), "pack credits first");
        const again = applied(await credits.hold(req, wait));
        assert.deepEqual([again.replayed, again.done_at, again.balance], [true, h.done_at, h.balance]);
        const { rows } = await db.query(
            "SELECT status, amount::int, tool, ref FROM credits.holds WHERE hold_id = $1", [k("h1")]);
        assert.deepEqual(rows, [{ status: "open", amount: 300, tool: "render", ref: "v1" }]);
    });

    it("capture charges the real cost and releases the rest; the hold is then closed", async () => {
        const c = applied(await credits.capture({ key: k("c1"), user, hold: k("h1"), amount: 200 }, wait));
        assert.equal(c.charged, 200);
        assert.equal(c.released, 100);
        assert.deepEqual(c.balance, bal(300, 1000));
        rejected(await credits.capture({ key: k("c1-again"), user, hold: k("h1"), amount: 1 }, wait), "hold_closed");
        rejected(await credits.release({ key: k("r1-late"), user, hold: k("h1") }, wait), "hold_closed");
        rejected(await credits.release({ key: k("r-none"), user, hold: k("no-such-hold") }, wait), "unknown_hold");
        const other = rejected(await credits.capture({ key: k("c-other"), user: `${user}-other`, hold: k("h1"), amount: 1 }, wait),
            "unknown_hold");
        assert.equal(other.balance, undefined, "only insufficient_credits carries a balance");
        const { rows } = await db.query(
            "SELECT status, captured::int, closed_by FROM credits.holds WHERE hold_id = $1", [k("h1")]);
        assert.deepEqual(rows, [{ status: "captured", captured: 200, closed_by: k("c1") }]);
    });

    it("release gives every credit of a hold back", async () => {
        const h = applied(await credits.hold({ key: k("h2"), user, amount: 100, ttlSeconds: 60 }, wait));
        assert.ok(Math.abs(h.hold_expires_at - h.done_at - 60_000) <= 1000);
        assert.deepEqual(h.balance, bal(200, 1000, 0, 100));
        const r = applied(await credits.release({ key: k("r2"), user, hold: k("h2") }, wait));
        assert.equal(r.released, 100);
        assert.deepEqual(r.balance, bal(300, 1000));
    });

    it("a capture above the hold is capture_exceeds_hold and changes nothing; a capture of 0 releases all", async () => {
        applied(await credits.hold({ key: k("h3"), user, amount: 50 }, wait));
        const over = rejected(await credits.capture({ key: k("c3"), user, hold: k("h3"), amount: 60 }, wait),
            "capture_exceeds_hold");
        assert.equal(over.replayed, false);
        const zero = applied(await credits.capture({ key: k("c3-zero"), user, hold: k("h3"), amount: 0 }, wait));
        assert.deepEqual([zero.charged, zero.released, zero.balance], [0, 50, bal(300, 1000)]);
    });

    it("refund gives a consume back, in parts, never more than it spent", async () => {
        applied(await credits.consume({ key: k("spend"), user, amount: 40 }, wait));
        const part = applied(await credits.refund({ key: k("f1"), user, charge: k("spend"), amount: 10 }, wait));
        assert.equal(part.refunded, 10);
        assert.deepEqual(part.balance, bal(270, 1000));
        rejected(await credits.refund({ key: k("f1-over"), user, charge: k("spend"), amount: 31 }, wait),
            "refund_exceeds_charge");
        const rest = applied(await credits.refund({ key: k("f2"), user, charge: k("spend") }, wait));
        assert.equal(rest.refunded, 30, "no amount: all that is left");
        assert.deepEqual(rest.balance, bal(300, 1000));
        rejected(await credits.refund({ key: k("f3"), user, charge: k("spend") }, wait), "refund_exceeds_charge");
        rejected(await credits.refund({ key: k("f4"), user, charge: k("no-such-charge"), amount: 1 }, wait),
            "unknown_charge");
        rejected(await credits.refund({ key: k("f5"), user: `${user}-other`, charge: k("spend") }, wait),
            "unknown_charge", "another user's charge counts as none");
        rejected(await credits.refund({ key: k("f6"), user, charge: k("h1") }, wait), "unknown_charge",
            "a hold is not a charge");
    });

    it("refund gives a capture back: what its hold took and did not give back", async () => {
        // The capture c1 charged 200 of the 300 held by h1.
        rejected(await credits.refund({ key: k("fc-over"), user, charge: k("c1"), amount: 201 }, wait),
            "refund_exceeds_charge");
        const r = applied(await credits.refund({ key: k("fc"), user, charge: k("c1"), amount: 200 }, wait));
        assert.equal(r.refunded, 200);
        assert.deepEqual(r.balance, bal(500, 1000), "back in the pack it came from");
        const { rows } = await db.query(
            "SELECT kind, origin, sum(delta)::int AS delta FROM credits.entries WHERE job_id = $1 GROUP BY kind, origin", [k("fc")]);
        assert.deepEqual(rows, [{ kind: "refund", origin: k("c1"), delta: 200 }]);
    });

    it("grant adds a grant lot, expiring only with valid_days", async () => {
        const g = applied(await credits.grant({ key: k("g1"), user, amount: 50, validDays: 30, reason: "support" }, wait));
        assert.equal(g.granted, 50);
        assert.ok(g.expires_at !== undefined && Math.abs(g.expires_at - g.done_at - 30 * DAY_MS) <= 1000);
        assert.deepEqual(g.balance, bal(500, 1000, 50));
        const forever = applied(await credits.grant({ key: k("g2"), user, amount: 20 }, wait));
        assert.equal(forever.expires_at, undefined);
        assert.deepEqual(forever.balance, bal(500, 1000, 70));
        const { rows } = await db.query("SELECT kind, expires_at IS NULL AS forever FROM credits.lots WHERE job_id = $1", [k("g2")]);
        assert.deepEqual(rows, [{ kind: "grant", forever: true }]);
    });

    it("revoke takes a purchase's credits back, once", async () => {
        // Lots that expire go first, soonest first: 50 from the 30-day grant, then 50 from the 90-day pack.
        const spent = applied(await credits.consume({ key: k("spend-2"), user, amount: 100 }, wait));
        assert.deepEqual(spent.balance, bal(450, 1000, 20));
        const r = applied(await credits.revoke({ key: k("rv1"), user, paymentRef: k("pay") }, wait));
        assert.equal(r.revoked, 450, "what was left of the pack; the 50 spent stay spent");
        assert.deepEqual(r.balance, bal(0, 1000, 20));
        rejected(await credits.revoke({ key: k("rv2"), user, paymentRef: k("pay") }, wait), "already_revoked");
        rejected(await credits.revoke({ key: k("rv3"), user, paymentRef: k("no-such-payment") }, wait), "unknown_payment");
        rejected(await credits.revoke({ key: k("rv4"), user: `${user}-other`, paymentRef: k("pay") }, wait), "unknown_payment");
    });

    it("a refund into a revoked pack leaves it again at once: refunded counts it, the balance does not", async () => {
        // spend-2's 50 from the pack (taken last, given back first) go back
        // to a revoked lot and leave it again; the grant's 50 are usable.
        const r = applied(await credits.refund({ key: k("f-revoked"), user, charge: k("spend-2") }, wait));
        assert.equal(r.refunded, 100);
        assert.deepEqual(r.balance, bal(0, 1000, 70));
        const { rows } = await db.query(
            "SELECT kind, origin, delta::int FROM credits.entries WHERE job_id = $1 ORDER BY entry_id", [k("f-revoked")]);
        assert.deepEqual(rows.map((e: { kind: string; delta: number }) => [e.kind, e.delta]),
            [["refund", 50], ["revoke", -50], ["refund", 50]]);
        assert.ok(rows.every((e: { origin: string }) => e.origin === k("spend-2")), "every entry names the charge");
    });

    it("cancel ends the plan and, with forfeit, the monthly credits", async () => {
        const c = applied(await credits.cancel({ key: k("x1"), user, forfeit: true }, wait));
        assert.equal(c.forfeited, 1000);
        assert.deepEqual(c.balance, bal(0, 0, 70));
        rejected(await credits.cancel({ key: k("x2"), user }, wait), "no_plan");
        const { rows } = await db.query("SELECT plan_id FROM credits.accounts WHERE user_id = $1", [user]);
        assert.deepEqual(rows, [{ plan_id: null }]);
    });

    it("cancel without forfeit keeps the monthly credits; a later allocate subscribes again", async () => {
        const other = `${user}-sub`;
        applied(await credits.allocate({ user: other, plan: "pro", period: "2026-11" }, wait));
        const c = applied(await credits.cancel({ key: k("x3"), user: other }, wait));
        assert.deepEqual([c.forfeited, c.balance], [0, bal(0, 1000)]);
        const again = applied(await credits.allocate({ user: other, plan: "pro", period: "2026-12" }, wait));
        assert.deepEqual(again.balance, bal(0, 2000));
    });

    it("a hold over the balance is insufficient_credits, with the balance", async () => {
        const r = rejected(await credits.hold({ key: k("h4"), user, amount: 1000 }, wait), "insufficient_credits");
        assert.deepEqual(r.balance, bal(0, 0, 70));
    });

    it("an expired hold is hold_expired for its capture and its release; its credits are back", async () => {
        const u = `${user}-exp`;
        applied(await credits.grant({ key: k("exp-g"), user: u, amount: 100 }, wait));
        applied(await credits.hold({ key: k("exp-h1"), user: u, amount: 30, ttlSeconds: 1 }, wait));
        const h2 = applied(await credits.hold({ key: k("exp-h2"), user: u, amount: 20, ttlSeconds: 1 }, wait));
        assert.deepEqual(h2.balance, bal(0, 0, 50, 50));
        await sleep(1500);
        const c = rejected(await credits.capture({ key: k("exp-c1"), user: u, hold: k("exp-h1"), amount: 30 }, wait),
            "hold_expired");
        assert.match(c.message, /expired/);
        rejected(await credits.release({ key: k("exp-r2"), user: u, hold: k("exp-h2") }, wait), "hold_expired");
        const after = applied(await credits.grant({ key: k("exp-g2"), user: u, amount: 1 }, wait));
        assert.deepEqual(after.balance, bal(0, 0, 101, 0), "both holds released by their expiry");
        const { rows } = await db.query(
            "SELECT hold_id, status, closed_by FROM credits.holds WHERE user_id = $1 ORDER BY hold_id", [u]);
        assert.deepEqual(rows, [
            { hold_id: k("exp-h1"), status: "expired", closed_by: null },
            { hold_id: k("exp-h2"), status: "expired", closed_by: null },
        ]);
    });

    it("a stored rejection replays forever under its key: the retry after buying credits needs a new key", async () => {
        const u = `${user}-poor`;
        const first = rejected(await credits.hold({ key: k("poor-h"), user: u, amount: 80 }, wait), "insufficient_credits");
        assert.deepEqual(first.balance, bal(0, 0));
        applied(await credits.grant({ key: k("poor-g"), user: u, amount: 100, reason: "goodwill" }, wait));
        const replay = rejected(await credits.hold({ key: k("poor-h"), user: u, amount: 80 }, wait), "insufficient_credits");
        assert.deepEqual([replay.replayed, replay.done_at, replay.balance], [true, first.done_at, bal(0, 0)],
            "the stored decision, balance and all");
        const fresh = applied(await credits.hold({ key: k("poor-h2"), user: u, amount: 80 }, wait));
        assert.deepEqual(fresh.balance, bal(0, 0, 20, 80));
    });

    it("the same key with other fields is id_conflict, for the new types too", async () => {
        const u = `${user}-conflict`;
        applied(await credits.grant({ key: k("cf-g"), user: u, amount: 10 }, wait));
        await assert.rejects(credits.grant({ key: k("cf-g"), user: u, amount: 11 }, wait), CreditsIdConflictError);
        await assert.rejects(credits.grant({ key: k("cf-g"), user: u, amount: 10, reason: "x" }, wait),
            CreditsIdConflictError, "an absent optional key and a present one differ");
        await assert.rejects(credits.cancel({ key: k("cf-g"), user: u }, wait), CreditsIdConflictError,
            "another type on the same stream");
        const r = applied(await credits.grant({ key: k("cf-g"), user: u, amount: 10 }, wait));
        assert.equal(r.replayed, true, "the stored decision stays the first job's");
    });
});
