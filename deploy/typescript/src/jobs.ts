// jobs.ts -- the ten job types of the contract (schemas/CONTRACT.md; the
// seven of revision 2 are in section 9.3 of the design contract), their
// rules, and their msgpack encoding.
//
// Every rule the worker checks on a field is checked here first, so that the
// client never sends a job the worker would refuse as invalid_job: a bad
// request throws CreditsValidationError, naming the field, before anything
// is sent.

import { encode } from "@msgpack/msgpack";
import { CreditsValidationError } from "./errors.js";

/** The contract version every job and result carries. */
export const CONTRACT_VERSION = 1;

/** The three job streams, `P:jobs:{stream}`. */
export type Stream = "consume" | "purchase" | "allocate";

export const STREAMS: readonly Stream[] = ["consume", "purchase", "allocate"];

/** Contract v1's job types. */
export type V1JobType = "consume" | "purchase" | "allocate";

/** Revision 2's job types (section 9.3). */
export type Revision2JobType = "hold" | "capture" | "release" | "refund" | "revoke" | "grant" | "cancel";

export type JobType = V1JobType | Revision2JobType;

/** Which stream carries each job type (section 9.2); any other pairing is wrong_stream. */
export const STREAM_OF: Readonly<Record<JobType, Stream>> = {
    consume: "consume",
    hold: "consume",
    capture: "consume",
    release: "consume",
    refund: "consume",
    purchase: "purchase",
    revoke: "purchase",
    allocate: "allocate",
    grant: "allocate",
    cancel: "allocate",
};

export const JOB_TYPES: readonly JobType[] = Object.keys(STREAM_OF) as JobType[];

// ---------------------------------------------------------------------------
// Requests: what the caller passes to the client's job functions. `key` is
// the idempotency key; the job ID is the stream's configured ID prefix
// followed by the key (CreditsClientOptions.idPrefixes).
// ---------------------------------------------------------------------------

interface Keyed {
    /**
     * The idempotency key: it repeats exactly when the same business event
     * repeats (a retried tool run, a redelivered webhook), and is new for
     * every new attempt. A stored decision, a rejection included, answers
     * every later job with the same ID forever.
     */
    key: string;
    /** The user ID: 1 to 128 printable ASCII characters (0x21..0x7E). */
    user: string;
}

export interface ConsumeRequest extends Keyed {
    /** Credits to spend, 1 to 1000000000. */
    amount: number;
    /** Which tool spends them (kept in the history), at most 64 bytes of UTF-8. */
    tool?: string;
    /** Your reference, e.g. a video ID (kept in the history), at most 128 bytes. */
    ref?: string;
}

export interface PurchaseRequest extends Keyed {
    /** A pack ID of the catalog (credits.packs), 1 to 64 bytes. */
    pack: string;
    /** The payment provider's capture or order ID, 1 to 128 bytes: one payment grants credits once. */
    paymentRef: string;
}

export interface AllocateRequest extends Omit<Keyed, "key"> {
    /**
     * Default: `{user}:{period}` after the allocate stream's ID prefix, or
     * `alloc:{user}:{period}` when no prefix is configured, so that a second
     * run of the monthly job allocates nothing twice.
     */
    key?: string;
    /** A plan ID of the catalog (credits.plans), 1 to 64 bytes. */
    plan: string;
    /** The billing month, YYYY-MM (month 01 to 12). */
    period: string;
}

export interface HoldRequest extends Keyed {
    /** Credits to reserve, 1 to 1000000000. */
    amount: number;
    /** Seconds the hold lives, 1 to 604800 (the worker's default: 3600). */
    ttlSeconds?: number;
    tool?: string;
    ref?: string;
}

export interface CaptureRequest extends Keyed {
    /** The job ID of the hold (as its result's `id` shows it: with its prefix). */
    hold: string;
    /** The real cost, 0 to 1000000000; above the hold's amount the worker answers capture_exceeds_hold. */
    amount: number;
}

export interface ReleaseRequest extends Keyed {
    /** The job ID of the hold. */
    hold: string;
}

export interface RefundRequest extends Keyed {
    /** The job ID of an applied consume or capture of the same user. */
    charge: string;
    /** Credits to give back, 1 to 1000000000; absent: all that is still refundable. */
    amount?: number;
}

export interface RevokeRequest extends Keyed {
    /** The payment_ref of a purchase of the same user, 1 to 128 bytes. */
    paymentRef: string;
}

export interface GrantRequest extends Keyed {
    /** Credits given, 1 to 1000000000. */
    amount: number;
    /** The credits expire this many days after the grant, 1 to 36500; absent: never. */
    validDays?: number;
    /** Why (kept in the history, in the entry's ref), at most 128 bytes. */
    reason?: string;
}

export interface CancelRequest extends Keyed {
    /** Also forfeit the user's usable monthly credits (the worker's default: false). */
    forfeit?: boolean;
}

export interface RequestOf {
    consume: ConsumeRequest;
    purchase: PurchaseRequest;
    allocate: AllocateRequest;
    hold: HoldRequest;
    capture: CaptureRequest;
    release: ReleaseRequest;
    refund: RefundRequest;
    revoke: RevokeRequest;
    grant: GrantRequest;
    cancel: CancelRequest;
}

