// app.ts -- what an app does with @credits-worker/client, compiled under
// --strict against the installed package and run against a worker:
//   CREDITS_REDIS_URL=... CREDITS_PREFIX=... node dist/app.js
// The @ts-expect-error lines are checks: the build fails if the compiler
// stops refusing them.

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

/** The README's example for revision 2's capture: exhaustive over its four codes. */
export function explain(r: ResultOf<"capture">): string {
    if (r.status === "applied") return `charged ${r.charged}, ${r.released} back`;
    switch (r.error) {
    case "unknown_hold": case "hold_closed": return "this run is already settled";
    case "hold_expired": return "the run took too long; its credits went back";
    case "capture_exceeds_hold": return "the cost is above what was reserved";
    }
}

const credits = new CreditsClient({ redis: process.env.CREDITS_REDIS_URL ?? "", prefix: process.env.CREDITS_PREFIX ?? "credits" });
const user = `install-check-${process.pid}-${Date.now()}`;
try {
    // @ts-expect-error -- a consume needs an amount
    await credits.consume({ key: "k", user }).catch(() => undefined);
    const bought = await credits.purchase({ key: `${user}-buy`, user, pack: "starter", paymentRef: `${user}-pay` });
    if (bought.status !== "applied") throw new Error(`purchase: ${bought.error}`);
    console.log(`install-check: user ${user}`);
    console.log(`install-check: consume ${describe(await credits.consume({ key: `${user}-run`, user, amount: 40, tool: "upscale" }))}`);
    console.log(`install-check: consume ${describe(await credits.consume({ key: `${user}-big`, user, amount: 100_000 }))}`);
    console.log(`install-check: codes ${[known, unknown].join(",")}`);
} catch (e) {
    if (e instanceof CreditsTimeoutError) console.log(`install-check: still queued, ${e.message}`);
    throw e;
} finally {
    await credits.close();
}
