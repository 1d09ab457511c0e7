// subscription.ts -- the web app's reader of P:events: a consumer group of
// the app's own, so that its instances share the events, one dedicated
// connection per subscription, the app's callback called once per event
// and the entry acknowledged when the callback resolves.
//
// The loop, on its one connection:
//   - XREADGROUP ... BLOCK ... STREAMS P:events >   new entries, delivered
//     to this consumer only;
//   - every claim interval, XAUTOCLAIM of the group's entries idle longer
//     than minIdleMs (a callback that threw, an instance that died with
//     entries in hand), then their delivery counts (XPENDING), so that an
//     entry past maxDeliveries goes to onDead instead of the callback;
//   - XACK after the callback (or onDead) resolved.
// One entry at a time, in the order read; at most `count` entries in hand.
// stop() lets the entry in hand finish (callback and XACK), then closes
// the connection; entries read but not started stay pending, and an
// instance of the group claims them after minIdleMs.

import { hostname } from "node:os";
import { Redis } from "ioredis";
import { CreditsValidationError } from "./errors.js";
import { type CreditsEvent, type EventProblem, decodeEvent } from "./events.js";

/** Where a group that does not exist yet starts: at the next event, or at the oldest still in the stream. */
export type SubscriptionStart = "new" | "all";

/** About one delivery of an event to the callback. */
export interface Delivery {
    /** The P:events entry's ID. */
    entryId: string;
    /** How many times the entry was delivered in the group, this one included (1 the first time). */
    deliveries: number;
    group: string;
    consumer: string;
}

/** An entry acknowledged without its callback's success: the app decides what becomes of it. */
export type DeadEvent =
    /** The callback failed on it maxDeliveries times (or instances died holding it). */
    | { reason: "max_deliveries"; entryId: string; deliveries: number; event: CreditsEvent; /** The last error, when it was this instance's. */ error?: unknown }
    /** The entry is no event this package can read (EventProblem says why), or has no `event` field. */
    | { reason: "invalid"; entryId: string; deliveries: number; problem: EventProblem };

/** What the subscription reports while it goes on (the callback's errors, Redis errors); for logs and metrics. */
export type SubscriptionError =
    /** The callback threw or rejected: the entry stays pending and is delivered again after minIdleMs. */
    | { kind: "callback"; error: unknown; event: CreditsEvent; entryId: string; deliveries: number }
    /** onDead threw or rejected: the entry stays pending and goes to onDead again after minIdleMs. */
    | { kind: "dead_handler"; error: unknown; entryId: string }
    /** A pending entry was trimmed from the stream (CREDITS_EVENTS_MAXLEN) before it was acknowledged. */
    | { kind: "trimmed"; entryId: string }
    /**
     * A Redis command failed; the subscription retries (the connection
     * reconnects by itself). `attempt` counts the failures in a row: 1 is
     * the first since the last success.
     */
    | { kind: "redis"; error: unknown; attempt: number };

export interface SubscriptionOptions {
    /**
     * The consumer group: one name per app. Every instance of the app that
     * subscribes with the same group shares the events: each goes to one
     * of them.
     */
    group: string;
    /** This instance's name in the group (default `{hostname}-{pid}`): unique among the group's live instances. */
    consumer?: string;
    /** Where the group starts when it does not exist yet (default "new"); an existing group keeps its position. */
    start?: SubscriptionStart;
    /** Called once per event; the entry is acknowledged when it resolves, and delivered again when it throws. */
    onEvent: (event: CreditsEvent, delivery: Delivery) => void | Promise<void>;
    /**
     * Called for an entry that is acknowledged without its callback's
     * success (past maxDeliveries, or not an event); the entry is
     * acknowledged when it resolves. Default: a line on stderr.
     */
    onDead?: (dead: DeadEvent) => void | Promise<void>;
    /**
     * Reports errors that the subscription survives. Default: a line on
     * stderr for each failed callback and trimmed entry, and for the first
     * Redis error of a run of them.
     */
    onError?: (error: SubscriptionError) => void;
    /** Stops the subscription when aborted, as stop() does; an already aborted signal makes subscribing reject with its reason. */
    signal?: AbortSignal;
    /** How long an entry stays pending before it is claimed and delivered again, in ms (default 30000). */
    minIdleMs?: number;
    /** The most deliveries of one entry to the callback (default 5); then onDead. */
    maxDeliveries?: number;
    /** How often to claim idle entries, in ms (default: half of minIdleMs, between 50 and 10000). */
    claimIntervalMs?: number;
    /** Most entries one read or claim returns (default 10): the most this subscription holds at once. */
    count?: number;
    /** How long one XREADGROUP blocks, in ms (default 5000; at most the claim interval). */
    blockMs?: number;
    /** Groups' consumers idle this long with nothing pending are removed when a subscription starts (default one day). */
    forgetConsumersAfterMs?: number;
    /** The connection's name in CLIENT LIST (default "credits-events"). */
    connectionName?: string;
}

