// drizzle/queries.ts -- the reads a credits product needs, over the Drizzle
// schema beside this file: the usable balance, a page of history (keyset
// on entry_id, newest first), and the credits that expire soon. Each is one
// statement, served by the ledger's indexes, timed by the database's clock
// as the worker counts.

import { and, desc, eq, gt, isNull, lt, lte, or, sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { entries, lots, toSafeNumber } from "./schema.js";

/** Any Drizzle PostgreSQL database (node-postgres, postgres.js, ...), whatever schema it was given. */
export type CreditsDatabase = PgDatabase<PgQueryResultHKT, any>;

export interface LedgerBalance {
    /** pack + monthly + grant: what the user can spend now. */
    total: number;
    pack: number;
    monthly: number;
    /** Grant lots: revision 2 (0 until the worker writes any). */
    grant: number;
}

/** A lot is usable while it has not expired: no expires_at, or one still ahead of now(). */
const usable = or(isNull(lots.expiresAt), gt(lots.expiresAt, sql`now()`));

const sumOf = (kind?: string) =>
    (kind
        ? sql`coalesce(sum(${lots.remaining}) FILTER (WHERE ${lots.kind} = ${kind}), 0)`
        : sql`coalesce(sum(${lots.remaining}), 0)`).mapWith((v: string | number) => toSafeNumber(v));

/** The user's usable credits now (0 for a user the worker never saw). */
export async function readBalance(db: CreditsDatabase, user: string): Promise<LedgerBalance> {
    const rows = await db
        .select({ total: sumOf(), pack: sumOf("pack"), monthly: sumOf("monthly"), grant: sumOf("grant") })
        .from(lots)
        .where(and(eq(lots.userId, user), eq(lots.spent, false), usable));
    return rows[0] ?? { total: 0, pack: 0, monthly: 0, grant: 0 };
}

export interface HistoryEntry {
    entryId: number;
    createdAt: Date;
    kind: string;
    delta: number;
    lotId: number;
    jobId: string;
    tool: string | null;
    ref: string | null;
}

export interface HistoryPage {
    entries: HistoryEntry[];
    /** Pass as `before` for the next (older) page; null on the last page. */
    next: number | null;
}

/**
 * One page of the user's entries, newest first. `before` is the `next` of
 * the previous page (absent for the first page); `limit` 1 to 1000.
 */
export async function readHistoryPage(db: CreditsDatabase, user: string,
    options: { before?: number; limit?: number } = {}): Promise<HistoryPage> {
    const limit = options.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
        throw new RangeError(`limit must be a whole number from 1 to 1000, got ${String(limit)}`);
    if (options.before !== undefined && !Number.isSafeInteger(options.before))
        throw new RangeError(`before must be an entry ID (a whole number), got ${String(options.before)}`);
    const rows = await db
        .select({
            entryId: entries.entryId, createdAt: entries.createdAt, kind: entries.kind, delta: entries.delta,
            lotId: entries.lotId, jobId: entries.jobId, tool: entries.tool, ref: entries.ref,
        })
        .from(entries)
        .where(and(eq(entries.userId, user),
            options.before === undefined ? undefined : lt(entries.entryId, options.before)))
        .orderBy(desc(entries.entryId))
        .limit(limit + 1);
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    return { entries: page, next: more ? (page.at(-1)?.entryId ?? null) : null };
}

export interface ExpiringLot {
    lotId: number;
    kind: string;
    remaining: number;
    expiresAt: Date;
    packId: string | null;
}

/** The user's usable lots with credits left that expire within `days` (default 7), soonest first. */
export async function readExpiringSoon(db: CreditsDatabase, user: string, days = 7): Promise<ExpiringLot[]> {
    if (!Number.isInteger(days) || days < 1 || days > 36500)
        throw new RangeError(`days must be a whole number from 1 to 36500, got ${String(days)}`);
    const rows = await db
        .select({
            lotId: lots.lotId, kind: lots.kind, remaining: lots.remaining, expiresAt: lots.expiresAt,
            packId: lots.packId,
        })
        .from(lots)
        .where(and(eq(lots.userId, user), eq(lots.spent, false), gt(lots.expiresAt, sql`now()`),
            lte(lots.expiresAt, sql`now() + make_interval(days => ${days})`)))
        .orderBy(lots.expiresAt, lots.lotId);
    return rows.map((r) => ({ ...r, expiresAt: r.expiresAt as Date }));
}
