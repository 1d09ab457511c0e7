// credits.ts -- the web app's side of credits-worker (contract v1,
// schemas/CONTRACT.md), small enough to copy into the app.
//
//   const credits = new CreditsClient(redis);            // an ioredis client
//   const r = await credits.consume({ id: idempotencyKey, user, amount: 40,
//                                     tool: "upscale", ref: videoId });
//   if (r.status === "applied") runTheTool(); else showError(r.error, r.balance);
//
//   await credits.purchaseFromWebhook({ eventId, captureId, userId, packId });
//   const balance = await readBalance(pgPool, user);     // from PostgreSQL
//
// Jobs go to the Redis streams P:jobs:{type} as msgpack in the field `job`;
// results come back on P:reply:{id} (BLPOP, when the job asks with reply:
// true) and stay under P:result:{id} for CREDITS_RESULT_TTL seconds. Sending
// the same job again (same ID, same fields) never applies it twice: the
// worker answers the stored result with `replayed: true`.

import { decode, encode } from "@msgpack/msgpack";
import type { Redis } from "ioredis";

export const CONTRACT_VERSION = 1;

export type JobType = "consume" | "purchase" | "allocate";

export type ErrorCode =
    | "invalid_job"
    | "unsupported_version"
    | "wrong_stream"
    | "id_conflict"
    | "insufficient_credits"
    | "unknown_pack"
    | "unknown_plan"
    | "duplicate_payment"
    | "already_allocated"
    | "stale_period";

/** A user's usable credits: `pack` + `monthly` = `total`. */
export interface Balance {
    total: number;
    pack: number;
    monthly: number;
}

/** A decision of the worker, as published on P:reply:{id} and P:result:{id}. */
export interface CreditsResult {
    v: 1;
    id?: string;
    type?: JobType;
    user?: string;
    status: "applied" | "rejected";
    /** When rejected. */
    error?: ErrorCode;
    /** On rejections: a sentence for people. */
    message?: string;
    /** After the job: when applied, and on insufficient_credits. */
    balance?: Balance;
    /** consume, applied. */
    charged?: number;
    /** purchase and allocate, applied. */
    granted?: number;
    /** allocate, applied: monthly credits removed by the rollover cap. */
    forfeited?: number;
    /** purchase, applied: Unix ms when the pack's credits expire. */
    expires_at?: number;
    /** Unix ms when the job was first decided. */
    done_at: number;
    /** true when this is the stored result of an earlier delivery. */
    replayed: boolean;
}

export interface ConsumeRequest {
    /** The idempotency key of this tool run: the same key when the run is retried. */
    id: string;
    user: string;
    amount: number;
    /** Which AI tool spends the credits (kept in the history), at most 64 bytes. */
    tool?: string;
    /** Your reference, e.g. the video ID (kept in the history), at most 128 bytes. */
    ref?: string;
}

export interface PurchaseRequest {
    id: string;
    user: string;
    pack: string;
    paymentRef: string;
}

export interface AllocateRequest {
    /** Default: alloc:{user}:{period}, so that a re-run of the scheduler is harmless. */
    id?: string;
    user: string;
    plan: string;
    /** The billing month, YYYY-MM. */
    period: string;
}

/** What the webhook receiver takes from the payment provider's event. */
export interface PaymentWebhookEvent {
    /** The provider's event ID: the job ID, so a redelivered webhook is a replay. */
    eventId: string;
    /** The provider's capture (or order) ID: one payment grants credits once. */
    captureId: string;
    /** Your user ID, from the metadata attached at checkout. */
    userId: string;
    /** The pack bought, from the same metadata. */
    packId: string;
}

export interface WaitOptions {
    /** How long to wait for the result, in ms (default 5000). */
    timeoutMs?: number;
}

/** A job the contract would refuse; nothing was sent. */
export class CreditsValidationError extends Error {
    override name = "CreditsValidationError";
}

/**
 * No result within the time allowed. The job is on its stream and will be
 * decided: poll getResult(id) later, or send the same job again (same ID),
 * which is safe.
 */
export class CreditsTimeoutError extends Error {
    override name = "CreditsTimeoutError";
    constructor(readonly jobId: string) {
        super(`no result for job ${jobId} yet; it is queued and will be decided`);
    }
}

