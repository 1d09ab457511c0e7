// drizzle/queries.ts -- the reads a credits product needs, over the Drizzle
// schema beside this file: the balance (credits.balances), the usable lots
// and open holds behind it, a page of history (credits.history, one line per
// job, keyset on `cursor`), a page of per-lot entries (credits.entries, keyset
// on entry_id), and what expires soon. Each is one statement, served by the
// ledger's indexes, timed by the database's clock as the worker counts.

import { and, desc, eq, gt, lt, lte, sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { balances, entries, history, holds, usableLots } from "./schema.js";

/** Any Drizzle PostgreSQL database (node-postgres, postgres.js, ...), whatever schema it was given. */
export type CreditsDatabase = PgDatabase<PgQueryResultHKT, any>;

export interface LedgerBalance {
    /** pack + monthly + grant: what the user can spend now. */
    total: number;
    pack: number;
    monthly: number;
    grant: number;
    /** Credits reserved by open holds not yet due: not part of total. */
    held: number;
    /** When the next usable credits expire; null when none does. */
    nextExpiryAt: Date | null;
    /** How many credits expire then; null when none does. */
    nextExpiryCredits: number | null;
}

const NO_BALANCE: LedgerBalance = {
    total: 0, pack: 0, monthly: 0, grant: 0, held: 0, nextExpiryAt: null, nextExpiryCredits: null,
};

/** The user's balance now (zeros for a user the worker never saw). */
export async function readBalance(db: CreditsDatabase, user: string): Promise<LedgerBalance> {
    const rows = await db
        .select({
            total: balances.total, pack: balances.pack, monthly: balances.monthly, grant: balances.grant,
            held: balances.held, nextExpiryAt: balances.nextExpiryAt, nextExpiryCredits: balances.nextExpiryCredits,
        })
        .from(balances)
        .where(eq(balances.userId, user));
    return rows[0] ?? { ...NO_BALANCE };
}

export interface UsableLot {
    lotId: number;
    /** pack, monthly or grant */
    kind: string;
    /** Usable credits in the lot now. */
    credits: number;
    granted: number;
    expiresAt: Date | null;
    packId: string | null;
    planId: string | null;
    period: string | null;
}

const lotColumns = {
    lotId: usableLots.lotId, kind: usableLots.kind, credits: usableLots.credits, granted: usableLots.granted,
    expiresAt: usableLots.expiresAt, packId: usableLots.packId, planId: usableLots.planId, period: usableLots.period,
};

/** The order the worker spends lots in (contract 9.4): expiring ones by expiry, then the others by grant time. */
const spendingOrder = [
    sql`${usableLots.expiresAt} IS NULL`,
    sql`coalesce(${usableLots.expiresAt}, ${usableLots.grantedAt})`,
    usableLots.lotId,
];

/** The user's usable lots, in the order the worker spends them. */
export async function readUsableLots(db: CreditsDatabase, user: string): Promise<UsableLot[]> {
    return db.select(lotColumns).from(usableLots).where(eq(usableLots.userId, user)).orderBy(...spendingOrder);
}

export interface OpenHold {
    holdId: string;
    amount: number;
    createdAt: Date;
    expiresAt: Date;
    tool: string | null;
    ref: string | null;
}

/** The holds that reserve credits now (open, not yet due), soonest expiry first. */
export async function readOpenHolds(db: CreditsDatabase, user: string): Promise<OpenHold[]> {
    return db
        .select({
            holdId: holds.holdId, amount: holds.amount, createdAt: holds.createdAt, expiresAt: holds.expiresAt,
            tool: holds.tool, ref: holds.ref,
        })
        .from(holds)
        .where(and(eq(holds.userId, user), eq(holds.status, "open"), gt(holds.expiresAt, sql`now()`)))
        .orderBy(holds.expiresAt, holds.holdId);
}

export interface PageOptions {
    /** The `next` of the previous page; absent for the first (newest) page. */
    before?: number;
    /** Rows per page, 1 to 1000 (default 20). */
    limit?: number;
}

function checkPage(options: PageOptions): number {
    const limit = options.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
        throw new RangeError(`limit must be a whole number from 1 to 1000, got ${String(limit)}`);
    if (options.before !== undefined && (!Number.isSafeInteger(options.before) || options.before < 1))
        throw new RangeError(`before must be a cursor from a previous page (a positive whole number), got ${String(options.before)}`);
    return limit;
}

function page<T>(rows: T[], limit: number, cursorOf: (row: T) => number): { rows: T[]; next: number | null } {
    const more = rows.length > limit;
    const shown = more ? rows.slice(0, limit) : rows;
    const last = shown.at(-1);
    return { rows: shown, next: more && last !== undefined ? cursorOf(last) : null };
}

export interface HistoryLine {
    /** The keyset cursor (the job's last entry_id). */
    cursor: number;
    /** The job's transaction time. */
    createdAt: Date;
    /** consume, hold, capture, release, refund, purchase, revoke, allocate, grant, cancel, or expire. */
    type: string;
    jobId: string;
    /** The job's net change to the user's lots (a capture: what it gave back; the hold took the rest). */
    delta: number;
    tool: string | null;
    /** Your ref; a grant's reason. */
    ref: string | null;
    packId: string | null;
    planId: string | null;
    period: string | null;
}

export interface HistoryPage {
    jobs: HistoryLine[];
    /** Pass as `before` for the next (older) page; null on the last page. */
    next: number | null;
}

/** One page of the user's history, one line per job, newest first. */
export async function readHistoryPage(db: CreditsDatabase, user: string, options: PageOptions = {}): Promise<HistoryPage> {
    const limit = checkPage(options);
    const rows = await db
        .select({
            cursor: history.cursor, createdAt: history.createdAt, type: history.type, jobId: history.jobId,
            delta: history.delta, tool: history.tool, ref: history.ref, packId: history.packId,
            planId: history.planId, period: history.period,
        })
        .from(history)
        .where(and(eq(history.userId, user), options.before === undefined ? undefined : lt(history.cursor, options.before)))
        .orderBy(desc(history.cursor))
        .limit(limit + 1);
    const { rows: jobs, next } = page(rows, limit, (r) => r.cursor);
    return { jobs, next };
}

export interface EntryLine {
    entryId: number;
    createdAt: Date;
    /** consume, hold, forfeit, expire, revoke (< 0); purchase, allocate, grant, release, refund (> 0). */
    kind: string;
    delta: number;
    lotId: number;
    jobId: string;
    /** For a release, the hold it gives back; for a refund, the charge. */
    origin: string | null;
    tool: string | null;
    ref: string | null;
}

export interface EntriesPage {
    entries: EntryLine[];
    /** Pass as `before` for the next (older) page; null on the last page. */
    next: number | null;
}

/** One page of the user's ledger entries (what each lot gained or lost), newest first. */
export async function readEntriesPage(db: CreditsDatabase, user: string, options: PageOptions = {}): Promise<EntriesPage> {
    const limit = checkPage(options);
    const rows = await db
        .select({
            entryId: entries.entryId, createdAt: entries.createdAt, kind: entries.kind, delta: entries.delta,
            lotId: entries.lotId, jobId: entries.jobId, origin: entries.origin, tool: entries.tool, ref: entries.ref,
        })
        .from(entries)
        .where(and(eq(entries.userId, user), options.before === undefined ? undefined : lt(entries.entryId, options.before)))
        .orderBy(desc(entries.entryId))
        .limit(limit + 1);
    const { rows: shown, next } = page(rows, limit, (r) => r.entryId);
    return { entries: shown, next };
}

function checkDays(days: number): void {
    if (!Number.isInteger(days) || days < 1 || days > 36500)
        throw new RangeError(`days must be a whole number from 1 to 36500, got ${String(days)}`);
}

export interface NextExpiry {
    expiresAt: Date;
    credits: number;
}

/**
 * The user's next expiry when it is within `days` (default 7), else null:
 * "50 credits expire on 3 December". From credits.balances
 * (next_expiry_at, next_expiry_credits).
 */
export async function readExpiringSoon(db: CreditsDatabase, user: string, days = 7): Promise<NextExpiry | null> {
    checkDays(days);
    const rows = await db
        .select({ expiresAt: balances.nextExpiryAt, credits: balances.nextExpiryCredits })
        .from(balances)
        .where(and(eq(balances.userId, user),
            lte(balances.nextExpiryAt, sql`now() + make_interval(days => ${days})`)));
    const row = rows[0];
    return row && row.expiresAt && row.credits !== null ? { expiresAt: row.expiresAt, credits: row.credits } : null;
}

/** The usable lots that expire within `days` (default 7), soonest first: every expiry, not only the next. */
export async function readExpiringLots(db: CreditsDatabase, user: string, days = 7): Promise<UsableLot[]> {
    checkDays(days);
    return db.select(lotColumns).from(usableLots)
        .where(and(eq(usableLots.userId, user),
            lte(usableLots.expiresAt, sql`now() + make_interval(days => ${days})`)))
        .orderBy(...spendingOrder);
}
