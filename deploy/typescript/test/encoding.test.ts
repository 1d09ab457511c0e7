// encoding.test.ts -- no worker needed: every job type's encoding, field by
// field, against the contract (v1, and revision 2's section 9.3); the ID
// prefixes; the rules; the result decoder's checks, and its refusal of
// integers a number cannot hold exactly.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decode, encode } from "@msgpack/msgpack";
import { Redis } from "ioredis";
import {
    CreditsClient,
    CreditsProtocolError,
    CreditsTimeoutError,
    CreditsValidationError,
    ERROR_CODES,
    JOB_TYPES,
    STORED_ERROR_CODES,
    STREAM_OF,
    decodeResult,
    encodeJob,
    toSafeNumber,
    toWireJob,
    type IdPrefixes,
    type JobType,
    type RequestOf,
} from "../src/index.js";
import { topLevelKeys } from "./msgpack-shape.js";

const NONE: IdPrefixes = {};
const PREFIXES: IdPrefixes = { consume: "web:", purchase: "pay:", allocate: "alloc:" };

/** Encodes a request as the client would and returns the decoded map and its key shapes. */
function wire<T extends JobType>(type: T, req: RequestOf[T], prefixes: IdPrefixes = NONE) {
    const bytes = encodeJob(toWireJob(type, req, prefixes));
    const shape = Object.fromEntries(topLevelKeys(bytes).map((k) => [k.key, k.value]));
    assert.equal(Object.keys(shape).length, topLevelKeys(bytes).length, "each key once");
    return { map: decode(bytes) as Record<string, unknown>, shape };
}

