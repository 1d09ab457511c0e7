// vectors.test.ts -- the contract's test vectors (schemas/vectors/), read
// with @msgpack/msgpack: every ok job vector passes the client's rules,
// every invalid one is unreadable, refused by them, or impossible for a
// JavaScript producer to write; every result vector decodes to its meaning.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decode } from "@msgpack/msgpack";
import {
    CreditsValidationError, JOB_TYPES, STORED_ERROR_CODES, decodeResult, encodeJob, validateJob, type Balance,
} from "../src/index.js";
import { normalize, parseMeaning, readTsv } from "./vectors.js";

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

// Stored codes the vectors of schemas/vectors/ do not show (v1 left them
// out); the worker tests decide each of them for real.
const NO_VECTOR = new Set(["unknown_plan", "duplicate_payment", "already_allocated", "stale_period"]);

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
            assert.doesNotThrow(() => validateJob(decoded as Record<string, unknown>));
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
            try {
                validateJob(decoded as Record<string, unknown>);
            } catch (e) {
                assert.ok(e instanceof CreditsValidationError, String(e));
                assert.throws(() => encodeJob(decoded as Record<string, unknown>), CreditsValidationError);
                return;
            }
            assert.ok(v.name && v.name in NOT_EXPRESSIBLE,
                `validateJob accepts ${v.name}: add a rule, or explain it in NOT_EXPRESSIBLE`);
        });
    }

    for (const v of results) {
        it(`result ${v.name} decodes to its meaning`, () => {
            const result = decodeResult(Buffer.from(v.hex ?? "", "hex"));
            assert.deepEqual(normalize(result), parseMeaning(v.meaning ?? ""));
            // Every balance map has the five keys of revision 2 (9.5), in the contract's order.
            const balance = (result as { balance?: Balance }).balance;
            if (balance) {
                assert.deepEqual(Object.keys(balance), ["total", "pack", "monthly", "grant", "held"]);
                assert.equal(balance.total, balance.pack + balance.monthly + balance.grant, "total = pack + monthly + grant");
            }
        });
    }

    it("has a result vector for every job type and every stored error code", () => {
        const decoded = results.map((v) => decodeResult(Buffer.from(v.hex ?? "", "hex")));
        const types = new Set(decoded.filter((r) => r.status === "applied").map((r) => r.type));
        assert.deepEqual([...JOB_TYPES].filter((t) => !types.has(t)), [], "applied types without a vector");
        const codes = new Set(decoded.map((r) => (r as { error?: string }).error).filter(Boolean));
        assert.deepEqual([...STORED_ERROR_CODES].filter((c) => !codes.has(c) && !NO_VECTOR.has(c)), [],
            "stored codes without a vector");
    });
});

