// revision2.ts -- whether the running worker knows revision 2's job types.
// It asks the worker itself: a grant to a user of its own. A worker that
// predates revision 2 refuses it as invalid_job, "field 'type' must be one
// of ...": only then are the revision-2 tests skipped, so they start to run
// by themselves once the worker supports the new types. Any other answer
// (or no answer) lets them run, and fail if the worker is wrong.

import { Redis } from "ioredis";
import { CreditsClient, CreditsJobRefusedError } from "../src/index.js";
import { prefix, redisUrl, runToken } from "./env.js";

export const UNKNOWN_TYPE = /field 'type' must be one of/;

async function probe(): Promise<string | false> {
    if (!redisUrl) return "CREDITS_REDIS_URL is not set";
    const conn = new Redis(redisUrl);
    const credits = new CreditsClient({ redis: conn, prefix, timeoutMs: 15000 });
    try {
        await credits.grant({ key: `probe-${runToken()}`, user: `probe-${runToken()}`, amount: 1, reason: "revision 2 probe" });
        return false;
    } catch (e) {
        if (e instanceof CreditsJobRefusedError && e.error === "invalid_job" && UNKNOWN_TYPE.test(e.workerMessage))
            return `pending on worker support: the worker does not know revision 2's job types yet (${e.workerMessage})`;
        return false;
    } finally {
        await credits.close();
        conn.disconnect();
    }
}

/** false when the revision-2 tests must run; otherwise why they are skipped. */
export const revision2Pending: string | false = await probe();
