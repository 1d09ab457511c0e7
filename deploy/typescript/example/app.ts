// app.ts -- an example backend for a credits product, on Node's built-in
// http module: the routes such a product needs.
//
//   POST /tools/:tool/runs     run a tool for a user, paid in credits: a hold
//                              of its price at the start, a capture of the
//                              real cost at the end, a release if it fails
//                              (header Idempotency-Key, body {user, input})
//   POST /webhooks/payment     the payment provider's webhook: a captured
//                              payment grants a pack, a refunded one revokes
//                              it (body {type, event_id, capture_id, user, pack})
//   POST /cron/monthly         the monthly run: allocate every subscribed
//                              account's plan (body {period: "YYYY-MM"})
//   GET  /users/:user/balance  the balance, open holds, what expires soon,
//                              and with the events subscriber the
//                              low-credits banner (credits-events.ts)
//   GET  /users/:user/history  one page of history, one line per job
//                              (?before=CURSOR&limit=N)
//   POST /support/grants       goodwill credits (body {ticket, user, amount, reason, valid_days?})
//   POST /support/refunds      give a run's credits back (body {ticket, user, run, amount?})
//
// A real app takes the user from its session, checks the webhook's
// signature and keeps each run (its key, state and output) in its own
// table; here they come from the request or the ledger, to keep the example
// short. An app imports these names from "@credits-worker/client" and
// "@credits-worker/client/drizzle"; the example sits inside the package.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { and, asc, eq, gt, isNotNull } from "drizzle-orm";
import type pg from "pg";
import {
    CreditsClient,
    CreditsIdConflictError,
    CreditsTimeoutError,
    CreditsValidationError,
} from "../src/index.js";
import {
    accounts, type CreditsDatabase, holds, jobs, readBalance, readExpiringSoon, readHistoryPage, readOpenHolds,
} from "../drizzle/index.js";
import { readBanner } from "./credits-events.js";

export interface Tool {
    /** Credits one run costs at most: held when the run starts. */
    price: number;
    /**
     * The longest a run takes, in seconds (1 to 604800; default 3600): the
     * hold's ttl. A run still going after it finds its hold expired, its
     * credits back with the user.
     */
    maxSeconds?: number;
    /** Runs the tool; resolves with its real cost (at most `price`: more is not charged) and its output. */
    run(input: unknown): Promise<{ cost: number; output: unknown }>;
}

export interface AppOptions {
    credits: CreditsClient;
    db: CreditsDatabase;
    tools: Record<string, Tool>;
    /** How long a route waits for the worker's decision (default 10000 ms). */
    timeoutMs?: number;
    /**
     * The app's own tables that the events subscriber keeps
     * (credits-events.ts): given, the balance route shows the banner.
     */
    appDb?: pg.Pool;
}

class HttpError extends Error {
    constructor(readonly status: number, readonly body: Record<string, unknown>) {
        super(String(body.message ?? body.error));
    }
}

const BODY_MAX = 64 * 1024;

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > BODY_MAX) throw new HttpError(413, { error: "body_too_large", message: `the body is over ${BODY_MAX} bytes` });
        chunks.push(chunk as Buffer);
    }
    try {
        const body: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
        if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("not an object");
        return body as Record<string, unknown>;
    } catch {
        throw new HttpError(400, { error: "invalid_json", message: "the body must be a JSON object" });
    }
}

function field(body: Record<string, unknown>, name: string): string {
    const v = body[name];
    if (typeof v !== "string" || v === "")
        throw new HttpError(400, { error: "invalid_request", field: name, message: `${name} must be a non-empty string` });
    return v;
}

function optionalInt(body: Record<string, unknown>, name: string): number | undefined {
    const v = body[name];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v))
        throw new HttpError(400, { error: "invalid_request", field: name, message: `${name} must be a whole number` });
    return v;
}

function send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
}

/**
 * A run's key and the keys of the jobs that settle it: the capture or the
 * release, and a late consume (below). Each is the run's key and a suffix,
 * so every retry of the run finds the same jobs.
 */
