// ledger.ts -- what the scratch app's Drizzle and Prisma checks share:
// creditsctl's JSON for a user (the reference), and the shapes to compare
// each ORM's rows with it. CREDITSCTL names the creditsctl binary.

import { execFileSync } from "node:child_process";

export interface Balance {
    total: number; pack: number; monthly: number; grant: number; held: number;
    nextExpiryAt: Date | null; nextExpiryCredits: number | null;
}
export interface Line {
    createdAt: Date; type: string; delta: number; jobId: string; tool: string | null; ref: string | null;
    packId: string | null; planId: string | null; period: string | null;
}

const second = (t: Date) => `${t.toISOString().slice(0, 19)}Z`;

export function creditsctl(...args: string[]): Record<string, unknown> {
    const bin = process.env.CREDITSCTL;
    if (!bin) throw new Error("set CREDITSCTL to the creditsctl binary");
    return JSON.parse(execFileSync(bin, args, { encoding: "utf8" })) as Record<string, unknown>;
}

export const balanceShape = (b: Balance) => ({
    total: b.total, pack: b.pack, monthly: b.monthly, grant: b.grant, held: b.held,
    next_expiry: b.nextExpiryAt && second(b.nextExpiryAt), next_expiry_credits: b.nextExpiryCredits,
});

export const lineShape = (l: Line) => ({
    time: second(l.createdAt), type: l.type, delta: l.delta, job: l.jobId, tool: l.tool, ref: l.ref,
    pack: l.packId, plan: l.planId, period: l.period,
});

/** Throws unless the ORM's balance, newest history lines and next expiry are creditsctl's; returns a summary line. */
export function compare(orm: string, user: string, balance: Balance, lines: Line[],
    soon: { expiresAt: Date; credits: number } | null, days: number): string {
    const ctl = creditsctl("balance", user, "--json");
    const expected = {
        total: ctl.total, pack: ctl.pack, monthly: ctl.monthly, grant: ctl.grant, held: ctl.held,
        next_expiry: ctl.next_expiry, next_expiry_credits: ctl.next_expiry_credits,
    };
    const got = balanceShape(balance);
    if (JSON.stringify(got) !== JSON.stringify(expected))
        throw new Error(`${orm} balance ${JSON.stringify(got)} is not creditsctl's ${JSON.stringify(expected)}`);
    const history = creditsctl("history", user, "--limit", String(lines.length), "--json").jobs as unknown[];
    const shown = lines.map(lineShape);
    const differs = shown.findIndex((l, i) => JSON.stringify(l) !== JSON.stringify(history[i]));
    if (differs >= 0 || shown.length !== history.length)
        throw new Error(`${orm} history line ${differs} ${JSON.stringify(shown[differs])} is not creditsctl's ${JSON.stringify(history[differs])} (${shown.length} lines, creditsctl ${history.length})`);
    const within = ctl.next_expiry !== null && Date.parse(String(ctl.next_expiry)) <= Date.now() + days * 86_400_000;
    const expectedSoon = within ? { expires: ctl.next_expiry, credits: ctl.next_expiry_credits } : null;
    const gotSoon = soon && { expires: second(soon.expiresAt), credits: soon.credits };
    if (JSON.stringify(gotSoon) !== JSON.stringify(expectedSoon))
        throw new Error(`${orm} expiring soon ${JSON.stringify(gotSoon)} is not creditsctl's ${JSON.stringify(expectedSoon)}`);
    return `install-check: ${orm} agrees with creditsctl: balance ${JSON.stringify(got)}, ${shown.length} history lines, expiring soon ${JSON.stringify(gotSoon)}`;
}
