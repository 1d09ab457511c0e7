// prisma-queries.ts -- the balance, usable lots, open holds, history page,
// entries page and "expiring soon" reads written with Prisma Client over
// prisma/schema.prisma. The package README shows these functions as they
// are here (orm.test.ts checks that it does, word for word); only the
// import of the generated client differs from an app's.

import { toSafeNumber } from "../src/index.js";
import type { PrismaClient } from "../generated/prisma/client.js";

// --- README: prisma reads ---
const n = (v: bigint) => toSafeNumber(v);

/** The balance now (credits.balances); zeros for a user the worker never saw. */
export async function readBalance(prisma: PrismaClient, user: string) {
    const b = await prisma.creditsBalance.findUnique({ where: { userId: user } });
    return {
        total: n(b?.total ?? 0n), pack: n(b?.pack ?? 0n), monthly: n(b?.monthly ?? 0n),
        grant: n(b?.grant ?? 0n), held: n(b?.held ?? 0n),
        nextExpiryAt: b?.nextExpiryAt ?? null,
        nextExpiryCredits: b?.nextExpiryCredits == null ? null : n(b.nextExpiryCredits),
    };
}

/** The usable lots in the order the worker spends them: expiring ones by expiry, then by grant time. */
export async function readUsableLots(prisma: PrismaClient, user: string) {
    const lots = await prisma.creditsUsableLot.findMany({
        where: { userId: user },
        orderBy: [{ expiresAt: { sort: "asc", nulls: "last" } }, { grantedAt: "asc" }, { lotId: "asc" }],
    });
    return lots.map((l) => ({ ...l, lotId: n(l.lotId), credits: n(l.credits), granted: n(l.granted) }));
}

/** The holds that reserve credits now: open and not yet due. */
export async function readOpenHolds(prisma: PrismaClient, user: string) {
    const holds = await prisma.creditsHold.findMany({
        where: { userId: user, status: "open", expiresAt: { gt: new Date() } },
        orderBy: [{ expiresAt: "asc" }, { holdId: "asc" }],
    });
    return holds.map((h) => ({ ...h, amount: n(h.amount), captured: h.captured === null ? null : n(h.captured) }));
}

/** One page of history, one line per job, newest first; `before` is the previous page's `next`. */
export async function readHistoryPage(prisma: PrismaClient, user: string, before: number | null, limit = 20) {
    const rows = await prisma.creditsHistory.findMany({
        where: before === null ? { userId: user } : { userId: user, cursor: { lt: BigInt(before) } },
        orderBy: { cursor: "desc" },
        take: limit + 1, // one more, to know whether an older page exists
    });
    const jobs = rows.slice(0, limit).map((r) => ({ ...r, cursor: n(r.cursor), delta: n(r.delta) }));
    return { jobs, next: rows.length > limit ? (jobs.at(-1)?.cursor ?? null) : null };
}

/** One page of ledger entries (what each lot gained or lost), newest first. */
export async function readEntriesPage(prisma: PrismaClient, user: string, before: number | null, limit = 20) {
    const rows = await prisma.creditsEntry.findMany({
        where: before === null ? { userId: user } : { userId: user, entryId: { lt: BigInt(before) } },
        orderBy: { entryId: "desc" },
        take: limit + 1,
    });
    const entries = rows.slice(0, limit).map((e) => ({ ...e, entryId: n(e.entryId), lotId: n(e.lotId), delta: n(e.delta) }));
    return { entries, next: rows.length > limit ? (entries.at(-1)?.entryId ?? null) : null };
}

/** The next expiry if it is within `days`: { expiresAt, credits }, else null. */
export async function readExpiringSoon(prisma: PrismaClient, user: string, days = 7) {
    const b = await prisma.creditsBalance.findFirst({
        where: { userId: user, nextExpiryAt: { lte: new Date(Date.now() + days * 86_400_000) } },
        select: { nextExpiryAt: true, nextExpiryCredits: true },
    });
    return b?.nextExpiryAt && b.nextExpiryCredits !== null
        ? { expiresAt: b.nextExpiryAt, credits: n(b.nextExpiryCredits) } : null;
}
// --- end ---
