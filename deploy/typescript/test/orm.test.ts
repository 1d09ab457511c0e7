// orm.test.ts -- the Prisma models (prisma/schema.prisma, client generated
// by tools/prisma-generate.sh) and the Drizzle schema (drizzle/) against
// the real migrated database: the balance, every page of the history and
// the lots expiring soon, through both, compared with what
// `creditsctl balance USER --json` and `creditsctl history USER --json`
// print. Needs CREDITSCTL (the creditsctl binary) besides env.ts's
// settings; creditsctl reads CREDITS_DATABASE_URL.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { PrismaPg } from "@prisma/adapter-pg";
import { drizzle } from "drizzle-orm/node-postgres";
import { eq } from "drizzle-orm";
import { Redis } from "ioredis";
import pg from "pg";
import { CreditsClient, decodeResult } from "../src/index.js";
import { jobs, readBalance, readExpiringSoon, readHistoryPage } from "../drizzle/index.js";
import { PrismaClient } from "../generated/prisma/client.js";
import { applied, databaseUri, needsWorker, prefix, redisUrl, runToken } from "./env.js";
import { prismaBalance, prismaExpiringSoon, prismaHistoryPage } from "./prisma-queries.js";

const run = promisify(execFile);

interface CtlBalance {
    user: string;
    total: number;
    pack: number;
    monthly: number;
    lots: { lot: number; kind: string; remaining: number; expires: string | null; pack: string | null }[];
}
interface CtlHistory {
    entries: { time: string; kind: string; delta: number; lot: number; job: string; tool: string | null; ref: string | null }[];
}

async function creditsctl<T>(...args: string[]): Promise<T> {
    const bin = process.env.CREDITSCTL;
    assert.ok(bin, "CREDITSCTL is the path of the creditsctl binary");
    const { stdout } = await run(bin, args);
    return JSON.parse(stdout) as T;
}

/** creditsctl prints times in UTC to the second, truncated. */
const toSecond = (d: Date) => `${d.toISOString().slice(0, 19)}Z`;

