// prisma-queries.ts -- the balance, history page and "expiring soon" reads
// written with Prisma Client over prisma/schema.prisma, as the package
// README shows them. Prisma's where clauses compare with the app's clock
// (new Date()); the worker counts by the database's. On one host, or with
// clocks kept in sync, the two agree but for the instant a lot expires.

import { toSafeNumber } from "../src/index.js";
import type { PrismaClient } from "../generated/prisma/client.js";

export async function prismaBalance(prisma: PrismaClient, user: string) {
    const now = new Date();
    const byKind = await prisma.creditsLot.groupBy({
        by: ["kind"],
        where: { userId: user, spent: false, OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] },
        _sum: { remaining: true },
    });
    const of = (kind: string) => toSafeNumber(byKind.find((g) => g.kind === kind)?._sum.remaining ?? 0n);
    const pack = of("pack");
    const monthly = of("monthly");
    const grant = of("grant");
    return { total: pack + monthly + grant, pack, monthly, grant };
}

export async function prismaHistoryPage(prisma: PrismaClient, user: string, before: number | null, limit: number) {
    const rows = await prisma.creditsEntry.findMany({
        where: before === null ? { userId: user } : { userId: user, entryId: { lt: BigInt(before) } },
        orderBy: { entryId: "desc" },
        take: limit + 1,
        include: { lot: { select: { packId: true, planId: true } } },
    });
    const page = rows.slice(0, limit).map((e) => ({
        entryId: toSafeNumber(e.entryId), createdAt: e.createdAt, kind: e.kind, delta: toSafeNumber(e.delta),
        lotId: toSafeNumber(e.lotId), jobId: e.jobId, tool: e.tool, ref: e.ref,
        packId: e.lot.packId, planId: e.lot.planId,
    }));
    return { entries: page, next: rows.length > limit ? (page.at(-1)?.entryId ?? null) : null };
}

export async function prismaExpiringSoon(prisma: PrismaClient, user: string, days = 7) {
    const now = new Date();
    const lots = await prisma.creditsLot.findMany({
        where: { userId: user, spent: false, expiresAt: { gt: now, lte: new Date(now.getTime() + days * 86_400_000) } },
        orderBy: [{ expiresAt: "asc" }, { lotId: "asc" }],
        select: { lotId: true, kind: true, remaining: true, expiresAt: true, packId: true },
    });
    return lots.map((l) => ({ ...l, lotId: toSafeNumber(l.lotId), remaining: toSafeNumber(l.remaining) }));
}
