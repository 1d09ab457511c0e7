// client.ts -- CreditsClient: one function per job type; each sends its job
// and waits for the worker's decision through the client's one results
// reader (reader.ts).
//
// Connections: the command connection (XADD, GET, XREVRANGE), the app's own
// or one opened from a URL, and one reader connection made from it with
// duplicate(). Two in all, however many calls wait at once; and one more
// for each events subscription (subscribe(), subscription.ts).

import { Redis } from "ioredis";
import {
    CreditsAbortError,
    CreditsIdConflictError,
    CreditsJobRefusedError,
    CreditsTimeoutError,
    CreditsValidationError,
} from "./errors.js";
import {
    type IdPrefixes,
    type JobType,
    type RequestOf,
    STREAM_OF,
    type Stream,
    STREAMS,
    type WireJobOf,
    encodeJob,
    jobIdFor,
    toWireJob,
} from "./jobs.js";
import { ResultsReader } from "./reader.js";
import { type CreditsResult, type ResultOf, decodeResult } from "./results.js";
import { type EventSubscription, type SubscriptionOptions, subscribeEvents } from "./subscription.js";

export interface CreditsClientOptions {
    /**
     * The Redis connection for commands: an ioredis client (yours, shared
     * with the rest of the app; close() leaves it open) or a redis:// URL
     * (the client opens the connection and close() closes it).
     */
    redis: Redis | string;
    /** The key prefix, the worker's CREDITS_PREFIX (default "credits"). */
    prefix?: string;
    /**
     * ID namespaces per stream, the worker's CREDITS_ID_PREFIXES, e.g.
     * `{ consume: "web:", purchase: "pay:", allocate: "alloc:" }`: each job
     * ID is its stream's prefix followed by the idempotency key. Default: none.
     */
    idPrefixes?: IdPrefixes;
    /** How long a call waits for its decision by default, in ms (default 10000). */
    timeoutMs?: number;
    /** The reader connection's name in CLIENT LIST (default "credits-results"). */
    readerConnectionName?: string;
    /** How long one XREAD of the reader blocks, in ms (default 5000); it is not a timeout of any call. */
    readerBlockMs?: number;
}

export interface CallOptions {
    /** How long to wait for the decision, in ms; the client's timeoutMs by default. */
    timeoutMs?: number;
    /** Stops the wait (CreditsAbortError); a job already sent is not taken back. */
    signal?: AbortSignal;
}

/** What enqueue returns: the job ID to wait for or read later, and the stream entry. */
export interface Enqueued {
    jobId: string;
    entryId: string;
}

const DEFAULT_TIMEOUT_MS = 10_000;

export class CreditsClient {
    readonly prefix: string;
    readonly idPrefixes: Readonly<IdPrefixes>;
    private readonly redis: Redis;
    private readonly ownsRedis: boolean;
    private readonly timeoutMs: number;
    private readonly readerName: string;
    private readonly readerBlockMs: number;
    private reader: ResultsReader | null = null;
    private readerConn: Redis | null = null;
    private readonly subscriptions = new Set<EventSubscription>();
    private closed = false;

    constructor(options: CreditsClientOptions) {
        if (typeof options.redis === "string") {
            if (!/^rediss?:\/\//.test(options.redis))
                throw new CreditsValidationError("redis", `redis must be an ioredis client or a redis:// URL, got ${JSON.stringify(options.redis)}`);
            this.redis = new Redis(options.redis);
            // Connection errors reach the caller through the commands; the
            // listener keeps ioredis from printing each reconnect attempt.
            this.redis.on("error", () => undefined);
            this.ownsRedis = true;
        } else if (options.redis && typeof options.redis.duplicate === "function") {
            this.redis = options.redis;
            this.ownsRedis = false;
        } else {
            throw new CreditsValidationError("redis", `redis must be an ioredis client or a redis:// URL, got ${String(options.redis)}`);
        }
        this.prefix = options.prefix ?? "credits";
        const prefixes: IdPrefixes = {};
        for (const [stream, p] of Object.entries(options.idPrefixes ?? {})) {
            if (!STREAMS.includes(stream as Stream))
                throw new CreditsValidationError("idPrefixes", `idPrefixes has an unknown stream ${JSON.stringify(stream)} (consume, purchase or allocate)`);
            if (typeof p !== "string" || !/^[\x21-\x7e]*$/.test(p) || p.length > 127)
                throw new CreditsValidationError("idPrefixes", `idPrefixes.${stream} must be printable ASCII (0x21..0x7E), at most 127 characters`);
            if (p) prefixes[stream as Stream] = p;
        }
        this.idPrefixes = Object.freeze(prefixes);
        this.timeoutMs = checkTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, "timeoutMs");
        this.readerName = options.readerConnectionName ?? "credits-results";
        this.readerBlockMs = checkTimeout(options.readerBlockMs ?? 5000, "readerBlockMs");
    }