describe("job encoding, field by field", () => {
    it("maps each type to its stream as the contract's section 9.2 does", () => {
        assert.deepEqual(STREAM_OF, {
            consume: "consume", hold: "consume", capture: "consume", release: "consume", refund: "consume",
            purchase: "purchase", revoke: "purchase",
            allocate: "allocate", grant: "allocate", cancel: "allocate",
        });
        assert.equal(JOB_TYPES.length, 10);
    });

    it("consume: v, id, type, user, amount, tool, ref; optional ones left out when absent", () => {
        const full = wire("consume", { key: "run-1", user: "u1", amount: 40, tool: "upscale", ref: "video-42" });
        assert.deepEqual(full.map, { v: 1, id: "run-1", type: "consume", user: "u1", amount: 40, tool: "upscale", ref: "video-42" });
        assert.deepEqual(full.shape, { v: "int", id: "str", type: "str", user: "str", amount: "int", tool: "str", ref: "str" });
        assert.deepEqual(wire("consume", { key: "run-1", user: "u1", amount: 1_000_000_000 }).map,
            { v: 1, id: "run-1", type: "consume", user: "u1", amount: 1_000_000_000 });
        // An empty tool is a field, not an absent one (the worker compares them as different).
        assert.equal(wire("consume", { key: "k", user: "u", amount: 1, tool: "" }).map.tool, "");
    });

    it("purchase: pack and payment_ref", () => {
        const { map, shape } = wire("purchase", { key: "evt_1", user: "u1", pack: "starter", paymentRef: "cap_1" });
        assert.deepEqual(map, { v: 1, id: "evt_1", type: "purchase", user: "u1", pack: "starter", payment_ref: "cap_1" });
        assert.deepEqual(shape, { v: "int", id: "str", type: "str", user: "str", pack: "str", payment_ref: "str" });
    });

    it("allocate: plan and period, with the scheduler's ID alloc:{user}:{period} by default", () => {
        assert.deepEqual(wire("allocate", { user: "u1", plan: "pro", period: "2026-11" }).map,
            { v: 1, id: "alloc:u1:2026-11", type: "allocate", user: "u1", plan: "pro", period: "2026-11" });
        assert.equal(wire("allocate", { user: "u1", plan: "pro", period: "2026-11" }, PREFIXES).map.id,
            "alloc:u1:2026-11", "with the allocate prefix alloc: the same ID");
        assert.equal(wire("allocate", { key: "mine", user: "u1", plan: "pro", period: "2026-11" }).map.id, "mine");
    });

    it("hold: amount, ttl, tool, ref (9.3)", () => {
        const { map, shape } = wire("hold", { key: "h1", user: "u1", amount: 300, ttlSeconds: 900, tool: "render", ref: "v9" });
        assert.deepEqual(map, { v: 1, id: "h1", type: "hold", user: "u1", amount: 300, ttl: 900, tool: "render", ref: "v9" });
        assert.deepEqual(shape, { v: "int", id: "str", type: "str", user: "str", amount: "int", ttl: "int", tool: "str", ref: "str" });
        assert.deepEqual(wire("hold", { key: "h1", user: "u1", amount: 1 }).map,
            { v: 1, id: "h1", type: "hold", user: "u1", amount: 1 }, "ttl absent: the worker's default");
    });

    it("capture: hold and amount, amount 0 allowed (9.3)", () => {
        const { map, shape } = wire("capture", { key: "c1", user: "u1", hold: "web:h1", amount: 0 });
        assert.deepEqual(map, { v: 1, id: "c1", type: "capture", user: "u1", hold: "web:h1", amount: 0 });
        assert.deepEqual(shape, { v: "int", id: "str", type: "str", user: "str", hold: "str", amount: "int" });
    });

    it("release: hold (9.3)", () => {
        assert.deepEqual(wire("release", { key: "r1", user: "u1", hold: "h1" }).map,
            { v: 1, id: "r1", type: "release", user: "u1", hold: "h1" });
    });

    it("refund: charge and an optional amount (9.3)", () => {
        const { map, shape } = wire("refund", { key: "f1", user: "u1", charge: "run-1", amount: 5 });
        assert.deepEqual(map, { v: 1, id: "f1", type: "refund", user: "u1", charge: "run-1", amount: 5 });
        assert.deepEqual(shape, { v: "int", id: "str", type: "str", user: "str", charge: "str", amount: "int" });
        assert.deepEqual(wire("refund", { key: "f2", user: "u1", charge: "run-1" }).map,
            { v: 1, id: "f2", type: "refund", user: "u1", charge: "run-1" }, "absent: all that is refundable");
    });

    it("revoke: payment_ref, on the purchase stream (9.3)", () => {
        const { map } = wire("revoke", { key: "chargeback-1", user: "u1", paymentRef: "cap_1" }, PREFIXES);
        assert.deepEqual(map, { v: 1, id: "pay:chargeback-1", type: "revoke", user: "u1", payment_ref: "cap_1" });
    });

    it("grant: amount, valid_days, reason, on the allocate stream (9.3)", () => {
        const { map, shape } = wire("grant", { key: "bonus-1", user: "u1", amount: 50, validDays: 30, reason: "sign-up" }, PREFIXES);
        assert.deepEqual(map, { v: 1, id: "alloc:bonus-1", type: "grant", user: "u1", amount: 50, valid_days: 30, reason: "sign-up" });
        assert.deepEqual(shape, { v: "int", id: "str", type: "str", user: "str", amount: "int", valid_days: "int", reason: "str" });
        assert.deepEqual(wire("grant", { key: "g", user: "u1", amount: 1 }).map,
            { v: 1, id: "g", type: "grant", user: "u1", amount: 1 }, "no valid_days: never expires");
    });

    it("cancel: forfeit as a bool, absent by default (9.3)", () => {
        const { map, shape } = wire("cancel", { key: "x1", user: "u1", forfeit: true });
        assert.deepEqual(map, { v: 1, id: "x1", type: "cancel", user: "u1", forfeit: true });
        assert.deepEqual(shape, { v: "int", id: "str", type: "str", user: "str", forfeit: "bool" });
        assert.deepEqual(wire("cancel", { key: "x2", user: "u1" }).map, { v: 1, id: "x2", type: "cancel", user: "u1" });
    });

    it("prefixes each idempotency key with its stream's namespace", () => {
        const cases: [JobType, RequestOf[JobType], string][] = [
            ["consume", { key: "k", user: "u", amount: 1 }, "web:k"],
            ["hold", { key: "k", user: "u", amount: 1 }, "web:k"],
            ["capture", { key: "k", user: "u", hold: "web:h", amount: 1 }, "web:k"],
            ["release", { key: "k", user: "u", hold: "web:h" }, "web:k"],
            ["refund", { key: "k", user: "u", charge: "web:c" }, "web:k"],
            ["purchase", { key: "k", user: "u", pack: "p", paymentRef: "r" }, "pay:k"],
            ["revoke", { key: "k", user: "u", paymentRef: "r" }, "pay:k"],
            ["allocate", { key: "k", user: "u", plan: "p", period: "2026-01" }, "alloc:k"],
            ["grant", { key: "k", user: "u", amount: 1 }, "alloc:k"],
            ["cancel", { key: "k", user: "u" }, "alloc:k"],
        ];
        for (const [type, req, id] of cases) {
            assert.equal(toWireJob(type, req, PREFIXES).id, id, type);
            assert.equal(toWireJob(type, req, NONE).id, "k", `${type} without prefixes`);
        }
        // The hold and charge references are job IDs, taken as they are.
        assert.equal(toWireJob("capture", { key: "k", user: "u", hold: "web:h", amount: 1 }, PREFIXES).hold, "web:h");
        // Never connected: lazyConnect, and nothing is sent.
        const redis = new Redis("redis://127.0.0.1:1", { lazyConnect: true });
        const client = new CreditsClient({ redis, idPrefixes: PREFIXES });
        assert.equal(client.jobId("grant", "bonus"), "alloc:bonus");
        assert.throws(() => new CreditsClient({ redis, idPrefixes: { refunds: "r:" } as IdPrefixes }),
            /unknown stream "refunds"/);
        assert.throws(() => new CreditsClient({ redis, idPrefixes: { consume: "a b" } }), /printable ASCII/);
        assert.throws(() => new CreditsClient({ redis: "localhost:6379" }), /redis:\/\/ URL/);
    });
});

