// producer.test.ts -- the web app's path, proven against a real worker, and
// the contract's test vectors (schemas/vectors/) read with @msgpack/msgpack.
//
//   CREDITS_REDIS_URL=... CREDITS_DATABASE_URL=... CREDITS_PREFIX=... npm test
//
// The worker must be running with the same settings, on a migrated database
// whose catalog holds the plan "pro" (1000 a month) and the pack "starter"
// (500 credits, 90 days): tests/integration/test_typescript.sh sets all of
// that up. Without CREDITS_REDIS_URL only the vector tests run.
// CREDITS_VECTORS_DIR overrides where the vectors are read from.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { after, before, describe, it } from "node:test";
import { decode, encode, ExtData } from "@msgpack/msgpack";
import { Redis } from "ioredis";
import pg from "pg";
import {
    CreditsClient,
    CreditsIdConflictError,
    CreditsTimeoutError,
    CreditsValidationError,
    type CreditsResult,
    decodeResult,
    encodeJob,
    readBalance,
    validateJob,
} from "../src/credits.js";
import { pgConfig } from "../src/pgconfig.js";

// ---------------------------------------------------------------------------
// Vectors
// ---------------------------------------------------------------------------

// dist/test/producer.test.js -> the repository's schemas/vectors/.
const vectorsDir = process.env.CREDITS_VECTORS_DIR
    ? pathToFileURL(`${process.env.CREDITS_VECTORS_DIR.replace(/\/$/, "")}/`)
    : new URL("../../../../schemas/vectors/", import.meta.url);

function readTsv(name: string, columns: string[]): Record<string, string>[] {
    const text = readFileSync(new URL(name, vectorsDir), "utf8");
    const lines = text.split("\n");
    assert.equal(lines.pop(), "", `${name} ends with a newline`);
    assert.deepEqual(lines[0]?.split("\t"), columns, `${name} header`);
    return lines.slice(1).map((line, i) => {
        const cells = line.split("\t");
        assert.equal(cells.length, columns.length, `${name} line ${i + 2} has ${columns.length} columns`);
        return Object.fromEntries(columns.map((c, j) => [c, cells[j] ?? ""]));
    });
}

/**
 * The `meaning` column as a value. It is JSON plus notes: `5 (uint32)` (an
 * integer's encoding), `<bin "...">` and `<fixextN type T>`; those become
 * {$bin: "..."} and {$ext: T, size: N}. Anything else fails the parse,
 * so a new kind of note cannot pass unnoticed.
 */
function parseMeaning(meaning: string): unknown {
    const json = meaning
        .replace(/(-?[0-9]+) \((?:u?int(?:8|16|32|64)|fixint)\)/g, "$1")
        .replace(/<bin "((?:[^"\\]|\\.)*)">/g, (_, s: string) => JSON.stringify({ $bin: JSON.parse(`"${s}"`) }))
        .replace(/<fixext([0-9]+) type (-?[0-9]+)>/g, (_, n: string, t: string) =>
            JSON.stringify({ $ext: Number(t), size: Number(n) }));
    return JSON.parse(json);
}

/** A decoded msgpack value in the form parseMeaning gives. */
function normalize(x: unknown): unknown {
    if (x instanceof ExtData) return { $ext: x.type, size: x.data.length };
    if (x instanceof Uint8Array) return { $bin: String.fromCharCode(...x) };
    if (Array.isArray(x)) return x.map(normalize);
    if (x !== null && typeof x === "object")
        return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, normalize(v)]));
    return x;
}

/** The inverse of normalize: a value to encode. */
function denormalize(x: unknown): unknown {
    if (Array.isArray(x)) return x.map(denormalize);
    if (x !== null && typeof x === "object") {
        const o = x as Record<string, unknown>;
        if (typeof o.$bin === "string") return Uint8Array.from(o.$bin, (c) => c.charCodeAt(0));
        if (typeof o.$ext === "number") return new ExtData(o.$ext, new Uint8Array(Number(o.size)));
        return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, denormalize(v)]));
    }
    return x;
}

/**
 * The top-level keys of an encoded job as written, with whether each is a
 * msgpack str; values may be the scalars a job holds (int, str, bool).
 */
