// events.ts -- what the worker tells the web app on P:events (contract
// 9.8): the event types as a discriminated union on `type`, and a decoder
// that checks each event and reports, never throws, what it cannot accept.
//
// Integers are JavaScript numbers, exact for the same reasons as in
// results.ts (event IDs come from a sequence, amounts and balances are far
// below 2^53, times are Unix ms); an integer beyond Number.MAX_SAFE_INTEGER
// makes the event malformed rather than rounded.

import { decode } from "@msgpack/msgpack";
import { BALANCE_KEYS, type Balance, isInt, isRecord, safeIntegers } from "./results.js";

/** The version of the events this package reads (contract 9.8: `v` is 1). */
export const EVENT_VERSION = 1;

/** What each event type carries besides the keys every event has. */
export interface EventFieldsOf {
    /** The usable balance went from at least the threshold to below it. */
    balance_low: { /** The user's threshold (the account's, else its plan's). */ threshold: number };
    /** The usable balance went from above 0 to 0. */
    balance_depleted: Record<never, never>;
    /** The usable balance went from below the threshold to at least it. */
    balance_recovered: { threshold: number };
    /** A lot with credits left expires within the worker's notice days; sent once per lot. */
    credits_expiring: {
        /** The lot (credits.lots.lot_id). */
        lot: number;
        /** Its credits left when the notice was written. */
        credits: number;
        /** Unix ms when the lot expires. */
        expires_at: number;
    };
    /** Credits of a lot expired (written off by the sweep, or by a job of the user that found them). */
    credits_expired: { lot: number; /** The credits that expired. */ credits: number };
    /** A hold reached its expiry unsettled and was released. */
    hold_expired: { /** The hold's ID (its hold job's ID). */ hold: string; /** Credits given back. */ released: number };
}

export type EventType = keyof EventFieldsOf;

/** Every event type of contract 9.8, each once (a missing or extra one does not compile). */
const EVENT_TYPE_SET: { readonly [T in EventType]: true } = {
    balance_low: true, balance_depleted: true, balance_recovered: true,
    credits_expiring: true, credits_expired: true, hold_expired: true,
};
export const EVENT_TYPES: readonly EventType[] = Object.keys(EVENT_TYPE_SET) as EventType[];

/** The keys every event has. */
export interface EventBase<T extends EventType> {
    v: 1;
    /** Unique and increasing per database: the key to dedupe by, and the order of a user's events. */
    event_id: number;
    type: T;
    user: string;
    /** Unix ms: the database's time of the change. */
    at: number;
    /** The user's credits right after the change, as in results. */
    balance: Balance;
    /**
     * The job whose entries caused it: a job's ID, `expire:{lot_id}` for an
     * expiry the sweep wrote (and for credits_expiring), the hold's ID for
     * a hold's expiry.
     */
    job: string;
}

/** The event of type T. */
export type EventOf<T extends EventType> = EventBase<T> & EventFieldsOf[T];

/** Any event: switch on `type` and the compiler knows the keys of each. */
export type CreditsEvent = { [T in EventType]: EventOf<T> }[EventType];

/** What the decoder refuses, and why. */
export type EventProblem =
    /** Not an event of the contract: not msgpack, not a map, a key missing or of the wrong type. */
    | { kind: "malformed"; message: string; eventId?: number }
    /** An event of a version this package does not read. */
    | { kind: "unsupported_version"; message: string; version: unknown; eventId?: number }
    /** A `type` this package does not know (a newer worker's): readers skip it. */
    | { kind: "unknown_type"; message: string; type: string; eventId?: number };

/** The decoder's answer: the event, or the problem with it. */
export type EventDecoding = { ok: true; event: CreditsEvent } | { ok: false; problem: EventProblem };

/** The keys of each type besides the common ones, with their kind. */
const OWN_KEYS: { readonly [T in EventType]: readonly (readonly [keyof EventFieldsOf[T] & string, "int" | "str"])[] } = {
    balance_low: [["threshold", "int"]],
    balance_depleted: [],
    balance_recovered: [["threshold", "int"]],
    credits_expiring: [["lot", "int"], ["credits", "int"], ["expires_at", "int"]],
    credits_expired: [["lot", "int"], ["credits", "int"]],
    hold_expired: [["hold", "str"], ["released", "int"]],
};

/**
 * Decodes the msgpack bytes of one P:events entry's `event` field and
 * checks them against contract 9.8. Never throws: `{ ok: true, event }`
 * holds the keys of its type and nothing else (keys a newer worker adds
 * are left out); `{ ok: false, problem }` says what is wrong, with the
 * event_id when it could be read.
 */
export function decodeEvent(bytes: Uint8Array): EventDecoding {
    const bad = (kind: "malformed", message: string, eventId?: number): EventDecoding =>
        ({ ok: false, problem: eventId === undefined ? { kind, message } : { kind, message, eventId } });
    let raw: unknown;
    try {
        raw = safeIntegers(decode(bytes, { useBigInt64: true }), "", "event");
    } catch (e) {
        return bad("malformed", `an event is not msgpack within the safe integers: ${(e as Error).message}`);
    }
    if (!isRecord(raw)) return bad("malformed", "an event is not a msgpack map");
    const eventId = isInt(raw.event_id) && raw.event_id > 0 ? raw.event_id : undefined;
    const withId = <P extends EventProblem>(p: P): EventDecoding =>
        ({ ok: false, problem: eventId === undefined ? p : { ...p, eventId } });
    if (raw.v !== EVENT_VERSION)
        return withId({ kind: "unsupported_version", version: raw.v, message: `event v is ${String(raw.v)}, not ${EVENT_VERSION}` });
    if (typeof raw.type !== "string") return bad("malformed", "event type is not a string", eventId);
    if (!Object.hasOwn(EVENT_TYPE_SET, raw.type))
        return withId({ kind: "unknown_type", type: raw.type, message: `event type ${JSON.stringify(raw.type)} is not one this package knows` });
    const type = raw.type as EventType;
    if (eventId === undefined) return bad("malformed", "event event_id is not a positive integer");
    if (typeof raw.user !== "string" || raw.user === "") return bad("malformed", "event user is not a non-empty string", eventId);
    if (!isInt(raw.at)) return bad("malformed", "event at is not an integer", eventId);
    if (typeof raw.job !== "string" || raw.job === "") return bad("malformed", "event job is not a non-empty string", eventId);
    const b = raw.balance;
    if (!isRecord(b)) return bad("malformed", "event balance is not a map", eventId);
    const balance = {} as Record<(typeof BALANCE_KEYS)[number], number>;
    for (const k of BALANCE_KEYS) {
        const x = b[k];
        if (!isInt(x)) return bad("malformed", `event balance.${k} is not an integer`, eventId);
        balance[k] = x;
    }
    const event: Record<string, unknown> = { v: 1, event_id: eventId, type, user: raw.user, at: raw.at, balance, job: raw.job };
    for (const [k, kind] of OWN_KEYS[type] as readonly (readonly [string, "int" | "str"])[]) {
        const x = raw[k];
        if (kind === "int" ? !isInt(x) : typeof x !== "string" || x === "")
            return bad("malformed", `a ${type} event's ${k} is not ${kind === "int" ? "an integer" : "a non-empty string"}`, eventId);
        event[k] = x;
    }
    return { ok: true, event: event as unknown as CreditsEvent };
}

/** Whether an event is of type T (narrows it). */
export function isEventOf<T extends EventType>(event: CreditsEvent, type: T): event is Extract<CreditsEvent, { type: T }> {
    return event.type === type;
}