    // -- one function per job type ------------------------------------------

    /** Spends credits for a tool run whose cost is known up front. Rejected: insufficient_credits (with the balance). */
    consume(req: RequestOf["consume"], options?: CallOptions): Promise<ResultOf<"consume">> {
        return this.send("consume", req, options);
    }

    /** Grants a pack the user paid for (the payment webhook). Rejected: unknown_pack, duplicate_payment. */
    purchase(req: RequestOf["purchase"], options?: CallOptions): Promise<ResultOf<"purchase">> {
        return this.send("purchase", req, options);
    }

    /** A plan's monthly credits for one period. Rejected: unknown_plan, already_allocated, stale_period. */
    allocate(req: RequestOf["allocate"], options?: CallOptions): Promise<ResultOf<"allocate">> {
        return this.send("allocate", req, options);
    }

    /**
     * Reserves credits for a run whose cost is known at its end; settle it
     * with capture or release (or it expires after ttlSeconds and gives
     * them back). Rejected: insufficient_credits (with the balance).
     */
    hold(req: RequestOf["hold"], options?: CallOptions): Promise<ResultOf<"hold">> {
        return this.send("hold", req, options);
    }

    /**
     * Charges a hold's real cost (0 to its amount) and releases the rest.
     * Rejected: unknown_hold, hold_closed, hold_expired, capture_exceeds_hold.
     */
    capture(req: RequestOf["capture"], options?: CallOptions): Promise<ResultOf<"capture">> {
        return this.send("capture", req, options);
    }

    /** Gives all of a hold's credits back (the run failed). Rejected: unknown_hold, hold_closed, hold_expired. */
    release(req: RequestOf["release"], options?: CallOptions): Promise<ResultOf<"release">> {
        return this.send("release", req, options);
    }

    /**
     * Gives back credits of an applied consume or capture (all that is left,
     * or `amount`). Rejected: unknown_charge, refund_exceeds_charge.
     */
    refund(req: RequestOf["refund"], options?: CallOptions): Promise<ResultOf<"refund">> {
        return this.send("refund", req, options);
    }

    /** Takes back what is left of a purchase's pack (a refunded or charged-back payment). Rejected: unknown_payment, already_revoked. */
    revoke(req: RequestOf["revoke"], options?: CallOptions): Promise<ResultOf<"revoke">> {
        return this.send("revoke", req, options);
    }

    /** Gives credits by hand (support's goodwill, a bonus), expiring after validDays or never. Never rejected by the ledger. */
    grant(req: RequestOf["grant"], options?: CallOptions): Promise<ResultOf<"grant">> {
        return this.send("grant", req, options);
    }

    /** Ends the user's subscription (forfeit: also the usable monthly credits). Rejected: no_plan. */
    cancel(req: RequestOf["cancel"], options?: CallOptions): Promise<ResultOf<"cancel">> {
        return this.send("cancel", req, options);
    }