function topLevelKeys(bytes: Uint8Array): { key: string; isStr: boolean }[] {
    let at = 0;
    const u8 = () => bytes[at++] ?? assert.fail("truncated");
    const skip = (n: number) => { at += n; };
    const strLen = (b: number): number | null => {
        if (b >= 0xa0 && b <= 0xbf) return b & 0x1f;
        if (b === 0xd9) return u8();
        if (b === 0xda) return (u8() << 8) | u8();
        return null;
    };
    const head = u8();
    let count: number;
    if (head >= 0x80 && head <= 0x8f) count = head & 0x0f;
    else if (head === 0xde) count = (u8() << 8) | u8();
    else assert.fail(`a job must be a map, got type byte ${head.toString(16)}`);
    const keys: { key: string; isStr: boolean }[] = [];
    for (let i = 0; i < count; i++) {
        const kb = u8();
        const klen = strLen(kb);
        if (klen === null) { keys.push({ key: `<type ${kb.toString(16)}>`, isStr: false }); break; }
        keys.push({ key: Buffer.from(bytes.subarray(at, at + klen)).toString("utf8"), isStr: true });
        skip(klen);
        const vb = u8(); // the value: only what a job holds
        const slen = strLen(vb);
        if (slen !== null) skip(slen);
        else if (vb <= 0x7f || vb >= 0xe0 || vb === 0xc2 || vb === 0xc3) { /* fixint, bool */ }
        else if (vb === 0xcc || vb === 0xd0) skip(1);
        else if (vb === 0xcd || vb === 0xd1) skip(2);
        else if (vb === 0xce || vb === 0xd2) skip(4);
        else if (vb === 0xcf || vb === 0xd3) skip(8);
        else assert.fail(`unexpected value type byte ${vb.toString(16)} under key ${keys.at(-1)?.key}`);
    }
    assert.equal(at, bytes.length, "no bytes after the map");
    return keys;
}

const CONTRACT_KEYS = new Set([
    "v", "id", "type", "user", "reply", "amount", "tool", "ref", "pack", "payment_ref", "plan", "period",
]);

// Invalid vectors that a JavaScript producer cannot even express: decoding
// them yields a valid-looking object. For each, a test below checks that
// encodeJob never produces such bytes.
const NOT_EXPRESSIBLE: Record<string, string> = {
    amount_float: "a float-valued integer: JS numbers that are integers encode as msgpack ints",
    duplicate_id: "a key twice: a JS object has each key once",
    duplicate_unknown_key: "a key twice: a JS object has each key once",
    non_str_key: "a non-str key: object keys encode as str",
    nested_40_deep: "unknown keys: encodeJob's callers send contract fields only",
};

