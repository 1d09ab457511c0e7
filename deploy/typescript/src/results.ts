// results.ts -- the worker's decisions: their types, error codes, and a
// decoder that checks them.
//
// Integers are JavaScript numbers. That is exact here: amounts are at most
// 10^9 by the job rules; a user's balance is a sum of lots each at most the
// catalog's 10^12 credits (schemas/001_ledger.sql), far below 2^53 for any
// number of lots a user can buy; timestamps are Unix milliseconds (2^53 ms
// is the year 287396). The decoder still refuses any integer beyond
// Number.MAX_SAFE_INTEGER instead of rounding it.

import { decode } from "@msgpack/msgpack";
import { CreditsProtocolError } from "./errors.js";
import { type JobType, JOB_TYPES } from "./jobs.js";

/** Rejections decided about the message itself; never stored, never touching the ledger. */
export type MessageErrorCode = "invalid_job" | "unsupported_version" | "wrong_stream";

/** Rejections decided against the ledger or the catalog, stored with the job ID: every later delivery replays them. */
export interface StoredErrorOf {
    consume: "insufficient_credits";
    purchase: "unknown_pack" | "duplicate_payment";
    allocate: "unknown_plan" | "already_allocated" | "stale_period";
    hold: "insufficient_credits";
    capture: "unknown_hold" | "hold_closed" | "hold_expired" | "capture_exceeds_hold";
    release: "unknown_hold" | "hold_closed" | "hold_expired";
    refund: "unknown_charge" | "refund_exceeds_charge";
    revoke: "unknown_payment" | "already_revoked";
    grant: never;
    cancel: "no_plan";
}

export type StoredErrorCode = StoredErrorOf[JobType];

/** Every error code of the contract (v1 and revision 2). */
export type ErrorCode = MessageErrorCode | "id_conflict" | StoredErrorCode;

/** Every code once, with whether it is stored (a missing or unknown code does not compile). */
const IS_STORED: { readonly [C in ErrorCode]: boolean } = {
    invalid_job: false, unsupported_version: false, wrong_stream: false, id_conflict: false,
    insufficient_credits: true, unknown_pack: true, unknown_plan: true, duplicate_payment: true,
    already_allocated: true, stale_period: true, unknown_hold: true, hold_closed: true, hold_expired: true,
    capture_exceeds_hold: true, unknown_charge: true, refund_exceeds_charge: true, unknown_payment: true,
    already_revoked: true, no_plan: true,
};

export const ERROR_CODES: readonly ErrorCode[] = Object.keys(IS_STORED) as ErrorCode[];

/** The codes that are stored with the job ID and replayed forever under it. */
export const STORED_ERROR_CODES: ReadonlySet<ErrorCode> = new Set(ERROR_CODES.filter((c) => IS_STORED[c]));

/**
 * A user's credits after a job (contract 9.5: the five keys are in every
 * balance map of a result).
 */
export interface Balance {
    /** pack + monthly + grant: what the user can spend now. */
    total: number;
    /** Usable credits in pack lots (bought). */
    pack: number;
    /** Usable credits in monthly lots (the plan's allocations). */
    monthly: number;
    /** Usable credits in grant lots (given by hand: support, bonuses). */
    grant: number;
    /** Credits reserved by the user's open holds: not part of total, not spendable until released. */
    held: number;
}

interface ResultBase<T extends JobType> {
    v: 1;
    /** The job ID (with its prefix). */
    id: string;
    type: T;
    user: string;
    /** Unix ms when the job was first decided. */
    done_at: number;
    /** true when this is the stored decision of an earlier delivery of the same job. */
    replayed: boolean;
}

/** What an applied result of each type carries besides `balance`. */
export interface AppliedFieldsOf {
    consume: { charged: number };
    purchase: { granted: number; /** Unix ms when the pack's credits expire. */ expires_at: number };
    allocate: { granted: number; /** Monthly credits removed by the rollover cap (0 if none). */ forfeited: number };
    hold: { held: number; /** Unix ms when the hold expires unless captured or released. */ hold_expires_at: number };
    capture: { charged: number; released: number };
    release: { released: number };
    refund: { refunded: number };
    revoke: { /** Credits taken from the lot (0 if all were spent). */ revoked: number };
    grant: { granted: number; /** Unix ms, present when the grant had valid_days. */ expires_at?: number };
    cancel: { forfeited: number };
}

const APPLIED_REQUIRED: { [T in JobType]: readonly (keyof AppliedFieldsOf[T] & string)[] } = {
    consume: ["charged"],
    purchase: ["granted", "expires_at"],
    allocate: ["granted", "forfeited"],
    hold: ["held", "hold_expires_at"],
    capture: ["charged", "released"],
    release: ["released"],
    refund: ["refunded"],
    revoke: ["revoked"],
    grant: ["granted"],
    cancel: ["forfeited"],
};

export type AppliedResult<T extends JobType> = ResultBase<T> & { status: "applied"; balance: Balance } & AppliedFieldsOf[T];

/** insufficient_credits carries the balance (what the user has); other rejections do not. */
type Rejection<E extends ErrorCode> = E extends "insufficient_credits"
    ? { error: E; balance: Balance }
    : { error: E; balance?: undefined };

export type RejectedResult<T extends JobType> = ResultBase<T> & {
    status: "rejected";
    /** A sentence for people naming the problem. */
    message: string;
} & Rejection<StoredErrorOf[T]>;

/**
 * What a job function of type T resolves with: applied, or rejected with
 * one of the stored codes of its type. (Refusals of the message itself and
 * id_conflict are thrown, see errors.ts.)
 */