describe("Prisma and Drizzle models against the migrated database", needsWorker, () => {
    const token = runToken();
    const user = `orm-${token}`;
    let conn: Redis;
    let credits: CreditsClient;
    let pool: pg.Pool;
    let prisma: PrismaClient;
    let db: ReturnType<typeof drizzle>;

    before(async () => {
        conn = new Redis(redisUrl);
        credits = new CreditsClient({ redis: conn, prefix, timeoutMs: 15000 });
        pool = new pg.Pool({ connectionString: databaseUri });
        db = drizzle(pool);
        prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUri }) });
        // Lots of three kinds of expiry, and enough entries for several
        // pages: a 90-day pack and a month's allocation, consumes that take
        // from the pack first, then two 3-day packs (expiring soon), one of
        // which then expires.
        applied(await credits.purchase({ key: `${user}-p1`, user, pack: "starter", paymentRef: `${user}-p1` }));
        applied(await credits.allocate({ user, plan: "pro", period: "2026-11" }));
        for (let i = 0; i < 12; i++)
            applied(await credits.consume({ key: `${user}-c${i}`, user, amount: 15, tool: i % 2 ? "upscale" : "render", ref: `v${i}` }));
        applied(await credits.consume({ key: `${user}-big`, user, amount: 250, tool: "render" }));
        applied(await credits.purchase({ key: `${user}-p2`, user, pack: "soon", paymentRef: `${user}-p2` }));
        applied(await credits.purchase({ key: `${user}-p3`, user, pack: "soon", paymentRef: `${user}-p3` }));
        // Time passes for one of the 3-day packs: it expired a minute ago.
        await pool.query(
            `UPDATE credits.lots SET expires_at = now() - interval '1 minute' WHERE payment_ref = $1`, [`${user}-p3`]);
    });
    after(async () => {
        await prisma.$disconnect();
        await pool.end();
        await credits.close();
        conn.disconnect();
    });

    it("the balance: Prisma, Drizzle and creditsctl agree, and leave the expired lot out", async () => {
        const ctl = await creditsctl<CtlBalance>("balance", user, "--json");
        const expected = { total: ctl.total, pack: ctl.pack, monthly: ctl.monthly, grant: 0 };
        // The starter pack's 500 less 12 * 15 + 250, one 3-day pack (the
        // other expired), the month's 1000.
        assert.deepEqual(expected, { total: 1170, pack: 170, monthly: 1000, grant: 0 });
        assert.deepEqual(await readBalance(db, user), expected, "Drizzle");
        assert.deepEqual(await prismaBalance(prisma, user), expected, "Prisma");
        assert.deepEqual(await readBalance(db, `nobody-${token}`), { total: 0, pack: 0, monthly: 0, grant: 0 });
        // Drizzle's rows are plain JSON; Prisma's bigints need toSafeNumber first (prisma-queries.ts).
        assert.equal(JSON.stringify(await readBalance(db, user)), JSON.stringify(expected));
    });

    it("the history: every page through Prisma and Drizzle is creditsctl's history, in order", async () => {
        const ctl = await creditsctl<CtlHistory>("history", user, "--limit", "1000", "--json");
        assert.ok(ctl.entries.length >= 17, `${ctl.entries.length} entries`);
        const expected = ctl.entries.map((e) => ({ time: e.time, kind: e.kind, delta: e.delta, lot: e.lot, job: e.job, tool: e.tool, ref: e.ref }));
        const shape = (e: { createdAt: Date; kind: string; delta: number; lotId: number; jobId: string; tool: string | null; ref: string | null }) =>
            ({ time: toSecond(e.createdAt), kind: e.kind, delta: e.delta, lot: e.lotId, job: e.jobId, tool: e.tool, ref: e.ref });

        const viaDrizzle: ReturnType<typeof shape>[] = [];
        let pages = 0;
        for (let before: number | null = null; ; pages++) {
            const page = await readHistoryPage(db, user, before === null ? { limit: 5 } : { before, limit: 5 });
            assert.ok(page.entries.length <= 5);
            viaDrizzle.push(...page.entries.map(shape));
            if (page.next === null) break;
            assert.equal(page.next, page.entries.at(-1)?.entryId, "the cursor is the page's last entry_id");
            before = page.next;
        }
        assert.ok(pages >= 3, "several pages");
        assert.deepEqual(viaDrizzle, expected, "Drizzle");

        const viaPrisma: ReturnType<typeof shape>[] = [];
        for (let before: number | null = null; ;) {
            const page = await prismaHistoryPage(prisma, user, before, 5);
            viaPrisma.push(...page.entries.map(shape));
            for (const e of page.entries)
                assert.ok(e.kind === "allocate" ? e.planId === "pro" : e.packId !== null || e.kind === "consume",
                    "the lot relation is joined");
            if (page.next === null) break;
            before = page.next;
        }
        assert.deepEqual(viaPrisma, expected, "Prisma");
    });

    it("expiring soon: the usable lots with credits that expire within 7 days", async () => {
        const ctl = await creditsctl<CtlBalance>("balance", user, "--json");
        const soon = Date.now() + 7 * 86_400_000;
        const expected = ctl.lots.filter((l) => l.expires !== null && Date.parse(l.expires) <= soon)
            .map((l) => ({ lotId: l.lot, kind: l.kind, remaining: l.remaining, expires: l.expires, packId: l.pack }));
        assert.equal(expected.length, 1, "the unexpired 3-day pack");
        assert.equal(expected[0]?.packId, "soon");
        const shape = (l: { lotId: number; kind: string; remaining: number; expiresAt: Date | null; packId: string | null }) =>
            ({ lotId: l.lotId, kind: l.kind, remaining: l.remaining, expires: l.expiresAt && toSecond(l.expiresAt), packId: l.packId });
        assert.deepEqual((await readExpiringSoon(db, user)).map(shape), expected, "Drizzle");
        assert.deepEqual((await prismaExpiringSoon(prisma, user)).map(shape), expected, "Prisma");
        assert.deepEqual(await readExpiringSoon(db, user, 1), [], "nothing within a day");
    });

    it("bytea columns: the stored result reads as bytes, through both, and decodes", async () => {
        const jobId = `${user}-big`;
        const stored = await credits.getResult(jobId);
        assert.ok(stored);
        const [viaDrizzle] = await db.select({ result: jobs.result }).from(jobs).where(eq(jobs.jobId, jobId));
        assert.ok(viaDrizzle?.result instanceof Uint8Array);
        const viaPrisma = await prisma.creditsJob.findUniqueOrThrow({ where: { jobId }, select: { result: true } });
        assert.ok(viaPrisma.result instanceof Uint8Array);
        // The row holds the first decision; the key holds the latest delivery's.
        const first = { ...stored, replayed: false };
        assert.deepEqual(decodeResult(viaDrizzle.result), first);
        assert.deepEqual(decodeResult(viaPrisma.result), first);
    });
});