export interface SubscribeEventsOptions extends SubscriptionOptions {
    /**
     * Where to connect: a redis:// URL, or an ioredis client whose settings
     * the subscription copies (duplicate()); either way the subscription
     * opens one connection of its own and stop() closes it.
     */
    redis: Redis | string;
    /** The key prefix, the worker's CREDITS_PREFIX (default "credits"): the stream is `{prefix}:events`. */
    prefix?: string;
}

/** The options, checked, with their defaults. */
interface Settings {
    group: string;
    consumer: string;
    start: SubscriptionStart;
    onEvent: SubscriptionOptions["onEvent"];
    onDead: NonNullable<SubscriptionOptions["onDead"]>;
    onError: NonNullable<SubscriptionOptions["onError"]>;
    minIdleMs: number;
    maxDeliveries: number;
    claimIntervalMs: number;
    count: number;
    blockMs: number;
    forgetAfterMs: number;
}

const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2000;
const NAME_RE = /^[\x21-\x7e]{1,200}$/;

type Fields = Buffer[] | null;
type Entry = [Buffer, Fields];

/**
 * Subscribes to P:events through a consumer group: checks the options
 * (CreditsValidationError before anything connects), creates the group if
 * it does not exist (MKSTREAM, at `$` or `0` as `start` says), then
 * delivers events to `onEvent` until stop() or the signal. Rejects, with
 * the connection closed, when the group cannot be created.
 */