describe("job rules", () => {
    const bad = <T extends JobType>(type: T, req: RequestOf[T], field: string, prefixes: IdPrefixes = NONE) =>
        assert.throws(() => encodeJob(toWireJob(type, req, prefixes)),
            (e: unknown) => e instanceof CreditsValidationError && e.field === field,
            `${type} ${JSON.stringify(req)}: ${field}`);

    it("refuses every out-of-range or malformed field, naming it", () => {
        bad("consume", { key: "k", user: "u", amount: 0 }, "amount");
        bad("consume", { key: "k", user: "u", amount: 1_000_000_001 }, "amount");
        bad("consume", { key: "k", user: "u", amount: 1.5 }, "amount");
        bad("consume", { key: "has space", user: "u", amount: 1 }, "id");
        bad("consume", { key: "k", user: "", amount: 1 }, "user");
        bad("consume", { key: "k", user: "u", amount: 1, tool: "x".repeat(65) }, "tool");
        bad("consume", { key: "k", user: "u", amount: 1, ref: "\u0000" }, "ref");
        bad("consume", { key: "k", user: "u", amount: 1, tool: "\uD800" }, "tool");
        bad("consume", { key: "x".repeat(125), user: "u", amount: 1 }, "id", PREFIXES); // 129 with "web:"
        bad("consume", { key: "expire:7", user: "u", amount: 1 }, "id");
        bad("purchase", { key: "k", user: "u", pack: "", paymentRef: "r" }, "pack");
        bad("purchase", { key: "k", user: "u", pack: "p", paymentRef: "r".repeat(129) }, "payment_ref");
        bad("allocate", { user: "u", plan: "pro", period: "2026-13" }, "period");
        bad("allocate", { user: "u", plan: "x".repeat(65), period: "2026-12" }, "plan");
        bad("hold", { key: "k", user: "u", amount: 0 }, "amount");
        bad("hold", { key: "k", user: "u", amount: 1, ttlSeconds: 0 }, "ttl");
        bad("hold", { key: "k", user: "u", amount: 1, ttlSeconds: 604_801 }, "ttl");
        bad("capture", { key: "k", user: "u", hold: "h", amount: -1 }, "amount");
        bad("capture", { key: "k", user: "u", hold: "", amount: 1 }, "hold");
        bad("release", { key: "k", user: "u", hold: "h h" }, "hold");
        bad("refund", { key: "k", user: "u", charge: "c", amount: 0 }, "amount");
        bad("refund", { key: "k", user: "u", charge: "c".repeat(129) }, "charge");
        bad("revoke", { key: "k", user: "u", paymentRef: "" }, "payment_ref");
        bad("grant", { key: "k", user: "u", amount: 1, validDays: 0 }, "valid_days");
        bad("grant", { key: "k", user: "u", amount: 1, validDays: 36_501 }, "valid_days");
        bad("grant", { key: "k", user: "u", amount: 1, reason: "r".repeat(129) }, "reason");
        bad("cancel", { key: "k", user: "u", forfeit: "yes" as unknown as boolean }, "forfeit");
        // The limits themselves are allowed.
        encodeJob(toWireJob("hold", { key: "k", user: "u", amount: 1, ttlSeconds: 604_800 }, NONE));
        encodeJob(toWireJob("grant", { key: "k", user: "u", amount: 1, validDays: 36_500, reason: "r".repeat(128) }, NONE));
        encodeJob(toWireJob("consume", { key: "x".repeat(124), user: "u", amount: 1 }, PREFIXES));
    });

    it("refuses a job over 4096 bytes", () => {
        // Each field within its own limit, the whole map over the contract's.
        const job = { v: 1, id: "k", type: "consume", user: "u", amount: 1, pad: "x".repeat(4100) };
        assert.throws(() => encodeJob(job), /over 4096/);
    });
});

