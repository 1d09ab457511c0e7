// env.ts -- what the tests against a running worker share. They need
//   CREDITS_REDIS_URL     redis:// URL of the worker's Redis
//   CREDITS_DATABASE_URI  postgresql:// URI of its database
//   CREDITS_PREFIX        the worker's key prefix (default "credits")
// and a catalog with the plan "pro" (1000 a month, cap 2000) and the packs
// "starter" (500 credits, 90 days) and "soon" (100 credits, 3 days), as
// tests/integration/test_typescript.sh sets up, and a worker that
// implements revision 2 of the contract. Without CREDITS_REDIS_URL those
// tests are skipped (and the integration script fails on any skip).

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { AppliedResult, Balance, JobType, RejectedResult, ResultOf, StoredErrorOf } from "../src/index.js";

export const redisUrl = process.env.CREDITS_REDIS_URL ?? "";
export const databaseUri = process.env.CREDITS_DATABASE_URI ?? "";
export const prefix = process.env.CREDITS_PREFIX ?? "credits";

/** For describe(): skip the suite when no worker is configured. */
export const needsWorker = { skip: redisUrl && databaseUri ? false : "CREDITS_REDIS_URL and CREDITS_DATABASE_URI are not set" };

/** A balance map as results carry it: total is pack + monthly + grant; held apart. */
export function bal(pack: number, monthly: number, grant = 0, held = 0): Balance {
    return { total: pack + monthly + grant, pack, monthly, grant, held };
}

/** A short token that keeps one run's IDs apart from another's. */
export function runToken(): string {
    return randomUUID().slice(0, 8);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Redis CLIENT LIST as records, e.g. { id, name, cmd, ... }. */
export async function clientList(redis: Redis): Promise<Record<string, string>[]> {
    const text = String(await redis.call("CLIENT", "LIST"));
    return text.trim().split("\n").filter(Boolean).map((line) =>
        Object.fromEntries(line.split(" ").map((kv) => {
            const at = kv.indexOf("=");
            return [kv.slice(0, at), kv.slice(at + 1)];
        })));
}

/** Waits until `poll` returns a value other than null/undefined, or fails after `ms`. */
export async function eventually<T>(what: string, poll: () => Promise<T | null | undefined>, ms = 15000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
        const value = await poll();
        if (value !== null && value !== undefined) return value;
        if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
        await sleep(50);
    }
}

/** The result, checked to be applied (the assertion message shows it otherwise). */
export function applied<T extends JobType>(r: ResultOf<T>): AppliedResult<T> {
    assert.equal(r.status, "applied", JSON.stringify(r));
    return r as AppliedResult<T>;
}

/**
 * The result, checked to be rejected with `error`: one of the stored codes
 * of its type, which the compiler checks (a code the type cannot get does
 * not compile).
 */
export function rejected<T extends JobType, E extends StoredErrorOf[T]>(r: ResultOf<T>, error: E, what?: string):
    Extract<RejectedResult<T>, { error: E }> {
    const why = `${what ? `${what}: ` : ""}${JSON.stringify(r)}`;
    assert.equal(r.status, "rejected", why);
    assert.equal((r as RejectedResult<T>).error, error, why);
    assert.match((r as RejectedResult<T>).message, /\S/, "a rejection has a message for people");
    return r as Extract<RejectedResult<T>, { error: E }>;
}