describe("test vectors (schemas/vectors)", () => {
    const jobs = readTsv("jobs.tsv", ["name", "outcome", "hex", "meaning"]);
    const results = readTsv("results.tsv", ["name", "hex", "meaning"]);

    it("has job and result vectors with unique names", () => {
        assert.ok(jobs.filter((j) => j.outcome === "ok").length >= 10);
        assert.ok(results.length >= 5);
        const names = [...jobs, ...results].map((v) => v.name);
        assert.equal(new Set(names).size, names.length);
    });

    for (const v of jobs.filter((j) => j.outcome === "ok")) {
        it(`ok job ${v.name} decodes to its meaning, and passes validateJob`, () => {
            const decoded = decode(Buffer.from(v.hex ?? "", "hex"));
            assert.deepEqual(normalize(decoded), parseMeaning(v.meaning ?? ""));
            assert.equal(validateJob(decoded as Record<string, unknown>), null);
        });
    }

    for (const v of jobs.filter((j) => j.outcome !== "ok")) {
        it(`${v.outcome} job ${v.name} cannot come out of this producer`, () => {
            let decoded: unknown;
            try {
                decoded = decode(Buffer.from(v.hex ?? "", "hex"));
            } catch {
                return; // not even readable as one msgpack value
            }
            if (decoded === null || typeof decoded !== "object" || Array.isArray(decoded) ||
                decoded instanceof Uint8Array)
                return; // not a map
            const problem = validateJob(decoded as Record<string, unknown>);
            if (problem !== null) {
                assert.throws(() => encodeJob(decoded as Record<string, unknown>), CreditsValidationError);
                return;
            }
            assert.ok(v.name && v.name in NOT_EXPRESSIBLE,
                `validateJob accepts ${v.name}: add a rule, or explain it in NOT_EXPRESSIBLE`);
        });
    }

    it("encodeJob writes each key once, as str, only contract keys, integers as ints", () => {
        const samples: Record<string, unknown>[] = [
            { v: 1, id: "job-1", type: "consume", user: "u1", amount: 5, tool: "t", ref: "", reply: true },
            { v: 1, id: "job-1", type: "consume", user: "u1", amount: 1_000_000_000, tool: undefined },
            { v: 1, id: "evt_1", type: "purchase", user: "u1", pack: "starter", payment_ref: "cap_1" },
            { v: 1, id: "alloc:u1:2026-11", type: "allocate", user: "u1", plan: "pro", period: "2026-11" },
        ];
        for (const job of samples) {
            const bytes = encodeJob(job);
            const keys = topLevelKeys(bytes); // fails on a float, bin, array, map or nil value
            assert.ok(keys.every((k) => k.isStr), "every key is a str");
            const names = keys.map((k) => k.key);
            assert.equal(new Set(names).size, names.length, "no key twice");
            assert.ok(names.every((k) => CONTRACT_KEYS.has(k)), `only contract keys: ${names.join(",")}`);
            assert.deepEqual(names.sort(),
                Object.keys(job).filter((k) => job[k] !== undefined).sort(), "undefined fields left out");
        }
        assert.throws(() => encodeJob({ v: 1, id: "j", type: "consume", user: "u", amount: 5.5 }),
            CreditsValidationError);
        assert.throws(() => encodeJob({ v: 1, id: "j", type: "consume", user: "u", amount: 5, tool: null }),
            CreditsValidationError);
        assert.throws(() => encodeJob({ v: 1, id: "j", type: "consume", user: "u", amount: 5, tool: "\uD800" }),
            CreditsValidationError);
    });

    for (const v of results) {
        it(`result ${v.name} decodes to its meaning`, () => {
            const result = decodeResult(Buffer.from(v.hex ?? "", "hex"));
            assert.deepEqual(normalize(result), parseMeaning(v.meaning ?? ""));
        });
    }
});

// ---------------------------------------------------------------------------
// Against the worker
// ---------------------------------------------------------------------------

const workerEnv = process.env.CREDITS_REDIS_URL;