describe("result decoding", () => {
    const base = { v: 1, id: "j", type: "consume", user: "u", done_at: 1_700_000_000_000, replayed: false };

    const zero = { total: 0, pack: 0, monthly: 0, grant: 0, held: 0 };

    it("reads every key of revision 2's results (9.5)", () => {
        const r = decodeResult(encode({
            ...base, type: "capture", status: "applied",
            balance: { total: 10, pack: 4, monthly: 5, grant: 1, held: 20 }, charged: 7, released: 3,
        }));
        assert.equal(r.status, "applied");
        assert.deepEqual((r as { balance: unknown }).balance, { total: 10, pack: 4, monthly: 5, grant: 1, held: 20 });
        const hold = decodeResult(encode({
            ...base, type: "hold", status: "applied", balance: zero, held: 5, hold_expires_at: 1_700_000_360_000,
        }));
        assert.equal((hold as { hold_expires_at: number }).hold_expires_at, 1_700_000_360_000);
    });

    it("refuses a balance without its five keys (a worker older than revision 2)", () => {
        for (const key of ["total", "pack", "monthly", "grant", "held"]) {
            const balance: Record<string, number> = { ...zero };
            delete balance[key];
            assert.throws(() => decodeResult(encode({ ...base, status: "applied", balance, charged: 1 })),
                (e: unknown) => e instanceof CreditsProtocolError && e.message.includes(`balance has no ${key}`), key);
        }
        assert.throws(() => decodeResult(encode({ ...base, status: "applied", balance: { ...zero, held: "5" }, charged: 1 })),
            /balance\.held is not an integer/);
        assert.throws(() => decodeResult(encode({ ...base, status: "applied", balance: [1, 2], charged: 1 })),
            /balance is not a map/);
        // A key the contract does not know is kept (readers ignore them).
        const later = decodeResult(encode({ ...base, status: "applied", balance: { ...zero, gift: 3 }, charged: 1 }));
        assert.equal((later as unknown as { balance: Record<string, number> }).balance.gift, 3);
    });

    it("refuses a result missing what its type always carries", () => {
        assert.throws(() => decodeResult(encode({ ...base, status: "applied", balance: { ...zero, total: 1, pack: 1 } })),
            /applied consume result has no charged/);
        assert.throws(() => decodeResult(encode({ ...base, status: "rejected", error: "insufficient_credits", message: "m" })),
            /insufficient_credits result has no balance/);
        assert.throws(() => decodeResult(encode({ ...base, v: 2, status: "applied" })), /v is 2/);
        assert.throws(() => decodeResult(encode([1, 2])), /not a msgpack map/);
        assert.throws(() => decodeResult(Uint8Array.of(0xc1)), CreditsProtocolError);
    });

    it("refuses an integer beyond Number.MAX_SAFE_INTEGER instead of rounding it", () => {
        const big = 2n ** 53n + 1n;
        const bytes = encode({ ...base, status: "applied", balance: { ...zero, total: big, pack: big }, charged: 1 },
            { useBigInt64: true });
        assert.throws(() => decodeResult(bytes), (e: unknown) =>
            e instanceof CreditsProtocolError && /balance\.total = 9007199254740993/.test(e.message));
        // The largest safe value, 64-bit encoded, is read exactly.
        const edge = BigInt(Number.MAX_SAFE_INTEGER);
        const ok = decodeResult(encode({ ...base, status: "applied", balance: { ...zero, total: edge, pack: edge }, charged: 1 },
            { useBigInt64: true }));
        assert.equal((ok as { balance: { total: number } }).balance.total, Number.MAX_SAFE_INTEGER);
        assert.equal(toSafeNumber("9007199254740991"), Number.MAX_SAFE_INTEGER);
        assert.throws(() => toSafeNumber("9007199254740993"), RangeError);
        assert.throws(() => toSafeNumber(2n ** 60n), RangeError);
    });

    it("knows every error code of the contract, and which are stored", () => {
        assert.equal(new Set(ERROR_CODES).size, 19);
        for (const code of ["invalid_job", "unsupported_version", "wrong_stream", "id_conflict"] as const)
            assert.equal(STORED_ERROR_CODES.has(code), false, code);
        for (const code of ["insufficient_credits", "stale_period", "unknown_hold", "capture_exceeds_hold",
            "refund_exceeds_charge", "already_revoked", "no_plan"] as const)
            assert.equal(STORED_ERROR_CODES.has(code), true, code);
    });
});

describe("a client whose Redis does not answer", () => {
    it("times out before sending, and says that nothing was sent", async () => {
        // Port 1 on loopback: nothing listens, every connect is refused.
        const client = new CreditsClient({ redis: "redis://127.0.0.1:1", timeoutMs: 200 });
        try {
            await assert.rejects(client.consume({ key: "k", user: "u", amount: 1 }), (e: unknown) =>
                e instanceof CreditsTimeoutError && !e.sent && /was not sent/.test(e.message));
        } finally {
            await client.close();
        }
    });
});