/**
 * The job ID was used before by a different job (another user, type or
 * amount): the worker refused this one (id_conflict) and the stored result
 * belongs to the other. Your IDs are not unique per request.
 */
export class CreditsIdConflictError extends Error {
    override name = "CreditsIdConflictError";
    constructor(readonly jobId: string, readonly stored: CreditsResult) {
        super(`job ID ${jobId} was already used by a different job`);
    }
}

// ---------------------------------------------------------------------------
// Validation: the contract's rules, so that the app never sends a job the
// worker would reject as invalid_job.
// ---------------------------------------------------------------------------

const ID_RE = /^[\x21-\x7e]{1,128}$/;
const PERIOD_RE = /^[0-9]{4}-(0[1-9]|1[0-2])$/;
const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const JOB_BYTES_MAX = 4096;
const AMOUNT_MAX = 1_000_000_000;

function utf8Bytes(s: string): number {
    return Buffer.byteLength(s, "utf8");
}

function checkId(field: string, value: unknown): string | null {
    if (typeof value !== "string" || !ID_RE.test(value))
        return `${field} must be 1 to 128 printable ASCII characters (0x21..0x7E)`;
    return null;
}

function checkText(field: string, value: unknown, min: number, max: number): string | null {
    if (typeof value !== "string") return `${field} must be a string`;
    if (LONE_SURROGATE_RE.test(value) || value.includes("\0"))
        return `${field} must be valid UTF-8 without NUL`;
    const n = utf8Bytes(value);
    if (n < min || n > max) return `${field} must be ${min} to ${max} bytes of UTF-8`;
    return null;
}

/**
 * Checks a job map against contract v1. Returns the first problem, or null.
 * Keys other than the type's own are not checked (the worker ignores them);
 * the encoder below never sends any.
 */
export function validateJob(job: Record<string, unknown>): string | null {
    // undefined counts as absent: the encoder leaves such fields out.
    const has = (k: string) => Object.prototype.hasOwnProperty.call(job, k) && job[k] !== undefined;
    if (job.v !== CONTRACT_VERSION) return "v must be 1";
    let problem = checkId("id", job.id);
    if (problem) return problem;
    if (job.type !== "consume" && job.type !== "purchase" && job.type !== "allocate")
        return "type must be consume, purchase or allocate";
    if ((problem = checkId("user", job.user))) return problem;
    if (has("reply") && typeof job.reply !== "boolean") return "reply must be a boolean";
    switch (job.type) {
    case "consume":
        if (typeof job.amount !== "number" || !Number.isInteger(job.amount) ||
            job.amount < 1 || job.amount > AMOUNT_MAX)
            return `amount must be an integer from 1 to ${AMOUNT_MAX}`;
        if (has("tool") && (problem = checkText("tool", job.tool, 0, 64))) return problem;
        if (has("ref") && (problem = checkText("ref", job.ref, 0, 128))) return problem;
        return null;
    case "purchase":
        if ((problem = checkText("pack", job.pack, 1, 64))) return problem;
        return checkText("payment_ref", job.payment_ref, 1, 128);
    case "allocate":
        if ((problem = checkText("plan", job.plan, 1, 64))) return problem;
        if (typeof job.period !== "string" || !PERIOD_RE.test(job.period))
            return "period must be YYYY-MM with a month from 01 to 12";
        return null;
    }
}

/**
 * Validates and encodes a job as the msgpack map the worker reads. Fields
 * that are undefined are left out: nil is not "absent" to the worker.
 */
export function encodeJob(job: Record<string, unknown>): Uint8Array {
    const problem = validateJob(job);
    if (problem) throw new CreditsValidationError(problem);
    const bytes = encode(job, { ignoreUndefined: true });
    if (bytes.length > JOB_BYTES_MAX)
        throw new CreditsValidationError(`the encoded job is ${bytes.length} bytes, over ${JOB_BYTES_MAX}`);
    return bytes;
}

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

function isRecord(x: unknown): x is Record<string, unknown> {
    return typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array);
}

function isInt(x: unknown): x is number {
    return typeof x === "number" && Number.isSafeInteger(x);
}

