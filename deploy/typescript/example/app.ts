// app.ts -- an example backend for a credits product, on Node's built-in
// http module: the five routes such a product needs.
//
//   POST /tools/:tool/runs     run a tool for a user, paid in credits
//                              (header Idempotency-Key, body {user, input})
//   POST /webhooks/payment     the payment provider's webhook: grant a pack
//                              (body {event_id, capture_id, user, pack})
//   POST /cron/monthly         the monthly run: allocate every subscribed
//                              account's plan (body {period: "YYYY-MM"})
//   GET  /users/:user/balance  usable credits, and those expiring soon
//   GET  /users/:user/history  one page of entries (?before=CURSOR&limit=N)
//
// A real app takes the user from its session and checks the webhook's
// signature; here they come from the request, to keep the example short.
// An app imports these names from "@credits-worker/client" and
// "@credits-worker/client/drizzle"; the example sits inside the package.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { and, asc, gt, isNotNull } from "drizzle-orm";
import {
    CreditsClient,
    CreditsIdConflictError,
    CreditsTimeoutError,
    CreditsValidationError,
} from "../src/index.js";
import { accounts, type CreditsDatabase, readBalance, readExpiringSoon, readHistoryPage } from "../drizzle/index.js";

export interface Tool {
    /** Credits one run costs at most: consumed up front, or held and then captured at the real cost. */
    price: number;
    /** Runs the tool; resolves with its real cost (at most `price`) and its output. */
    run(input: unknown): Promise<{ cost: number; output: unknown }>;
}

export interface AppOptions {
    credits: CreditsClient;
    db: CreditsDatabase;
    tools: Record<string, Tool>;
    /**
     * Pay for runs with a hold and a capture (revision 2 of the contract):
     * the real cost is charged when the run ends, a failed run costs
     * nothing. false: consume the price before the run (contract v1).
     */
    holds: boolean;
    /** How long a route waits for the worker's decision (default 10000 ms). */
    timeoutMs?: number;
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

function send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
}

export function createApp(options: AppOptions): Server {
    const { credits, db, tools, holds } = options;
    const wait = { timeoutMs: options.timeoutMs ?? 10_000 };

    /** POST /tools/:tool/runs */
    async function runTool(req: IncomingMessage, toolName: string) {
        const tool = tools[toolName];
        if (!tool) throw new HttpError(404, { error: "unknown_tool", message: `no tool ${toolName}` });
        const key = req.headers["idempotency-key"];
        if (typeof key !== "string" || key === "")
            throw new HttpError(400, { error: "invalid_request", field: "Idempotency-Key", message: "the Idempotency-Key header is required: one per run, the same on every retry of it" });
        const body = await readJson(req);
        const user = field(body, "user");
        const spend = { key, user, amount: tool.price, tool: toolName };
        const outOfCredits = (balance: unknown) => new HttpError(402, {
            error: "insufficient_credits", balance,
            message: "not enough credits; this Idempotency-Key now answers this refusal forever: after buying credits, try again with a new key",
        });

        if (!holds) {
            const paid = await credits.consume(spend, wait);
            if (paid.status === "rejected") throw outOfCredits(paid.balance);
            // A replay: an earlier attempt of this run was charged and started the tool.
            if (paid.replayed) return { status: 200, body: { run: key, charged: paid.charged, balance: paid.balance, replayed: true } };
            const done = await tool.run(body.input).catch(() => null);
            if (!done) throw new HttpError(502, { error: "tool_failed", charged: paid.charged, message: "the tool failed after the credits were spent" });
            return { status: 200, body: { run: key, charged: paid.charged, balance: paid.balance, output: done.output } };
        }

        const hold = await credits.hold(spend, wait);
        if (hold.status === "rejected") throw outOfCredits(hold.balance);
        const captureKey = `${key}:capture`;
        const releaseKey = `${key}:release`;
        if (hold.replayed) {
            // An earlier attempt holds the credits: report how it ended, or that it runs.
            const ended = await credits.getResult(credits.jobId("capture", captureKey)) ??
                await credits.getResult(credits.jobId("release", releaseKey));
            return ended ? { status: 200, body: { run: key, ended, replayed: true } }
                : { status: 202, body: { run: key, status: "running", replayed: true } };
        }
        const done = await tool.run(body.input).catch(() => null);
        if (!done) {
            const released = await credits.release({ key: releaseKey, user, hold: hold.id }, wait);
            throw new HttpError(502, { error: "tool_failed", released: released.status === "applied" ? released.released : 0, message: "the tool failed; its credits were given back" });
        }
        const captured = await credits.capture({ key: captureKey, user, hold: hold.id, amount: Math.min(done.cost, tool.price) }, wait);
        if (captured.status === "rejected")
            throw new HttpError(409, { error: captured.error, message: captured.message });
        return { status: 200, body: { run: key, charged: captured.charged, released: captured.released, balance: captured.balance, output: done.output } };
    }

    /** POST /webhooks/payment: answer 2xx only once the worker decided, so that the provider retries otherwise. */
    async function paymentWebhook(req: IncomingMessage) {
        const body = await readJson(req);
        const r = await credits.purchase({
            key: field(body, "event_id"), user: field(body, "user"), pack: field(body, "pack"),
            paymentRef: field(body, "capture_id"),
        }, wait);
        // A rejection (duplicate_payment, unknown_pack) is final: 200, so the
        // provider stops retrying; unknown_pack means the catalog lacks a pack the shop sells.
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

    async function balance(user: string) {
        const [now, soon] = await Promise.all([readBalance(db, user), readExpiringSoon(db, user)]);
        return {
            status: 200,
            body: { user, ...now, expiringSoon: soon.map((l) => ({ credits: l.remaining, expiresAt: l.expiresAt.toISOString() })) },
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
        return { status: 200, body: { user, ...page } };
    }

    async function route(req: IncomingMessage): Promise<{ status: number; body: unknown }> {
        const url = new URL(req.url ?? "/", "http://localhost");
        const path = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
        if (req.method === "POST" && path[0] === "tools" && path[2] === "runs" && path.length === 3)
            return runTool(req, path[1] ?? "");
        if (req.method === "POST" && url.pathname === "/webhooks/payment") return paymentWebhook(req);
        if (req.method === "POST" && url.pathname === "/cron/monthly") return monthly(req);
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