export type ResultOf<T extends JobType> = AppliedResult<T> | RejectedResult<T>;

/** Any decision of a known job type. */
export type JobResult = { [T in JobType]: ResultOf<T> }[JobType];

/**
 * A decision that is not a job's own: an id_conflict, or a refusal of the
 * message (invalid_job, unsupported_version, wrong_stream), with `type`
 * absent when the worker could not read one.
 */
export interface OtherResult {
    v: 1;
    id?: string;
    type?: string;
    user?: string;
    status: "rejected";
    error: MessageErrorCode | "id_conflict";
    message: string;
    done_at: number;
    replayed: boolean;
}

export type CreditsResult = JobResult | OtherResult;

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/** A msgpack map as decoded (not an array, not bytes). Internal: events.ts shares it. */
export function isRecord(x: unknown): x is Record<string, unknown> {
    return typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array);
}

/**
 * msgpack integers are decoded as bigint when they are 64-bit encoded
 * (useBigInt64), so nothing is rounded on the way; here each becomes a
 * number, or the whole result is refused. Internal: events.ts shares it
 * (`what` names the kind of message in the error).
 */
export function safeIntegers(x: unknown, path: string, what = "result"): unknown {
    if (typeof x === "bigint") {
        if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER))
            throw new CreditsProtocolError(`${what} field ${path} = ${x} is beyond Number.MAX_SAFE_INTEGER`);
        return Number(x);
    }
    if (Array.isArray(x)) return x.map((v, i) => safeIntegers(v, `${path}[${i}]`, what));
    if (isRecord(x)) {
        const out: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(x)) out[k] = safeIntegers(v, path ? `${path}.${k}` : k, what);
        return out;
    }
    return x;
}

/** A whole number within Number.MAX_SAFE_INTEGER. Internal: events.ts shares it. */
export function isInt(x: unknown): x is number {
    return typeof x === "number" && Number.isSafeInteger(x);
}

const INT_KEYS = [
    "charged", "granted", "forfeited", "expires_at", "held", "hold_expires_at", "released", "refunded", "revoked",
] as const;
const STR_KEYS = ["id", "type", "user", "error", "message"] as const;
export const BALANCE_KEYS = ["total", "pack", "monthly", "grant", "held"] as const;

/**
 * Decodes a result's msgpack bytes (from P:result:{id} or P:results) and
 * checks it: throws CreditsProtocolError if it is not a v1 result, if a
 * known key has the wrong type, if an applied result lacks a key its type
 * always has, if a balance lacks one of its five keys, or if an integer is beyond Number.MAX_SAFE_INTEGER. Keys it
 * does not know are kept as they are (readers ignore them).
 */
export function decodeResult(bytes: Uint8Array): CreditsResult {
    let raw: unknown;
    try {
        raw = decode(bytes, { useBigInt64: true });
    } catch (e) {
        throw new CreditsProtocolError(`a result is not msgpack: ${(e as Error).message}`);
    }
    const r = safeIntegers(raw, "");
    if (!isRecord(r)) throw new CreditsProtocolError("a result is not a msgpack map");
    if (r.v !== 1) throw new CreditsProtocolError(`result v is ${String(r.v)}, not 1`);
    if (r.status !== "applied" && r.status !== "rejected")
        throw new CreditsProtocolError(`result status is ${String(r.status)}, not applied or rejected`);
    if (!isInt(r.done_at)) throw new CreditsProtocolError("result done_at is not an integer");
    if ("replayed" in r && typeof r.replayed !== "boolean")
        throw new CreditsProtocolError("result replayed is not a boolean");
    r.replayed ??= false;
    for (const k of STR_KEYS)
        if (k in r && typeof r[k] !== "string") throw new CreditsProtocolError(`result ${k} is not a string`);
    for (const k of INT_KEYS)
        if (k in r && !isInt(r[k])) throw new CreditsProtocolError(`result ${k} is not an integer`);
    if ("balance" in r) {
        const b = r.balance;
        if (!isRecord(b)) throw new CreditsProtocolError("result balance is not a map");
        for (const k of BALANCE_KEYS) {
            // A balance without grant and held comes from a worker that
            // predates revision 2 of the contract, which this package needs.
            if (!(k in b)) throw new CreditsProtocolError(`result balance has no ${k} (a worker older than contract revision 2?)`);
            if (!isInt(b[k])) throw new CreditsProtocolError(`result balance.${k} is not an integer`);
        }
    }
    if (r.status === "rejected") {
        if (typeof r.error !== "string") throw new CreditsProtocolError("a rejected result has no error code");
        if (r.error === "insufficient_credits" && !("balance" in r))
            throw new CreditsProtocolError("an insufficient_credits result has no balance");
    } else {
        if (typeof r.id !== "string" || typeof r.user !== "string" || !("balance" in r))
            throw new CreditsProtocolError("an applied result lacks id, user or balance");
        const type = r.type as JobType;
        if (!JOB_TYPES.includes(type)) throw new CreditsProtocolError(`an applied result of unknown type ${String(r.type)}`);
        for (const k of APPLIED_REQUIRED[type])
            if (!(k in r)) throw new CreditsProtocolError(`an applied ${type} result has no ${k}`);
    }
    return r as unknown as CreditsResult;
}

/** Whether a result is a decision about a job of type T (and not an id_conflict or an unreadable message). */
export function isResultOf<T extends JobType>(result: CreditsResult, type: T): result is Extract<JobResult, { type: T }> {
    return result.type === type && (result as { error?: string }).error !== "id_conflict";
}