/** Decodes a result's msgpack bytes; throws if they are not a v1 result. */
export function decodeResult(bytes: Uint8Array): CreditsResult {
    const r = decode(bytes);
    if (!isRecord(r) || r.v !== 1 || (r.status !== "applied" && r.status !== "rejected") ||
        !isInt(r.done_at) || typeof r.replayed !== "boolean")
        throw new Error("not a credits-worker v1 result");
    for (const k of ["id", "type", "user", "error", "message"])
        if (k in r && typeof r[k] !== "string") throw new Error(`result field ${k} is not a string`);
    for (const k of ["charged", "granted", "forfeited", "expires_at"])
        if (k in r && !isInt(r[k])) throw new Error(`result field ${k} is not an integer`);
    if ("balance" in r) {
        const b = r.balance;
        if (!isRecord(b) || !isInt(b.total) || !isInt(b.pack) || !isInt(b.monthly))
            throw new Error("result field balance is not {total, pack, monthly}");
    }
    return r as unknown as CreditsResult;
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

export interface CreditsClientOptions {
    /** Key prefix, CREDITS_PREFIX of the worker (default "credits"). */
    prefix?: string;
    /** Connections kept for BLPOP waits (default 4); more are opened when busy. */
    idleWaiters?: number;
}

export class CreditsClient {
    readonly prefix: string;
    private readonly idleWaitersMax: number;
    private readonly idle: Redis[] = [];
    private closed = false;

    /**
     * `redis` is the app's ioredis connection, used for XADD and GET. BLPOP
     * blocks its connection, so waits run on separate connections made with
     * redis.duplicate() and kept for reuse.
     */
    constructor(private readonly redis: Redis, options: CreditsClientOptions = {}) {
        this.prefix = options.prefix ?? "credits";
        this.idleWaitersMax = options.idleWaiters ?? 4;
    }

    /**
     * Spends credits for one tool run and waits for the decision. Use the
     * run's idempotency key as `id`: a retry with the same key never spends
     * twice (the answer is then `replayed: true`). Resolves with the result,
     * applied or rejected (insufficient_credits carries the balance); throws
     * CreditsValidationError before sending anything invalid,
     * CreditsTimeoutError when no decision came in time (the job stays
     * queued), CreditsIdConflictError when the key was used for another job.
     */
    async consume(req: ConsumeRequest, options: WaitOptions = {}): Promise<CreditsResult> {
        const job = {
            v: CONTRACT_VERSION, id: req.id, type: "consume", user: req.user,
            amount: req.amount, tool: req.tool, ref: req.ref, reply: true,
        };
        await this.enqueue("consume", job);
        const result = await this.waitForResult(req.id, options);
        this.checkSameJob(req.id, result, "consume", req.user);
        if (result.status === "applied" && result.charged !== req.amount)
            throw new CreditsIdConflictError(req.id, result);
        return result;
    }

    /**
     * The payment webhook: grants the pack the user paid for. The provider's
     * event ID is the job ID (a redelivered event is a replay) and the
     * capture ID is the payment_ref (a second event for the same payment is
     * rejected as duplicate_payment). Waits for the decision, so that the
     * handler answers 2xx only once the credits are committed in the ledger;
     * on CreditsTimeoutError answer 5xx and let the provider retry.
     */
    async purchaseFromWebhook(event: PaymentWebhookEvent, options: WaitOptions = {}): Promise<CreditsResult> {
        return this.purchase(
            { id: event.eventId, user: event.userId, pack: event.packId, paymentRef: event.captureId },
            options);
    }

    async purchase(req: PurchaseRequest, options: WaitOptions = {}): Promise<CreditsResult> {
        const job = {
            v: CONTRACT_VERSION, id: req.id, type: "purchase", user: req.user,
            pack: req.pack, payment_ref: req.paymentRef, reply: true,
        };
        await this.enqueue("purchase", job);
        const result = await this.waitForResult(req.id, options);
        this.checkSameJob(req.id, result, "purchase", req.user);
        return result;
    }

    /** A plan's monthly credits for one period (the scheduler's job). */
    async allocate(req: AllocateRequest, options: WaitOptions = {}): Promise<CreditsResult> {
        const id = req.id ?? `alloc:${req.user}:${req.period}`;
        const job = {
            v: CONTRACT_VERSION, id, type: "allocate", user: req.user,
            plan: req.plan, period: req.period, reply: true,
        };
        await this.enqueue("allocate", job);
        const result = await this.waitForResult(id, options);
        this.checkSameJob(id, result, "allocate", req.user);
        return result;
    }

    /**
     * Validates, encodes and adds a job to its stream; returns the stream
     * entry ID. The job is durable once Redis has it (as durable as Redis's
     * persistence settings make it).
     */
    async enqueue(type: JobType, job: Record<string, unknown>): Promise<string> {
        if (job.type !== type) throw new CreditsValidationError(`a ${String(job.type)} job on the ${type} stream`);
        const bytes = encodeJob(job);
        const entry = await this.redis.xadd(this.key(`jobs:${type}`), "*", "job", Buffer.from(bytes));
        if (entry === null) throw new Error("XADD returned no entry ID");
        return entry;
    }

    /** The stored result of a job, or null (not decided yet, or expired). */
    async getResult(id: string): Promise<CreditsResult | null> {
        const bytes = await this.redis.getBuffer(this.key(`result:${id}`));
        return bytes ? decodeResult(bytes) : null;
    }

    /**
     * Waits for the result of a job sent with reply: true (BLPOP on
     * P:reply:{id}); after the timeout, reads P:result:{id} once in case the
     * reply was missed (taken by an earlier wait, or the job did not ask for
     * one). Throws CreditsTimeoutError when neither has it.
     */
    async waitForResult(id: string, options: WaitOptions = {}): Promise<CreditsResult> {
        const timeoutMs = options.timeoutMs ?? 5000;
        const popped = await this.withWaiter((conn) =>
            conn.blpopBuffer(this.key(`reply:${id}`), Math.max(timeoutMs, 10) / 1000));
        if (popped) return decodeResult(popped[1]);
        const stored = await this.getResult(id);
        if (stored) return stored;
        throw new CreditsTimeoutError(id);
    }

    /** Closes the wait connections (not the app's own). */
    async close(): Promise<void> {
        this.closed = true;
        const conns = this.idle.splice(0);
        await Promise.all(conns.map((c) => c.quit().catch(() => c.disconnect())));
    }

    key(suffix: string): string {
        return `${this.prefix}:${suffix}`;
    }

    private async withWaiter<T>(fn: (conn: Redis) => Promise<T>): Promise<T> {
        const conn = this.idle.pop() ?? this.redis.duplicate();
        let ok = false;
        try {
            const value = await fn(conn);
            ok = true;
            return value;
        } finally {
            if (ok && !this.closed && this.idle.length < this.idleWaitersMax) this.idle.push(conn);
            else conn.disconnect();
        }
    }

    // P:result:{id} keeps the first job's result when a different job reuses
    // its ID (id_conflict is not written there, nor pushed as a reply).
    private checkSameJob(id: string, result: CreditsResult, type: JobType, user: string): void {
        if (result.id !== id || result.type !== type || result.user !== user)
            throw new CreditsIdConflictError(id, result);
    }
}

// ---------------------------------------------------------------------------
// Balances: read from the ledger in PostgreSQL, the source of truth.
// ---------------------------------------------------------------------------

/** Anything with pg's query(): a pg.Pool, a pg.Client, a pooled client. */
export interface Queryable {
    query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

/**
 * A user's usable credits now: the sum of `remaining` over the user's lots
 * that have not expired (expires_at null or in the future, by the
 * database's clock, as the worker counts them). A user with no lots has 0.
 */
export async function readBalance(db: Queryable, user: string): Promise<Balance> {
    const { rows } = await db.query(
        `SELECT coalesce(sum(remaining), 0)::text AS total,
                coalesce(sum(remaining) FILTER (WHERE kind = 'pack'), 0)::text AS pack,
                coalesce(sum(remaining) FILTER (WHERE kind = 'monthly'), 0)::text AS monthly
           FROM credits.lots
          WHERE user_id = $1
            AND remaining > 0
            AND (expires_at IS NULL OR expires_at > now())`,
        [user]);
    const row = rows[0] ?? {};
    const num = (x: unknown): number => {
        const n = Number(x ?? 0);
        if (!Number.isSafeInteger(n)) throw new Error(`balance ${String(x)} is not a safe integer`);
        return n;
    };
    return { total: num(row.total), pack: num(row.pack), monthly: num(row.monthly) };
}
