// reader.ts -- one reader of P:results per client, on one dedicated Redis
// connection, handing each result to whoever waits for its job ID.
//
// A wait registers its ID, then waits until the reader has a position in
// the stream (the ID of its last entry, read after the registration). Every
// result appended after that position reaches the wait, so a job added to
// its stream after this point cannot be missed. A result appended before it
// is already in P:result:{id}: the worker writes that key before it appends
// to P:results, on one connection, in that order.
//
// The reader runs only while someone waits: with no waits left it stops
// after its current read, and the next wait takes a fresh position. The
// number of connections does not depend on the number of waits.

import type { Redis } from "ioredis";
import { decode } from "@msgpack/msgpack";
import { CreditsClosedError } from "./errors.js";
import { type CreditsResult, decodeResult } from "./results.js";

interface Waiter {
    resolve(result: CreditsResult): void;
    reject(error: Error): void;
}

export interface Watch {
    /** Resolves once the reader's position covers everything appended from now on. */
    readonly ready: Promise<void>;
    /** The first result for the ID that the reader sees after the position. */
    readonly result: Promise<CreditsResult>;
    /** Stops waiting (idempotent); the result promise is left pending. */
    cancel(): void;
}

export interface ResultsReaderOptions {
    /** The stream, P:results. */
    key: string;
    /** How long one XREAD blocks, in ms. */
    blockMs: number;
    /** Most entries one XREAD returns. */
    count: number;
}

const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2000;

export class ResultsReader {
    private readonly waiters = new Map<string, Set<Waiter>>();
    private positioned: Promise<void> | null = null;
    private lastId = "0-0";
    private closed = false;

    /** `conn` is dedicated to the reader: XREAD BLOCK holds it. */
    constructor(private readonly conn: Redis, private readonly options: ResultsReaderOptions) {}

    /** Waits in progress (for tests and metrics). */
    get waiting(): number {
        let n = 0;
        for (const set of this.waiters.values()) n += set.size;
        return n;
    }

    watch(id: string): Watch {
        if (this.closed) throw new CreditsClosedError(id);
        let waiter!: Waiter;
        const result = new Promise<CreditsResult>((resolve, reject) => { waiter = { resolve, reject }; });
        result.catch(() => { /* a cancelled wait's rejection belongs to nobody */ });
        let set = this.waiters.get(id);
        if (!set) this.waiters.set(id, (set = new Set()));
        set.add(waiter);
        const ready = this.start();
        return {
            ready,
            result,
            cancel: () => this.remove(id, waiter),
        };
    }

    /** Rejects every wait with CreditsClosedError and stops reading. */
    close(): void {
        this.closed = true;
        for (const [id, set] of this.waiters) for (const w of set) w.reject(new CreditsClosedError(id));
        this.waiters.clear();
    }

    private remove(id: string, waiter: Waiter): void {
        const set = this.waiters.get(id);
        if (!set) return;
        set.delete(waiter);
        if (set.size === 0) this.waiters.delete(id);
    }

    /** Starts the loop if it is not running; resolves when its position is taken. */
    private start(): Promise<void> {
        if (this.positioned) return this.positioned;
        const positioned = this.takePosition();
        this.positioned = positioned;
        positioned.then(() => this.loop(), () => {
            // Redis could not be reached: the waits that registered for this
            // attempt see the error through `ready`; the next wait tries again.
            if (this.positioned === positioned) this.positioned = null;
        });
        return positioned;
    }

    private async takePosition(): Promise<void> {
        const last = await this.conn.xrevrangeBuffer(this.options.key, "+", "-", "COUNT", 1);
        this.lastId = last[0] ? String(last[0][0]) : "0-0";
    }

    private async loop(): Promise<void> {
        let retryMs = RETRY_MIN_MS;
        for (;;) {
            // Checked and cleared in one synchronous step, so that a wait
            // registered from here on starts a new loop.
            if (this.waiters.size === 0 || this.closed) {
                this.positioned = null;
                return;
            }
            let reply: [Buffer, [Buffer, Buffer[]][]][] | null;
            try {
                reply = await this.conn.xreadBuffer(
                    "COUNT", this.options.count, "BLOCK", this.options.blockMs,
                    "STREAMS", this.options.key, this.lastId);
                retryMs = RETRY_MIN_MS;
            } catch {
                if (this.closed) continue;
                // The connection reconnects by itself; read again from the
                // same position, which loses nothing still in the stream.
                await new Promise((resolve) => setTimeout(resolve, retryMs));
                retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
                continue;
            }
            for (const [, entries] of reply ?? [])
                for (const [entryId, fields] of entries) {
                    this.lastId = String(entryId);
                    this.dispatch(fields);
                }
        }
    }

    private dispatch(fields: Buffer[]): void {
        let bytes: Buffer | undefined;
        for (let i = 0; i + 1 < fields.length; i += 2)
            if (String(fields[i]) === "result") bytes = fields[i + 1];
        if (!bytes) return;
        let result: CreditsResult;
        try {
            result = decodeResult(bytes);
        } catch (e) {
            // A result that does not check out goes to its waits as an error
            // when its ID can be read at all; otherwise nobody waits for it.
            const id = readId(bytes);
            if (id !== undefined) this.settle(id, (w) => w.reject(e as Error));
            return;
        }
        if (result.id !== undefined) this.settle(result.id, (w) => w.resolve(result));
    }

    private settle(id: string, how: (w: Waiter) => void): void {
        const set = this.waiters.get(id);
        if (!set) return;
        this.waiters.delete(id);
        for (const w of set) how(w);
    }
}

function readId(bytes: Uint8Array): string | undefined {
    try {
        const raw = decode(bytes, { useBigInt64: true }) as Record<string, unknown> | null;
        return raw && typeof raw.id === "string" ? raw.id : undefined;
    } catch {
        return undefined;
    }
}