    /**
     * Any job type by name: validates and encodes the job, adds it to its
     * stream and waits for its decision. Resolves with the decision, applied
     * or rejected. Throws CreditsValidationError (nothing sent),
     * CreditsTimeoutError or CreditsAbortError (the job may still be
     * applied), CreditsIdConflictError (the ID belongs to another job),
     * CreditsJobRefusedError (the worker refused the message itself).
     */
    async send<T extends JobType>(type: T, req: RequestOf[T], options: CallOptions = {}): Promise<ResultOf<T>> {
        const job = toWireJob(type, req, this.idPrefixes);
        const bytes = encodeJob(job);
        const timeoutMs = checkTimeout(options.timeoutMs ?? this.timeoutMs, "timeoutMs");
        const call = new Deadline(job.id, timeoutMs, options.signal);
        // Registered before the XADD: the decision of this message is
        // appended to P:results after it, so the reader sees it. No GET of
        // P:result:{id}: a result stored there before this message is an
        // earlier job's, and only the worker can tell whether this one has
        // the same fields (a replay) or not (id_conflict).
        const watch = this.readerFor().watch(job.id);
        try {
            await call.race(watch.ready);
            call.sending();
            await call.race(this.redis.xadd(this.key(`jobs:${STREAM_OF[type]}`), "*", "job", Buffer.from(bytes)));
            const result = await call.race(watch.result);
            return checkDecision(type, job, result);
        } finally {
            watch.cancel();
            call.clear();
        }
    }

    /**
     * Adds a job to its stream without waiting; wait for it later with
     * waitForResult(jobId), or read it with getResult(jobId).
     */
    async enqueue<T extends JobType>(type: T, req: RequestOf[T]): Promise<Enqueued> {
        const job = toWireJob(type, req, this.idPrefixes);
        const bytes = encodeJob(job);
        const entryId = await this.redis.xadd(this.key(`jobs:${STREAM_OF[type]}`), "*", "job", Buffer.from(bytes));
        if (entryId === null) throw new Error("XADD returned no entry ID");
        return { jobId: job.id, entryId };
    }

    /**
     * Waits for the decision of a job sent earlier (by enqueue, or by a call
     * that timed out): registers the wait, then reads P:result:{id} once in
     * case the decision was published before. Resolves with the first
     * decision seen for the ID, whichever job it is about.
     */
    async waitForResult(jobId: string, options: CallOptions = {}): Promise<CreditsResult> {
        const timeoutMs = checkTimeout(options.timeoutMs ?? this.timeoutMs, "timeoutMs");
        const call = new Deadline(jobId, timeoutMs, options.signal, true);
        const watch = this.readerFor().watch(jobId);
        try {
            await call.race(watch.ready);
            const stored = await call.race(this.getResult(jobId));
            if (stored) return stored;
            return await call.race(watch.result);
        } finally {
            watch.cancel();
            call.clear();
        }
    }

    /**
     * The stored decision of a job ID (GET P:result:{id}), or null: not
     * decided yet, never sent, or older than the worker's CREDITS_RESULT_TTL.
     */
    async getResult(jobId: string): Promise<CreditsResult | null> {
        const bytes = await this.redis.getBuffer(this.key(`result:${jobId}`));
        return bytes ? decodeResult(bytes) : null;
    }

    /**
     * Subscribes to the worker's events (P:events) through the consumer
     * group `options.group`: every instance of the app that subscribes with
     * the same group shares the events, each event going to one of them.
     * The subscription has one connection of its own (a duplicate() of the
     * command connection); stop() it, abort its signal, or close() the
     * client to end it. Resolves once the group exists (created at the next
     * event, or with `start: "all"` at the oldest in the stream, when it
     * did not).
     */
    async subscribe(options: SubscriptionOptions): Promise<EventSubscription> {
        if (this.closed) throw new Error("the credits client is closed");
        const sub = await subscribeEvents({ ...options, redis: this.redis, prefix: this.prefix });
        if (this.closed) {
            await sub.stop();
            throw new Error("the credits client is closed");
        }
        this.subscriptions.add(sub);
        void sub.done.then(() => this.subscriptions.delete(sub));
        return sub;
    }

    /** The job ID that a job of this type and idempotency key gets (with the stream's prefix). */
    jobId(type: JobType, key: string): string {
        return jobIdFor(this.idPrefixes, STREAM_OF[type], key);
    }

    /** A Redis key under the prefix, e.g. key("results") is "credits:results". */
    key(suffix: string): string {
        return `${this.prefix}:${suffix}`;
    }