export async function subscribeEvents(options: SubscribeEventsOptions): Promise<EventSubscription> {
    const { redis, prefix = "credits", signal, connectionName = "credits-events", ...rest } = options;
    const settings = settle(rest);
    if (typeof prefix !== "string" || !NAME_RE.test(prefix))
        throw new CreditsValidationError("prefix", "prefix must be 1 to 200 printable ASCII characters");
    if (typeof redis === "string" && !/^rediss?:\/\//.test(redis))
        throw new CreditsValidationError("redis", `redis must be an ioredis client or a redis:// URL, got ${JSON.stringify(redis)}`);
    if (typeof redis !== "string" && typeof redis?.duplicate !== "function")
        throw new CreditsValidationError("redis", `redis must be an ioredis client or a redis:// URL, got ${String(redis)}`);
    signal?.throwIfAborted();
    const conn = typeof redis === "string" ? new Redis(redis, { connectionName }) : redis.duplicate({ connectionName });
    // Errors reach the loop through its commands; the listener keeps
    // ioredis from printing each reconnect attempt.
    conn.on("error", () => undefined);
    const sub = new EventSubscription(conn, `${prefix}:events`, settings);
    const onAbort = () => void sub.stop();
    signal?.addEventListener("abort", onAbort, { once: true });
    void sub.done.then(() => signal?.removeEventListener("abort", onAbort));
    try {
        await sub.started();
        signal?.throwIfAborted();
    } catch (e) {
        await sub.stop();
        signal?.throwIfAborted();
        throw e;
    }
    return sub;
}

function settle(options: Omit<SubscriptionOptions, "signal" | "connectionName">): Settings {
    if (typeof options.group !== "string" || !NAME_RE.test(options.group))
        throw new CreditsValidationError("group", "group must be 1 to 200 printable ASCII characters");
    const consumer = options.consumer ?? `${hostname()}-${process.pid}`;
    if (typeof consumer !== "string" || !NAME_RE.test(consumer))
        throw new CreditsValidationError("consumer", "consumer must be 1 to 200 printable ASCII characters");
    const start = options.start ?? "new";
    if (start !== "new" && start !== "all") throw new CreditsValidationError("start", 'start must be "new" or "all"');
    if (typeof options.onEvent !== "function") throw new CreditsValidationError("onEvent", "onEvent must be a function");
    for (const f of ["onDead", "onError"] as const)
        if (options[f] !== undefined && typeof options[f] !== "function")
            throw new CreditsValidationError(f, `${f} must be a function`);
    const minIdleMs = positive(options.minIdleMs ?? 30_000, "minIdleMs");
    const claimIntervalMs = positive(options.claimIntervalMs ?? Math.min(10_000, Math.max(50, Math.floor(minIdleMs / 2))), "claimIntervalMs");
    return {
        group: options.group,
        consumer,
        start,
        onEvent: options.onEvent,
        onDead: options.onDead ?? defaultOnDead,
        onError: options.onError ?? defaultOnError,
        minIdleMs,
        maxDeliveries: positive(options.maxDeliveries ?? 5, "maxDeliveries"),
        claimIntervalMs,
        count: positive(options.count ?? 10, "count"),
        blockMs: Math.min(positive(options.blockMs ?? 5000, "blockMs"), claimIntervalMs),
        forgetAfterMs: positive(options.forgetConsumersAfterMs ?? 86_400_000, "forgetConsumersAfterMs"),
    };
}

/** One subscription: made by subscribeEvents() or CreditsClient.subscribe(). */
export class EventSubscription {
    readonly stream: string;
    readonly group: string;
    readonly consumer: string;
    /** Resolves once the subscription has stopped (stop(), its signal, its client's close()) and closed its connection. */
    readonly done: Promise<void>;
    private readonly s: Settings;
    private stopping = false;
    /** An entry's callback (or onDead) and its XACK are under way: stop() waits for them. */
    private inHand = false;
    private loopDone: Promise<void> = Promise.resolve();
    private stopped: Promise<void> | null = null;
    private markDone: () => void = () => undefined;
    private wake: (() => void) | null = null;
    private claimCursor = "0-0";
    private nextClaimAt = 0;
    private handled = 0;

    /** `conn` is the subscription's own: its blocking reads hold it. */
    constructor(private readonly conn: Redis, stream: string, settings: Settings) {
        this.stream = stream;
        this.s = settings;
        this.group = settings.group;
        this.consumer = settings.consumer;
        this.done = new Promise((resolve) => { this.markDone = resolve; });
    }

    /** Entries acknowledged so far by this subscription (events handled, dead ones included). */
    get acknowledged(): number {
        return this.handled;
    }

    /** Whether the subscription is stopping or stopped. */
    get isStopped(): boolean {
        return this.stopping;
    }

    /**
     * Stops: the entry in hand is finished (its callback and its XACK),
     * nothing more is read, and the connection is closed. Idempotent;
     * resolves with `done`.
     */
    stop(): Promise<void> {
        if (this.stopped) return this.stopped;
        this.stopping = true;
        this.wake?.();
        // Whatever the loop waits for (a blocked read, a claim, a reconnect)
        // is cut, which loses nothing: what it delivered stays pending and
        // is claimed after minIdleMs. Only an entry in hand is waited for.
        if (!this.inHand) this.conn.disconnect();
        this.stopped = this.loopDone.then(() => {
            this.conn.disconnect();
            this.markDone();
        });
        return this.stopped;
    }

    /** Creates the group, forgets long-gone consumers, starts the loop. Internal (subscribeEvents). */
    async started(): Promise<void> {
        await this.ensureGroup();
        await this.forgetConsumers().catch((error: unknown) => {
            if (!this.stopping) this.report({ kind: "redis", error, attempt: 1 });
        });
        if (!this.stopping) this.loopDone = this.loop();
    }

    private async ensureGroup(): Promise<void> {
        try {
            await this.conn.xgroup("CREATE", this.stream, this.group, this.s.start === "all" ? "0" : "$", "MKSTREAM");
        } catch (e) {
            if (!String((e as Error).message).startsWith("BUSYGROUP")) throw e;
        }
    }

    /**
     * Removes the group's consumers that hold nothing and were not seen for
     * forgetConsumersAfterMs: instances that stopped for good (each restart
     * under a new name leaves one). A live consumer is seen at every read.
     */
    private async forgetConsumers(): Promise<void> {
        const list = (await this.conn.xinfo("CONSUMERS", this.stream, this.group)) as unknown[][];
        for (const fields of list) {
            const info: Record<string, unknown> = {};
            for (let i = 0; i + 1 < fields.length; i += 2) info[String(fields[i])] = fields[i + 1];
            const name = String(info.name);
            if (name !== this.consumer && Number(info.pending) === 0 && Number(info.idle) > this.s.forgetAfterMs)
                await this.conn.xgroup("DELCONSUMER", this.stream, this.group, name);
        }
    }

    private async loop(): Promise<void> {
        let failures = 0;
        while (!this.stopping) {
            try {
                if (Date.now() >= this.nextClaimAt) {
                    await this.claim();
                } else {
                    const block = Math.max(1, Math.min(this.s.blockMs, this.nextClaimAt - Date.now()));
                    const reply = await this.conn.callBuffer("XREADGROUP", "GROUP", this.group, this.consumer,
                        "COUNT", this.s.count, "BLOCK", block, "STREAMS", this.stream, ">");
                    for (const [, entries] of (reply ?? []) as [Buffer, Entry[]][])
                        for (const [id, fields] of entries) {
                            if (this.stopping) return;
                            await this.handle(String(id), fields, 1);
                        }
                }
                failures = 0;
            } catch (error) {
                if (this.stopping) return;
                failures++;
                if (String((error as Error)?.message).startsWith("NOGROUP")) {
                    // The stream or the group was deleted: make it again.
                    await this.ensureGroup().catch(() => undefined);
                }
                this.report({ kind: "redis", error, attempt: failures });
                await this.sleep(Math.min(RETRY_MIN_MS * 2 ** (failures - 1), RETRY_MAX_MS));
            }
        }
    }

    /** One XAUTOCLAIM round, then each claimed entry with its delivery count. */
    private async claim(): Promise<void> {
        const reply = (await this.conn.callBuffer("XAUTOCLAIM", this.stream, this.group, this.consumer,
            this.s.minIdleMs, this.claimCursor, "COUNT", this.s.count)) as [Buffer, Entry[], Buffer[]?];
        const [cursor, entries, deleted] = reply;
        this.claimCursor = String(cursor);
        // More to claim: go on at once; else at the next interval, from the start.
        this.nextClaimAt = this.claimCursor === "0-0" ? Date.now() + this.s.claimIntervalMs : 0;
        // Redis 7 drops trimmed entries from the group and names them here;
        // Redis 6.2 returns them without fields and keeps them pending.
        for (const id of deleted ?? []) this.report({ kind: "trimmed", entryId: String(id) });
        for (const [id] of entries.filter(([, fields]) => fields === null)) {
            this.report({ kind: "trimmed", entryId: String(id) });
            await this.ack(String(id));
        }
        const live = entries.filter(([, fields]) => fields !== null);
        if (live.length === 0) return;
        const pipe = this.conn.pipeline();
        for (const [id] of live) pipe.xpending(this.stream, this.group, id, id, 1, this.consumer);
        const counts = (await pipe.exec()) ?? [];
        for (let i = 0; i < live.length; i++) {
            if (this.stopping) return;
            const [id, fields] = live[i] as Entry;
            const [err, rows] = counts[i] ?? [null, []];
            // Not ours any more (claimed by another instance meanwhile): skip.
            const row = err ? undefined : (rows as [string, string, number, number][])[0];
            if (!row) continue;
            await this.handle(String(id), fields, Number(row[3]));
        }
    }

    /** One entry: decoded, handed to the callback (or to onDead), acknowledged when that resolves. */
    private async handle(entryId: string, fields: Fields, deliveries: number): Promise<void> {
        this.inHand = true;
        try {
            await this.deliver(entryId, fields, deliveries);
        } finally {
            this.inHand = false;
        }
    }

    private async deliver(entryId: string, fields: Fields, deliveries: number): Promise<void> {
        let bytes: Buffer | undefined;
        for (let i = 0; fields && i + 1 < fields.length; i += 2)
            if (String(fields[i]) === "event") bytes = fields[i + 1];
        const decoded = bytes ? decodeEvent(bytes)
            : { ok: false as const, problem: { kind: "malformed" as const, message: "the entry has no field event" } };
        if (!decoded.ok) return this.dead({ reason: "invalid", entryId, deliveries, problem: decoded.problem });
        const event = decoded.event;
        if (deliveries > this.s.maxDeliveries) return this.dead({ reason: "max_deliveries", entryId, deliveries, event });
        try {
            await this.s.onEvent(event, { entryId, deliveries, group: this.group, consumer: this.consumer });
        } catch (error) {
            this.report({ kind: "callback", error, event, entryId, deliveries });
            if (deliveries >= this.s.maxDeliveries)
                return this.dead({ reason: "max_deliveries", entryId, deliveries, event, error });
            return; // pending: claimed again after minIdleMs
        }
        await this.ack(entryId);
    }

    private async dead(dead: DeadEvent): Promise<void> {
        try {
            await this.s.onDead(dead);
        } catch (error) {
            this.report({ kind: "dead_handler", error, entryId: dead.entryId });
            return;
        }
        await this.ack(dead.entryId);
    }

    private async ack(entryId: string): Promise<void> {
        // A failed XACK leaves the entry pending: it is delivered again
        // (at least once), which the app's dedupe by event_id absorbs.
        await this.conn.xack(this.stream, this.group, entryId).then(
            () => { this.handled++; },
            (error: unknown) => this.report({ kind: "redis", error, attempt: 1 }));
    }

    private report(error: SubscriptionError): void {
        try {
            this.s.onError(error);
        } catch {
            // The reporter's own failure must not stop the loop.
        }
    }

    private sleep(ms: number): Promise<void> {
        return new Promise((resolve) => {
            const timer = setTimeout(() => { this.wake = null; resolve(); }, ms);
            this.wake = () => { clearTimeout(timer); this.wake = null; resolve(); };
        });
    }
}

function positive(n: number, field: string): number {
    if (!Number.isInteger(n) || n < 1 || n > 2_147_483_647)
        throw new CreditsValidationError(field, `${field} must be a whole number from 1 to 2147483647, got ${String(n)}`);
    return n;
}

function defaultOnDead(dead: DeadEvent): void {
    const what = dead.reason === "invalid" ? `not an event (${dead.problem.message})`
        : `event ${dead.event.event_id} (${dead.event.type} for ${dead.event.user}) failed ${dead.deliveries} deliveries`;
    console.error(`credits events: entry ${dead.entryId} acknowledged unhandled: ${what}`);
}

function defaultOnError(error: SubscriptionError): void {
    if (error.kind === "callback")
        console.error(`credits events: the callback failed on event ${error.event.event_id} (delivery ${error.deliveries}): ${String(error.error)}`);
    else if (error.kind === "trimmed")
        console.error(`credits events: pending entry ${error.entryId} was trimmed from the stream before it was handled`);
    else if (error.kind === "dead_handler")
        console.error(`credits events: onDead failed on entry ${error.entryId}: ${String(error.error)}`);
    else if (error.attempt === 1)
        console.error(`credits events: Redis failed, retrying: ${String(error.error)}`);
}