// ---------------------------------------------------------------------------
// Wire jobs: the msgpack map, keys as the contract names them. An optional
// key that is undefined is left out of the encoding.
// ---------------------------------------------------------------------------

interface WireCommon<T extends JobType> {
    v: 1;
    id: string;
    type: T;
    user: string;
    reply?: boolean;
}

export interface WireJobOf {
    consume: WireCommon<"consume"> & { amount: number; tool?: string | undefined; ref?: string | undefined };
    purchase: WireCommon<"purchase"> & { pack: string; payment_ref: string };
    allocate: WireCommon<"allocate"> & { plan: string; period: string };
    hold: WireCommon<"hold"> & {
        amount: number; ttl?: number | undefined; tool?: string | undefined; ref?: string | undefined;
    };
    capture: WireCommon<"capture"> & { hold: string; amount: number };
    release: WireCommon<"release"> & { hold: string };
    refund: WireCommon<"refund"> & { charge: string; amount?: number | undefined };
    revoke: WireCommon<"revoke"> & { payment_ref: string };
    grant: WireCommon<"grant"> & { amount: number; valid_days?: number | undefined; reason?: string | undefined };
    cancel: WireCommon<"cancel"> & { forfeit?: boolean | undefined };
}

export type WireJob = WireJobOf[JobType];

// ---------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------

export const AMOUNT_MAX = 1_000_000_000;
export const HOLD_TTL_MAX_S = 604_800;
export const VALID_DAYS_MAX = 36_500;
export const JOB_BYTES_MAX = 4096;
/** Job IDs the worker's sweep uses (revision 2, section 9.7); a producer's ID may not start with it. */
export const RESERVED_ID_PREFIX = "expire:";

const ID_RE = /^[\x21-\x7e]{1,128}$/;
const PERIOD_RE = /^[0-9]{4}-(0[1-9]|1[0-2])$/;
const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function fail(field: string, rule: string): never {
    throw new CreditsValidationError(field, `${field} ${rule}`);
}

function describe(value: unknown): string {
    if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
    return String(value);
}

export function checkId(field: string, value: unknown): string {
    if (typeof value !== "string" || !ID_RE.test(value))
        fail(field, `must be 1 to 128 printable ASCII characters (0x21..0x7E), got ${describe(value)}`);
    return value;
}

function checkText(field: string, value: unknown, min: number, max: number): string {
    if (typeof value !== "string") fail(field, `must be a string, got ${typeof value}`);
    if (LONE_SURROGATE_RE.test(value) || value.includes("\0"))
        fail(field, "must be valid UTF-8 without NUL characters");
    const n = Buffer.byteLength(value, "utf8");
    if (n < min || n > max) fail(field, `must be ${min} to ${max} bytes of UTF-8, got ${n}`);
    return value;
}

function checkInt(field: string, value: unknown, min: number, max: number): number {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
        fail(field, `must be an integer from ${min} to ${max}, got ${describe(value)}`);
    return value;
}

function checkBool(field: string, value: unknown): boolean {
    if (typeof value !== "boolean") fail(field, `must be a boolean, got ${describe(value)}`);
    return value;
}

function present(job: Record<string, unknown>, key: string): boolean {
    return Object.prototype.hasOwnProperty.call(job, key) && job[key] !== undefined;
}

/**
 * Checks a wire job against the contract; throws CreditsValidationError on
 * the first field that breaks a rule. Keys another type uses are not
 * checked (the worker ignores them); the encoder never sends any.
 */
export function validateJob(job: Record<string, unknown>): void {
    if (job.v !== CONTRACT_VERSION) fail("v", `must be ${CONTRACT_VERSION}, got ${describe(job.v)}`);
    const id = checkId("id", job.id);
    if (id.startsWith(RESERVED_ID_PREFIX))
        fail("id", `must not start with "${RESERVED_ID_PREFIX}" (reserved for the worker's expiries)`);
    if (typeof job.type !== "string" || !(job.type in STREAM_OF))
        fail("type", `must be one of ${JOB_TYPES.join(", ")}, got ${describe(job.type)}`);
    checkId("user", job.user);
    if (present(job, "reply")) checkBool("reply", job.reply);
    const opt = (key: string, check: (field: string, value: unknown) => unknown) => {
        if (present(job, key)) check(key, job[key]);
    };
    const tool = (f: string, v: unknown) => checkText(f, v, 0, 64);
    const ref = (f: string, v: unknown) => checkText(f, v, 0, 128);
    switch (job.type as JobType) {
    case "consume":
        checkInt("amount", job.amount, 1, AMOUNT_MAX);
        opt("tool", tool);
        opt("ref", ref);
        return;
    case "purchase":
        checkText("pack", job.pack, 1, 64);
        checkText("payment_ref", job.payment_ref, 1, 128);
        return;
    case "allocate":
        checkText("plan", job.plan, 1, 64);
        if (typeof job.period !== "string" || !PERIOD_RE.test(job.period))
            fail("period", `must be YYYY-MM with a month from 01 to 12, got ${describe(job.period)}`);
        return;
    case "hold":
        checkInt("amount", job.amount, 1, AMOUNT_MAX);
        opt("ttl", (f, v) => checkInt(f, v, 1, HOLD_TTL_MAX_S));
        opt("tool", tool);
        opt("ref", ref);
        return;
    case "capture":
        checkId("hold", job.hold);
        checkInt("amount", job.amount, 0, AMOUNT_MAX);
        return;
    case "release":
        checkId("hold", job.hold);
        return;
    case "refund":
        checkId("charge", job.charge);
        opt("amount", (f, v) => checkInt(f, v, 1, AMOUNT_MAX));
        return;
    case "revoke":
        checkText("payment_ref", job.payment_ref, 1, 128);
        return;
    case "grant":
        checkInt("amount", job.amount, 1, AMOUNT_MAX);
        opt("valid_days", (f, v) => checkInt(f, v, 1, VALID_DAYS_MAX));
        opt("reason", ref);
        return;
    case "cancel":
        opt("forfeit", checkBool);
        return;
    }
}

