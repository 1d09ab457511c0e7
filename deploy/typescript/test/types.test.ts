// types.test.ts -- what the compiler checks: each job function's request,
// result and error codes, and the events' union. The checks are in the types; the build (tsc -p
// tsconfig.test.json) fails when one stops holding, e.g. when a line the
// compiler is expected to refuse starts to compile. At run time this file
// only checks that the lists of codes and types match their unions.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
    ERROR_CODES,
    EVENT_TYPES,
    JOB_TYPES,
    STORED_ERROR_CODES,
    type AppliedResult,
    type Balance,
    type CreditsClient,
    type CreditsEvent,
    type ErrorCode,
    type EventOf,
    type EventType,
    type JobType,
    type MessageErrorCode,
    type RejectedResult,
    type ResultOf,
    type StoredErrorCode,
    type StoredErrorOf,
} from "../src/index.js";
import { rejected } from "./env.js";

/** true when A and B are the same type (not merely assignable one way). */
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends (<X>() => X extends B ? 1 : 2) ? true : false;
function expectType<T extends true>(_: T): void { /* compile time only */ }

// Each type's stored codes, exactly the contract's (v1 table, and 9.4).
expectType<Equal<StoredErrorOf["consume"], "insufficient_credits">>(true);
expectType<Equal<StoredErrorOf["purchase"], "unknown_pack" | "duplicate_payment">>(true);
expectType<Equal<StoredErrorOf["allocate"], "unknown_plan" | "already_allocated" | "stale_period">>(true);
expectType<Equal<StoredErrorOf["hold"], "insufficient_credits">>(true);
expectType<Equal<StoredErrorOf["capture"], "unknown_hold" | "hold_closed" | "hold_expired" | "capture_exceeds_hold">>(true);
expectType<Equal<StoredErrorOf["release"], "unknown_hold" | "hold_closed" | "hold_expired">>(true);
expectType<Equal<StoredErrorOf["refund"], "unknown_charge" | "refund_exceeds_charge">>(true);
expectType<Equal<StoredErrorOf["revoke"], "unknown_payment" | "already_revoked">>(true);
expectType<Equal<StoredErrorOf["grant"], never>>(true);
expectType<Equal<StoredErrorOf["cancel"], "no_plan">>(true);
expectType<Equal<MessageErrorCode, "invalid_job" | "unsupported_version" | "wrong_stream">>(true);
expectType<Equal<ErrorCode, MessageErrorCode | "id_conflict" | StoredErrorCode>>(true);

// The five keys of every balance map (9.5), all numbers, none optional.
expectType<Equal<Balance, { total: number; pack: number; monthly: number; grant: number; held: number }>>(true);

// Each function resolves with its own type's result.
type Fn<T extends JobType> = Awaited<ReturnType<CreditsClient[T]>>;
expectType<Equal<Fn<"consume">, ResultOf<"consume">>>(true);
expectType<Equal<Fn<"purchase">, ResultOf<"purchase">>>(true);
expectType<Equal<Fn<"allocate">, ResultOf<"allocate">>>(true);
expectType<Equal<Fn<"hold">, ResultOf<"hold">>>(true);
expectType<Equal<Fn<"capture">, ResultOf<"capture">>>(true);
expectType<Equal<Fn<"release">, ResultOf<"release">>>(true);
expectType<Equal<Fn<"refund">, ResultOf<"refund">>>(true);
expectType<Equal<Fn<"revoke">, ResultOf<"revoke">>>(true);
expectType<Equal<Fn<"grant">, ResultOf<"grant">>>(true);
expectType<Equal<Fn<"cancel">, ResultOf<"cancel">>>(true);

// A rejection carries the codes of its type, and only insufficient_credits a balance.
expectType<Equal<RejectedResult<"capture">["error"], StoredErrorOf["capture"]>>(true);
expectType<Equal<Extract<RejectedResult<"hold">, { error: "insufficient_credits" }>["balance"], Balance>>(true);
expectType<Equal<RejectedResult<"capture">["balance"], undefined>>(true);
// A grant is never rejected by the ledger.
expectType<Equal<RejectedResult<"grant">, never>>(true);

/** Exhaustive switches: a code added to a type's union breaks these. */
export function explainCapture(r: ResultOf<"capture">): string {
    if (r.status === "applied") return `charged ${r.charged}, released ${r.released}`;
    switch (r.error) {
    case "unknown_hold": return "no such hold";
    case "hold_closed": return "settled already";
    case "hold_expired": return "expired, credits back";
    case "capture_exceeds_hold": return "above the hold";
    }
}

export function explainRefund(r: ResultOf<"refund">): string {
    if (r.status === "applied") return `refunded ${r.refunded}`;
    switch (r.error) {
    case "unknown_charge": return "no such charge";
    case "refund_exceeds_charge": return "nothing left to refund";
    }
}