describe("against a running worker", { skip: workerEnv ? false : "CREDITS_REDIS_URL is not set" }, () => {
    const run = randomUUID().slice(0, 8);
    const user = `ts-${run}`;
    const prefix = process.env.CREDITS_PREFIX ?? "credits";
    const wait = { timeoutMs: 15000 }; // the first job may wait for the worker to connect
    let redis: Redis;
    let db: pg.Pool;
    let credits: CreditsClient;
    const consumeId = `run-${run}-1`;

    before(() => {
        redis = new Redis(workerEnv ?? "");
        db = new pg.Pool(pgConfig(process.env.CREDITS_DATABASE_URL));
        credits = new CreditsClient(redis, { prefix });
    });
    after(async () => {
        await credits?.close();
        redis?.disconnect();
        await db?.end();
    });

    const balanceOf = (r: CreditsResult) => r.balance && { ...r.balance };

    let purchased: CreditsResult;
    it("a purchase from a webhook is applied", async () => {
        const r = await credits.purchaseFromWebhook(
            { eventId: `evt-${run}`, captureId: `cap-${run}`, userId: user, packId: "starter" }, wait);
        purchased = r;
        assert.equal(r.status, "applied", JSON.stringify(r));
        assert.equal(r.id, `evt-${run}`);
        assert.equal(r.type, "purchase");
        assert.equal(r.user, user);
        assert.equal(r.granted, 500);
        assert.equal(r.charged, undefined);
        assert.equal(r.replayed, false);
        assert.deepEqual(balanceOf(r), { total: 500, pack: 500, monthly: 0 });
        const days90 = 90 * 86_400_000;
        assert.ok(r.expires_at !== undefined && Math.abs(r.expires_at - r.done_at - days90) <= 3_600_000,
            `expires_at ${r.expires_at} is 90 days after done_at ${r.done_at}`);
    });

    it("the same webhook event delivered again is a replay", async () => {
        const r = await credits.purchaseFromWebhook(
            { eventId: `evt-${run}`, captureId: `cap-${run}`, userId: user, packId: "starter" }, wait);
        assert.equal(r.status, "applied");
        assert.equal(r.replayed, true);
        assert.equal(r.done_at, purchased.done_at);
        assert.deepEqual(balanceOf(r), { total: 500, pack: 500, monthly: 0 });
    });

    it("another event for the same payment is rejected as duplicate_payment", async () => {
        const r = await credits.purchaseFromWebhook(
            { eventId: `evt-${run}-other`, captureId: `cap-${run}`, userId: user, packId: "starter" }, wait);
        assert.equal(r.status, "rejected");
        assert.equal(r.error, "duplicate_payment");
        assert.equal(typeof r.message, "string");
        assert.equal(r.granted, undefined);
    });

    it("an allocation grants the plan's monthly credits", async () => {
        const r = await credits.allocate({ user, plan: "pro", period: "2026-11" }, wait);
        assert.equal(r.status, "applied", JSON.stringify(r));
        assert.equal(r.id, `alloc:${user}:2026-11`);
        assert.equal(r.granted, 1000);
        assert.equal(r.forfeited, 0);
        assert.deepEqual(balanceOf(r), { total: 1500, pack: 500, monthly: 1000 });
    });

    let consumed: CreditsResult;
    it("a consume with an idempotency key is applied, pack credits first", async () => {
        const r = await credits.consume(
            { id: consumeId, user, amount: 40, tool: "upscale", ref: "video-42" }, wait);
        consumed = r;
        assert.equal(r.status, "applied", JSON.stringify(r));
        assert.equal(r.charged, 40);
        assert.equal(r.replayed, false);
        assert.deepEqual(balanceOf(r), { total: 1460, pack: 460, monthly: 1000 });
    });

    it("the same consume again is replayed and spends nothing", async () => {
        const r = await credits.consume(
            { id: consumeId, user, amount: 40, tool: "upscale", ref: "video-42" }, wait);
        assert.equal(r.status, "applied");
        assert.equal(r.replayed, true);
        assert.equal(r.charged, 40);
        assert.equal(r.done_at, consumed.done_at);
        assert.deepEqual(balanceOf(r), { total: 1460, pack: 460, monthly: 1000 });
        assert.deepEqual(await readBalance(db, user), { total: 1460, pack: 460, monthly: 1000 });
        const { rows } = await db.query(
            `SELECT count(*)::int AS n, sum(delta)::int AS delta, min(tool) AS tool, min(ref) AS ref
               FROM credits.entries WHERE job_id = $1 AND kind = 'consume'`, [consumeId]);
        assert.deepEqual(rows[0], { n: 1, delta: -40, tool: "upscale", ref: "video-42" });
    });

    it("a consume over the balance is rejected with the balance, nothing spent", async () => {
        const r = await credits.consume({ id: `run-${run}-2`, user, amount: 100_000, tool: "render" }, wait);
        assert.equal(r.status, "rejected");
        assert.equal(r.error, "insufficient_credits");
        assert.equal(r.charged, undefined);
        assert.equal(typeof r.message, "string");
        assert.deepEqual(balanceOf(r), { total: 1460, pack: 460, monthly: 1000 });
        assert.deepEqual(await readBalance(db, user), { total: 1460, pack: 460, monthly: 1000 });
    });

    it("getResult reads the stored result (the latest delivery)", async () => {
        const r = await credits.getResult(consumeId);
        assert.ok(r);
        assert.equal(r.status, "applied");
        assert.equal(r.charged, 40);
        assert.equal(r.replayed, true);
        assert.equal(await credits.getResult(`never-${run}`), null);
    });

    it("waitForResult falls back to the result key when there is no reply", async () => {
        const id = `run-${run}-noreply`;
        await credits.enqueue("consume", { v: 1, id, type: "consume", user, amount: 1 });
        let stored: CreditsResult | null = null;
        for (let i = 0; i < 150 && !stored; i++) {
            stored = await credits.getResult(id);
            if (!stored) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        assert.ok(stored, "the worker decided the job");
        assert.equal(await redis.exists(credits.key(`reply:${id}`)), 0, "no reply was asked for");
        const r = await credits.waitForResult(id, { timeoutMs: 200 });
        assert.equal(r.status, "applied");
        assert.equal(r.charged, 1);
    });

    it("waitForResult times out on a job nobody decided", async () => {
        await assert.rejects(credits.waitForResult(`never-${run}`, { timeoutMs: 100 }), CreditsTimeoutError);
    });

    it("an idempotency key reused for another request is reported, not mistaken for its result", async () => {
        await assert.rejects(
            credits.consume({ id: consumeId, user, amount: 41, tool: "upscale", ref: "video-42" }, { timeoutMs: 2000 }),
            CreditsIdConflictError);
        // The worker dead-lettered it as id_conflict, and spent nothing.
        const dead = await redis.xrevrangeBuffer(credits.key("dead"), "+", "-", "COUNT", 50);
        const conflicts = dead.filter(([, fields]) => {
            const f = new Map<string, Buffer>();
            for (let i = 0; i + 1 < fields.length; i += 2) f.set(String(fields[i]), fields[i + 1] as Buffer);
            const job = f.get("job");
            return String(f.get("reason")) === "id_conflict" && job !== undefined &&
                (decode(job) as Record<string, unknown>).amount === 41 &&
                (decode(job) as Record<string, unknown>).id === consumeId;
        });
        assert.equal(conflicts.length, 1, "one id_conflict dead letter for the reused key");
        assert.deepEqual(await readBalance(db, user), { total: 1459, pack: 459, monthly: 1000 });
    });

    it("invalid requests are refused before anything is sent", async () => {
        const before = await redis.xlen(credits.key("jobs:consume"));
        const bad = [
            () => credits.consume({ id: `run-${run}-bad`, user, amount: 0 }),
            () => credits.consume({ id: "has space", user, amount: 1 }),
            () => credits.consume({ id: `run-${run}-bad`, user, amount: 1, tool: "x".repeat(65) }),
            () => credits.consume({ id: `run-${run}-bad`, user: "", amount: 1 }),
            () => credits.allocate({ user, plan: "pro", period: "2026-13" }),
            () => credits.purchase({ id: `run-${run}-bad`, user, pack: "", paymentRef: "p" }),
        ];
        for (const call of bad) await assert.rejects(call(), CreditsValidationError);
        assert.equal(await redis.xlen(credits.key("jobs:consume")), before);
    });

    it("every ok job vector, re-encoded under fresh IDs, is accepted by the worker", async () => {
        const jobs = readTsv("jobs.tsv", ["name", "outcome", "hex", "meaning"]).filter((j) => j.outcome === "ok");
        const ids: string[] = [];
        for (const v of jobs) {
            const job = denormalize(parseMeaning(v.meaning ?? "")) as Record<string, unknown>;
            job.id = `vec-${run}-${v.name}`;
            job.user = `vec-${run}`;
            if (job.type === "purchase") job.payment_ref = `vec-${run}-${v.name}`;
            const type = job.type as "consume" | "purchase" | "allocate";
            await redis.xadd(credits.key(`jobs:${type}`), "*", "job", Buffer.from(encode(job)));
            ids.push(job.id as string);
        }
        const decided = new Map<string, CreditsResult>();
        for (let i = 0; i < 150 && decided.size < ids.length; i++) {
            for (const id of ids) {
                if (decided.has(id)) continue;
                const r = await credits.getResult(id);
                if (r) decided.set(id, r);
            }
            if (decided.size < ids.length) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        for (const id of ids) {
            const r = decided.get(id);
            assert.ok(r, `${id} was decided`);
            assert.ok(!["invalid_job", "unsupported_version", "wrong_stream", "id_conflict"].includes(r.error ?? ""),
                `${id}: ${r.error ?? ""} ${r.message ?? ""}`);
        }
    });
});