const runKeys = (key: string) => ({
    hold: key, capture: `${key}:capture`, release: `${key}:release`, late: `${key}:late`,
});
/** Room for the longest suffix within the contract's 128 characters. */
const RUN_KEY_RE = /^[\x21-\x7e]{1,100}$/;

export function createApp(options: AppOptions): Server {
    const { credits, db, tools } = options;
    const wait = { timeoutMs: options.timeoutMs ?? 10_000 };

    /** POST /tools/:tool/runs -- hold the price, run, capture the real cost (release on failure). */
    async function runTool(req: IncomingMessage, toolName: string) {
        const tool = tools[toolName];
        if (!tool) throw new HttpError(404, { error: "unknown_tool", message: `no tool ${toolName}` });
        const key = req.headers["idempotency-key"];
        if (typeof key !== "string" || !RUN_KEY_RE.test(key))
            throw new HttpError(400, { error: "invalid_request", field: "Idempotency-Key", message: "the Idempotency-Key header is required: 1 to 100 printable ASCII characters, one per run, the same on every retry of it" });
        const body = await readJson(req);
        const user = field(body, "user");
        const keys = runKeys(key);

        const hold = await credits.hold({ key: keys.hold, user, amount: tool.price, tool: toolName,
            ...(tool.maxSeconds === undefined ? {} : { ttlSeconds: tool.maxSeconds }) }, wait);
        if (hold.status === "rejected")
            throw new HttpError(402, {
                error: "insufficient_credits", balance: hold.balance,
                message: "not enough credits; this Idempotency-Key now answers this refusal forever: after buying credits, start the run again with a new key",
            });
        if (hold.replayed) return replayedRun(key, hold.id);

        const done = await tool.run(body.input).then((d) => d, () => null);
        if (!done) {
            const released = await credits.release({ key: keys.release, user, hold: hold.id }, wait);
            // hold_expired: the run outlived its hold, whose expiry gave the credits back already.
            throw new HttpError(502, {
                error: "tool_failed", run: key, released: released.status === "applied" ? released.released : hold.held,
                message: "the tool failed; the credits it held are back",
            });
        }
        const cost = Math.max(0, Math.min(done.cost, tool.price));
        const captured = await credits.capture({ key: keys.capture, user, hold: hold.id, amount: cost }, wait);
        if (captured.status === "applied")
            return { status: 200, body: { run: key, charged: captured.charged, released: captured.released, balance: captured.balance, output: done.output } };
        if (captured.error !== "hold_expired")
            // unknown_hold, hold_closed: another request settled this run; capture_exceeds_hold cannot happen (cost <= price).
            throw new HttpError(409, { error: captured.error, run: key, message: captured.message });
        // The run outlived its hold: its credits went back to the user. Charge
        // the real cost now, under a key of its own (it may be refused).
        if (cost === 0) return { status: 200, body: { run: key, charged: 0, late: true, output: done.output } };
        const late = await credits.consume({ key: keys.late, user, amount: cost, tool: toolName }, wait);
        return {
            status: 200,
            body: late.status === "applied"
                ? { run: key, charged: late.charged, late: true, balance: late.balance, output: done.output }
                : { run: key, charged: 0, late: true, unpaid: true, balance: late.balance, output: done.output },
        };
    }

    /** A retry of a run whose hold was decided before: how that run stands, from credits.holds and credits.jobs. */
    async function replayedRun(key: string, holdId: string) {
        const [row] = await db.select({ status: holds.status, captured: holds.captured, expiresAt: holds.expiresAt })
            .from(holds).where(eq(holds.holdId, holdId));
        const state = row?.status === "open" && row.expiresAt.getTime() <= Date.now() ? "expired" : row?.status;
        if (state === "expired") {
            // It may have finished after all, and paid with a late consume.
            const [late] = await db.select({ status: jobs.status }).from(jobs)
                .where(eq(jobs.jobId, credits.jobId("consume", runKeys(key).late)));
            if (late?.status === "applied") return { status: 200, body: { run: key, state: "done", late: true, replayed: true } };
        }
        switch (state) {
        case "open":
            return { status: 202, body: { run: key, state: "running", replayed: true } };
        case "captured":
            return { status: 200, body: { run: key, state: "done", charged: row?.captured ?? 0, replayed: true } };
        case "released":
            return { status: 502, body: { run: key, state: "failed", error: "tool_failed", replayed: true, message: "the tool failed; the credits it held are back" } };
        default:
            // The run never settled (the process running it stopped) and its hold expired.
            return { status: 409, body: { run: key, state: "expired", error: "run_expired", replayed: true, message: "this run never finished and its credits are back; start it again with a new Idempotency-Key" } };
        }
    }

    /** POST /webhooks/payment: answer 2xx only once the worker decided, so that the provider retries otherwise. */
    async function paymentWebhook(req: IncomingMessage) {
        const body = await readJson(req);
        const type = body.type ?? "payment.captured";
        const key = field(body, "event_id");
        const user = field(body, "user");
        const paymentRef = field(body, "capture_id");
        // A rejection is final: 200, so that the provider stops retrying.
        if (type === "payment.refunded") {
            // A refund or a chargeback: take back what is left of the pack.
            const r = await credits.revoke({ key, user, paymentRef }, wait);
            if (r.status === "rejected") return { status: 200, body: { status: "rejected", error: r.error, message: r.message } };
            return { status: 200, body: { status: "applied", revoked: r.revoked, balance: r.balance, replayed: r.replayed } };
        }
        if (type !== "payment.captured")
            throw new HttpError(400, { error: "invalid_request", field: "type", message: "type is payment.captured or payment.refunded" });
        const r = await credits.purchase({ key, user, pack: field(body, "pack"), paymentRef }, wait);
        // duplicate_payment: this payment granted credits already; unknown_pack: the catalog lacks a pack the shop sells.
        if (r.status === "rejected") return { status: 200, body: { status: "rejected", error: r.error, message: r.message } };
        return { status: 200, body: { status: "applied", granted: r.granted, expires_at: r.expires_at, replayed: r.replayed } };
    }

    /** POST /cron/monthly: allocate(plan, period) for every account with a plan, under alloc:{user}:{period}. */
    async function monthly(req: IncomingMessage) {
        const body = await readJson(req);
        const period = field(body, "period");
        const tally = { period, accounts: 0, applied: 0, replayed: 0, rejected: {} as Record<string, number> };
        // Page through the subscribed accounts by user_id; allocate a page at a time.
        for (let after = ""; ;) {
            const page = await db.select({ user: accounts.userId, plan: accounts.planId }).from(accounts)
                .where(and(isNotNull(accounts.planId), gt(accounts.userId, after)))
                .orderBy(asc(accounts.userId)).limit(200);
            if (page.length === 0) break;
            after = page.at(-1)?.user ?? after;
            const results = await Promise.all(page.map((a) =>
                credits.allocate({ user: a.user, plan: a.plan ?? "", period }, wait)));
            for (const r of results) {
                tally.accounts++;
                if (r.status === "applied") r.replayed ? tally.replayed++ : tally.applied++;
                else tally.rejected[r.error] = (tally.rejected[r.error] ?? 0) + 1;
            }
        }
        return { status: 200, body: tally };
    }

    /** POST /support/grants: goodwill credits, once per support ticket. */
    async function supportGrant(req: IncomingMessage) {
        const body = await readJson(req);
        const validDays = optionalInt(body, "valid_days");
        const amount = optionalInt(body, "amount");
        if (amount === undefined) throw new HttpError(400, { error: "invalid_request", field: "amount", message: "amount is required" });
        const r = await credits.grant({
            key: `support:${field(body, "ticket")}:grant`, user: field(body, "user"), amount,
            reason: field(body, "reason"), ...(validDays === undefined ? {} : { validDays }),
        }, wait);
        // A grant is never rejected by the ledger.
        return { status: 200, body: { granted: r.granted, expires_at: r.expires_at ?? null, balance: r.balance, replayed: r.replayed } };
    }

    /** POST /support/refunds: give back credits a run was charged (all that is left, or `amount`). */
    async function supportRefund(req: IncomingMessage) {
        const body = await readJson(req);
        const user = field(body, "user");
        const run = field(body, "run");
        const amount = optionalInt(body, "amount");
        const key = `support:${field(body, "ticket")}:refund`;
        // The run's charge is its capture, or its late consume when the hold expired first.
        let r = await credits.refund({ key, user, charge: credits.jobId("capture", runKeys(run).capture), ...(amount === undefined ? {} : { amount }) }, wait);
        if (r.status === "rejected" && r.error === "unknown_charge")
            r = await credits.refund({ key: `${key}:late`, user, charge: credits.jobId("consume", runKeys(run).late), ...(amount === undefined ? {} : { amount }) }, wait);
        if (r.status === "rejected") return { status: 409, body: { error: r.error, message: r.message } };
        return { status: 200, body: { refunded: r.refunded, balance: r.balance, replayed: r.replayed } };
    }

    async function balance(user: string) {
        const [now, soon, open] = await Promise.all([readBalance(db, user), readExpiringSoon(db, user), readOpenHolds(db, user)]);
        const banner = options.appDb ? { banner: await readBanner(options.appDb, user, now.total) } : {};
        return {
            status: 200,
            body: {
                ...banner,
                user, total: now.total, pack: now.pack, monthly: now.monthly, grant: now.grant, held: now.held,
                nextExpiry: now.nextExpiryAt && { at: now.nextExpiryAt.toISOString(), credits: now.nextExpiryCredits },
                expiringSoon: soon && { at: soon.expiresAt.toISOString(), credits: soon.credits },
                holds: open.map((h) => ({ run: h.holdId, credits: h.amount, tool: h.tool, expiresAt: h.expiresAt.toISOString() })),
            },
        };
    }

    async function history(user: string, query: URLSearchParams) {
        const before = query.get("before");
        const limit = query.get("limit");
        const options: { before?: number; limit?: number } = {};
        if (before !== null) options.before = Number(before);
        if (limit !== null) options.limit = Number(limit);
        const page = await readHistoryPage(db, user, options).catch((e: unknown) => {
            throw e instanceof RangeError ? new HttpError(400, { error: "invalid_request", message: e.message }) : e;
        });
        return { status: 200, body: { user, jobs: page.jobs, next: page.next } };
    }

    async function route(req: IncomingMessage): Promise<{ status: number; body: unknown }> {
        const url = new URL(req.url ?? "/", "http://localhost");
        const path = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
        if (req.method === "POST" && path[0] === "tools" && path[2] === "runs" && path.length === 3)
            return runTool(req, path[1] ?? "");
        if (req.method === "POST" && url.pathname === "/webhooks/payment") return paymentWebhook(req);
        if (req.method === "POST" && url.pathname === "/cron/monthly") return monthly(req);
        if (req.method === "POST" && url.pathname === "/support/grants") return supportGrant(req);
        if (req.method === "POST" && url.pathname === "/support/refunds") return supportRefund(req);
        if (req.method === "GET" && path[0] === "users" && path.length === 3 && path[2] === "balance")
            return balance(path[1] ?? "");
        if (req.method === "GET" && path[0] === "users" && path.length === 3 && path[2] === "history")
            return history(path[1] ?? "", url.searchParams);
        throw new HttpError(404, { error: "not_found", message: `no route ${req.method} ${url.pathname}` });
    }

    return createServer((req, res) => {
        route(req).then(({ status, body }) => send(res, status, body), (e: unknown) => {
            if (e instanceof HttpError) return send(res, e.status, e.body);
            if (e instanceof CreditsValidationError)
                return send(res, 400, { error: "invalid_request", field: e.field, message: e.message });
            if (e instanceof CreditsIdConflictError)
                return send(res, 409, { error: "idempotency_key_reused", message: e.message });
            if (e instanceof CreditsTimeoutError)
                // Not a failure: the job is queued. The caller retries with the same key.
                return send(res, 503, { error: "pending", job: e.jobId, message: "not decided yet: send the same request again with the same Idempotency-Key" });
            console.error(e);
            send(res, 500, { error: "internal" });
        });
    });
}