    /**
     * Ends every wait (CreditsClosedError), stops the events subscriptions
     * (each finishes the event in hand) and closes the reader connection,
     * and the command connection when the client opened it.
     */
    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        this.reader?.close();
        await Promise.all([...this.subscriptions].map((s) => s.stop()));
        // disconnect(), not quit(): QUIT would wait behind the blocked XREAD.
        this.readerConn?.disconnect();
        if (!this.ownsRedis) return;
        // QUIT on a connection that is down would wait for it to come back.
        if (this.redis.status === "ready") await this.redis.quit().catch(() => this.redis.disconnect());
        else this.redis.disconnect();
    }

    private readerFor(): ResultsReader {
        if (this.closed) throw new Error("the credits client is closed");
        if (!this.reader) {
            this.readerConn = this.redis.duplicate({ connectionName: this.readerName });
            this.readerConn.on("error", () => undefined); // as for the command connection: seen through the reads
            this.reader = new ResultsReader(this.readerConn, {
                key: this.key("results"), blockMs: this.readerBlockMs, count: 1000,
            });
        }
        return this.reader;
    }
}

function checkTimeout(ms: number, field: string): number {
    if (!Number.isInteger(ms) || ms < 1 || ms > 2_147_483_647)
        throw new CreditsValidationError(field, `${field} must be a whole number of ms from 1 to 2147483647, got ${String(ms)}`);
    return ms;
}

/** The time limit and the AbortSignal of one call. */
class Deadline {
    private sent: boolean;
    private timer: NodeJS.Timeout | undefined;
    private onAbort: (() => void) | undefined;
    private readonly stop: Promise<never>;

    constructor(jobId: string, timeoutMs: number, private readonly signal: AbortSignal | undefined,
        alreadySent = false) {
        this.sent = alreadySent;
        this.stop = new Promise<never>((_, reject) => {
            if (signal?.aborted) {
                reject(new CreditsAbortError(jobId, this.sent, { cause: signal.reason }));
                return;
            }
            this.timer = setTimeout(() => reject(new CreditsTimeoutError(jobId, timeoutMs, this.sent)), timeoutMs);
            if (signal) {
                this.onAbort = () => reject(new CreditsAbortError(jobId, this.sent, { cause: signal.reason }));
                signal.addEventListener("abort", this.onAbort, { once: true });
            }
        });
        this.stop.catch(() => { /* seen through race() */ });
    }

    /** From here on the job counts as sent (its XADD is under way). */
    sending(): void {
        this.sent = true;
    }

    /** p, unless the time runs out or the signal fires first (an already aborted signal wins over a settled p). */
    race<T>(p: Promise<T>): Promise<T> {
        return Promise.race([this.stop, p]);
    }

    clear(): void {
        clearTimeout(this.timer);
        if (this.onAbort) this.signal?.removeEventListener("abort", this.onAbort);
    }
}

/**
 * The decision for this job. Throws CreditsIdConflictError when the worker
 * says id_conflict, or when the first result seen for the ID is visibly
 * about another job (another type, user or amount; a result does not carry
 * every field); CreditsJobRefusedError when the worker refused the message.
 */
function checkDecision<T extends JobType>(type: T, job: WireJobOf[T], result: CreditsResult): ResultOf<T> {
    const fields = result as unknown as Record<string, unknown>;
    if (fields.error === "id_conflict") throw new CreditsIdConflictError(job.id, result);
    if (fields.error === "invalid_job" || fields.error === "unsupported_version" || fields.error === "wrong_stream")
        throw new CreditsJobRefusedError(job.id, fields.error, String(fields.message ?? ""), result);
    if (result.type !== type || result.user !== job.user) throw new CreditsIdConflictError(job.id, result);
    const amount = (job as { amount?: number }).amount;
    const echoed = AMOUNT_ECHO[type];
    if (result.status === "applied" && echoed && amount !== undefined && fields[echoed] !== amount)
        throw new CreditsIdConflictError(job.id, result);
    return result as ResultOf<T>;
}

/** The applied result's key that repeats the job's `amount`, for the types that have one. */
const AMOUNT_ECHO: Partial<Record<JobType, string>> = {
    consume: "charged", hold: "held", capture: "charged", refund: "refunded", grant: "granted",
};
