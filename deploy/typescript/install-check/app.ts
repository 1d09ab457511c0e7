// app.ts -- what an app does with @credits-worker/client, compiled under
// --strict against the installed package and run against a worker:
//   CREDITS_REDIS_URL=... CREDITS_PREFIX=... node dist/app.js
// It sends every job type and prints the decisions, and waits for 1,000
// calls at once and prints how many Redis connections the client held.
// The lines marked for the compiler to refuse are checks: the build fails
// if the compiler stops refusing them.

import { Redis } from "ioredis";
import {
    CreditsClient,
    CreditsTimeoutError,
    type ErrorCode,
    type ResultOf,
} from "@credits-worker/client";

const known: ErrorCode = "insufficient_credits";
// @ts-expect-error -- not an error code of the contract
const unknown: ErrorCode = "insufficient_funds";

/** Exhaustive over consume's codes: a new code would break this build. */
function describe(r: ResultOf<"consume">): string {
    if (r.status === "applied") return `applied charged=${r.charged} balance=${r.balance.total}`;
    switch (r.error) {
    case "insufficient_credits":
        return `rejected ${r.error} balance=${r.balance.total}`;
    }
}

/** The README's example for capture: exhaustive over its four codes. */
export function explain(r: ResultOf<"capture">): string {
    if (r.status === "applied") return `charged ${r.charged}, ${r.released} back`;
    switch (r.error) {
    case "unknown_hold": case "hold_closed": return "this run is already settled";
    case "hold_expired": return "the run took too long; its credits went back";
    case "capture_exceeds_hold": return "the cost is above what was reserved";
    }
}

/** A decision in one word: applied, or the rejection's code. */
const outcome = (r: { status: "applied" } | { status: "rejected"; error: string }) => (r.status === "applied" ? "applied" : r.error);

const url = process.env.CREDITS_REDIS_URL ?? "";
const name = `install-check-${process.pid}`;
const redis = new Redis(url, { connectionName: name });
const admin = new Redis(url);
const credits = new CreditsClient({ redis, prefix: process.env.CREDITS_PREFIX ?? "credits", readerConnectionName: `${name}-results` });
const user = `install-check-${process.pid}-${Date.now()}`;
const k = (s: string) => `${user}-${s}`;
try {
    // @ts-expect-error -- a consume needs an amount
    await credits.consume({ key: "k", user }).catch(() => undefined);
    const bought = await credits.purchase({ key: k("buy"), user, pack: "starter", paymentRef: k("pay") });
    if (bought.status !== "applied") throw new Error(`purchase: ${bought.error}`);
    console.log(`install-check: user ${user}`);
    console.log(`install-check: consume ${describe(await credits.consume({ key: k("run"), user, amount: 40, tool: "upscale" }))}`);
    console.log(`install-check: consume ${describe(await credits.consume({ key: k("big"), user, amount: 100_000 }))}`);
    console.log(`install-check: codes ${[known, unknown].join(",")}`);

    // Every job type, as the README's flows use them.
    const seen: string[] = [`purchase=${outcome(bought)}`, "consume=applied"];
    const allocated = await credits.allocate({ user, plan: "pro", period: "2026-11" });
    seen.push(`allocate=${outcome(allocated)}`);
    const hold = await credits.hold({ key: k("render"), user, amount: 300, ttlSeconds: 900, tool: "render" });
    seen.push(`hold=${outcome(hold)}`);
    const captured = await credits.capture({ key: k("render:capture"), user, hold: hold.id, amount: 120 });
    seen.push(`capture=${outcome(captured)}`);
    const failed = await credits.hold({ key: k("render-2"), user, amount: 50, tool: "render" });
    const released = await credits.release({ key: k("render-2:release"), user, hold: failed.id });
    seen.push(`release=${outcome(released)}`);
    const refunded = await credits.refund({ key: k("support-1"), user, charge: captured.id, amount: 20 });
    seen.push(`refund=${outcome(refunded)}`);
    const revoked = await credits.revoke({ key: k("chargeback"), user, paymentRef: k("pay") });
    seen.push(`revoke=${outcome(revoked)}`);
    const cancelled = await credits.cancel({ key: k("cancel"), user });
    seen.push(`cancel=${outcome(cancelled)}`);
    const again = await credits.cancel({ key: k("cancel-2"), user });
    console.log(`install-check: second cancel ${outcome(again)}; capture ${explain(captured)}; ` +
        `revoked ${revoked.status === "applied" ? revoked.revoked : 0}; balance ${JSON.stringify(cancelled.balance)}`);

    // 1,000 calls waiting at once: the client's connections stay two.
    let sampling = true;
    let most = 0;
    const sampler = (async () => {
        while (sampling) {
            const list = String(await admin.call("CLIENT", "LIST"));
            most = Math.max(most, list.split("\n").filter((l) => l.includes(` name=${name}`)).length);
            await new Promise((resolve) => setTimeout(resolve, 5));
        }
    })();
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) =>
        credits.consume({ key: k(`wave-${i}`), user, amount: 1 }, { timeoutMs: 60_000 })));
    sampling = false;
    await sampler;
    const decided = results.filter((r) => r.status === "applied").length;
    console.log(`install-check: waits 1000 applied ${decided} connections ${most}`);

    // Support's goodwill credits, expiring in 30 days.
    const granted = await credits.grant({ key: k("support-2"), user, amount: 25, validDays: 30, reason: "goodwill" });
    seen.push(`grant=${outcome(granted)}`);
    console.log(`install-check: types ${seen.join(" ")}`);
    console.log(`install-check: balance ${JSON.stringify(granted.balance)}`);
} catch (e) {
    if (e instanceof CreditsTimeoutError) console.log(`install-check: still queued, ${e.message}`);
    throw e;
} finally {
    await credits.close();
    redis.disconnect();
    admin.disconnect();
}
