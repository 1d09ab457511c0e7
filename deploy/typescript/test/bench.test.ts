// bench.test.ts -- 1, 100 and 1,000 calls waiting at once against the real
// worker, through one client. Prints, for each wave, the Redis clients
// (CLIENT LIST: all, and this client's) at their highest during the wave,
// and the latency of the calls (from the call to its decision). Asserts
// that every call got its decision and that this client never held more
// than its two connections; the timings are printed, never asserted.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { CreditsClient } from "../src/index.js";
import { applied, clientList, needsWorker, prefix, redisUrl, runToken } from "./env.js";

function percentile(sorted: number[], p: number): number {
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

describe("benchmark: concurrent waits through one client", needsWorker, () => {
    const run = runToken();
    const user = `bench-${run}`;
    const name = `bench-${run}`;
    let admin: Redis;
    let conn: Redis;
    let credits: CreditsClient;

    before(async () => {
        admin = new Redis(redisUrl);
        conn = new Redis(redisUrl, { connectionName: name });
        credits = new CreditsClient({ redis: conn, prefix, readerConnectionName: `${name}-results`, timeoutMs: 60000 });
        // 1,500 credits for the 1,101 consumes of one credit below.
        applied(await credits.allocate({ user, plan: "pro", period: "2026-11" }));
        applied(await credits.purchase({ key: `bench-${run}-pay`, user, pack: "starter", paymentRef: `bench-${run}` }));
    });
    after(async () => {
        await credits.close();
        conn.disconnect();
        admin.disconnect();
    });

    for (const waits of [1, 100, 1000]) {
        it(`${waits} concurrent waits`, async () => {
            let sampling = true;
            let maxAll = 0;
            let maxMine = 0;
            const sampler = (async () => {
                while (sampling) {
                    const clients = await clientList(admin);
                    maxAll = Math.max(maxAll, clients.length);
                    maxMine = Math.max(maxMine, clients.filter((c) => c.name?.startsWith(name)).length);
                    await new Promise((resolve) => setTimeout(resolve, 5));
                }
            })();
            const started = performance.now();
            const latencies = await Promise.all(Array.from({ length: waits }, async (_, i) => {
                const t0 = performance.now();
                const r = applied(await credits.consume({ key: `bench-${run}-${waits}-${i}`, user, amount: 1 }));
                assert.equal(r.charged, 1);
                return performance.now() - t0;
            }));
            const wallMs = performance.now() - started;
            sampling = false;
            await sampler;
            latencies.sort((a, b) => a - b);
            const ms = (x: number) => x.toFixed(1);
            console.log(`bench: waits=${waits} redis_clients_max=${maxAll} this_client_max=${maxMine} ` +
                `p50_ms=${ms(percentile(latencies, 50))} p99_ms=${ms(percentile(latencies, 99))} ` +
                `max_ms=${ms(latencies.at(-1) ?? NaN)} wall_ms=${ms(wallMs)}`);
            assert.equal(latencies.length, waits, "every call got its decision");
            assert.ok(maxMine >= 1, "the sampler saw this client's connections");
            assert.ok(maxMine <= 2, `this client held ${maxMine} Redis connections, more than its two`);
        });
    }

    it("spent exactly one credit per call", async () => {
        const r = applied(await credits.consume({ key: `bench-${run}-last`, user, amount: 1 }));
        assert.equal(r.balance.total, 1500 - 1 - 100 - 1000 - 1);
    });
});