/** What each applied result carries, read without a cast. */
export function appliedFields(
    hold: AppliedResult<"hold">, release: AppliedResult<"release">, revoke: AppliedResult<"revoke">,
    grant: AppliedResult<"grant">, cancel: AppliedResult<"cancel">, purchase: AppliedResult<"purchase">,
    allocate: AppliedResult<"allocate">,
): number[] {
    const expires: number | undefined = grant.expires_at; // only with valid_days
    return [hold.held, hold.hold_expires_at, release.released, revoke.revoked, grant.granted, expires ?? 0,
        cancel.forfeited, purchase.granted, purchase.expires_at, allocate.granted, allocate.forfeited,
        hold.balance.held, cancel.balance.grant];
}

export function refusedAtCompileTime(credits: CreditsClient, consumed: ResultOf<"consume">, captured: ResultOf<"capture">): void {
    // @ts-expect-error -- not an error code of the contract
    const unknown: ErrorCode = "insufficient_funds";
    // @ts-expect-error -- a consume cannot be rejected as unknown_pack
    rejected(consumed, "unknown_pack");
    // @ts-expect-error -- a capture's rejections carry no balance
    if (captured.status === "rejected") void captured.balance.total;
    // @ts-expect-error -- a capture needs the hold it captures
    void credits.capture({ key: "k", user: "u", amount: 1 });
    // @ts-expect-error -- ttlSeconds is a number of seconds
    void credits.hold({ key: "k", user: "u", amount: 1, ttlSeconds: "1h" });
    // @ts-expect-error -- revoke takes the payment's reference, not the purchase's key
    void credits.revoke({ key: "k", user: "u", purchase: "evt_1" });
    void unknown;
}

// The events of 9.8: the common keys, then each type's own, exactly.
type Common<T extends EventType> = { v: 1; event_id: number; type: T; user: string; at: number; balance: Balance; job: string };
type Flat<T> = { [K in keyof T]: T[K] };
type IsEvent<T extends EventType, Own> = Equal<Flat<EventOf<T>>, Flat<Common<T> & Own>>;
expectType<Equal<EventType, "balance_low" | "balance_depleted" | "balance_recovered" | "credits_expiring" | "credits_expired" | "hold_expired">>(true);
expectType<IsEvent<"balance_low", { threshold: number }>>(true);
expectType<IsEvent<"balance_depleted", unknown>>(true);
expectType<IsEvent<"balance_recovered", { threshold: number }>>(true);
expectType<IsEvent<"credits_expiring", { lot: number; credits: number; expires_at: number }>>(true);
expectType<IsEvent<"credits_expired", { lot: number; credits: number }>>(true);
expectType<IsEvent<"hold_expired", { hold: string; released: number }>>(true);
expectType<Equal<IsEvent<"hold_expired", { hold: number; released: number }>, false>>(true); // the check can fail
expectType<Equal<Extract<CreditsEvent, { type: "balance_recovered" }>, EventOf<"balance_recovered">>>(true);

/** An exhaustive switch over the events: a type added to the union breaks it. */
export function describeEvent(e: CreditsEvent): string {
    switch (e.type) {
    case "balance_low": return `below ${e.threshold}: ${e.balance.total}`;
    case "balance_depleted": return "no credits left";
    case "balance_recovered": return `back at ${e.threshold}`;
    case "credits_expiring": return `${e.credits} of lot ${e.lot} expire at ${e.expires_at}`;
    case "credits_expired": return `${e.credits} of lot ${e.lot} expired`;
    case "hold_expired": return `hold ${e.hold} gave back ${e.released}`;
    }
}

export function eventsRefusedAtCompileTime(e: CreditsEvent): void {
    // @ts-expect-error -- only balance_low and balance_recovered have a threshold
    void e.threshold;
    // @ts-expect-error -- balance_depleted has no lot
    if (e.type === "balance_depleted") void e.lot;
    // @ts-expect-error -- not an event type of the contract
    const unknown: EventType = "balance_overdrawn";
    void unknown;
}

describe("types: the unions and their run-time lists", () => {
    it("ERROR_CODES is ErrorCode, each once; STORED_ERROR_CODES the stored ones", () => {
        assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length);
        assert.equal(ERROR_CODES.length, 19);
        const stored: StoredErrorCode[] = ["insufficient_credits", "unknown_pack", "unknown_plan", "duplicate_payment",
            "already_allocated", "stale_period", "unknown_hold", "hold_closed", "hold_expired", "capture_exceeds_hold",
            "unknown_charge", "refund_exceeds_charge", "unknown_payment", "already_revoked", "no_plan"];
        assert.deepEqual([...STORED_ERROR_CODES].sort(), [...stored].sort());
        assert.deepEqual([...JOB_TYPES].sort(),
            ["allocate", "cancel", "capture", "consume", "grant", "hold", "purchase", "refund", "release", "revoke"]);
        const events: EventType[] = ["balance_low", "balance_depleted", "balance_recovered", "credits_expiring", "credits_expired", "hold_expired"];
        assert.deepEqual(EVENT_TYPES, events, "EVENT_TYPES is EventType, each once, in the contract's order");
    });
});