/**
 * Validates and encodes a wire job as the msgpack map the worker reads.
 * Undefined fields are left out: to the worker nil is not "absent", it is
 * invalid.
 */
export function encodeJob(job: WireJob | Record<string, unknown>): Uint8Array {
    const map = job as Record<string, unknown>;
    validateJob(map);
    const bytes = encode(map, { ignoreUndefined: true });
    if (bytes.length > JOB_BYTES_MAX)
        throw new CreditsValidationError("job", `the encoded job is ${bytes.length} bytes, over ${JOB_BYTES_MAX}`);
    return bytes;
}

// ---------------------------------------------------------------------------
// Requests to wire jobs
// ---------------------------------------------------------------------------

/** The per-stream ID prefixes (the worker's CREDITS_ID_PREFIXES, section 9.9). */
export type IdPrefixes = Partial<Record<Stream, string>>;

/** The job ID of an idempotency key on a stream: the stream's prefix, then the key. */
export function jobIdFor(prefixes: IdPrefixes, stream: Stream, key: string): string {
    if (typeof key !== "string" || key.length === 0) fail("key", "must be a non-empty string");
    return checkId("id", `${prefixes[stream] ?? ""}${key}`);
}

function base<T extends JobType>(type: T, prefixes: IdPrefixes, key: string, user: string): WireCommon<T> {
    return { v: CONTRACT_VERSION, id: jobIdFor(prefixes, STREAM_OF[type], key), type, user };
}

/** The default key of an allocation (see AllocateRequest.key). */
export function allocateKey(prefixes: IdPrefixes, user: string, period: string): string {
    return prefixes.allocate ? `${user}:${period}` : `alloc:${user}:${period}`;
}

/** Turns a request into its wire job (not yet validated: encodeJob does that). */
export function toWireJob<T extends JobType>(type: T, req: RequestOf[T], prefixes: IdPrefixes): WireJobOf[T] {
    // Each case builds exactly the contract's keys for its type.
    const r: unknown = req;
    let job: WireJob;
    switch (type as JobType) {
    case "consume": {
        const q = r as ConsumeRequest;
        job = { ...base("consume", prefixes, q.key, q.user), amount: q.amount, tool: q.tool, ref: q.ref };
        break;
    }
    case "purchase": {
        const q = r as PurchaseRequest;
        job = { ...base("purchase", prefixes, q.key, q.user), pack: q.pack, payment_ref: q.paymentRef };
        break;
    }
    case "allocate": {
        const q = r as AllocateRequest;
        const key = q.key ?? allocateKey(prefixes, q.user, q.period);
        job = { ...base("allocate", prefixes, key, q.user), plan: q.plan, period: q.period };
        break;
    }
    case "hold": {
        const q = r as HoldRequest;
        job = {
            ...base("hold", prefixes, q.key, q.user), amount: q.amount, ttl: q.ttlSeconds, tool: q.tool, ref: q.ref,
        };
        break;
    }
    case "capture": {
        const q = r as CaptureRequest;
        job = { ...base("capture", prefixes, q.key, q.user), hold: q.hold, amount: q.amount };
        break;
    }
    case "release": {
        const q = r as ReleaseRequest;
        job = { ...base("release", prefixes, q.key, q.user), hold: q.hold };
        break;
    }
    case "refund": {
        const q = r as RefundRequest;
        job = { ...base("refund", prefixes, q.key, q.user), charge: q.charge, amount: q.amount };
        break;
    }
    case "revoke": {
        const q = r as RevokeRequest;
        job = { ...base("revoke", prefixes, q.key, q.user), payment_ref: q.paymentRef };
        break;
    }
    case "grant": {
        const q = r as GrantRequest;
        job = {
            ...base("grant", prefixes, q.key, q.user), amount: q.amount, valid_days: q.validDays, reason: q.reason,
        };
        break;
    }
    case "cancel": {
        const q = r as CancelRequest;
        job = { ...base("cancel", prefixes, q.key, q.user), forfeit: q.forfeit };
        break;
    }
    }
    return job as WireJobOf[T];
}
