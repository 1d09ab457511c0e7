// drizzle.ts -- the package's Drizzle schema and reads, and its Prisma
// schema file, as an app finds them once the package is installed; checked
// against creditsctl (ledger.ts):
//   CREDITS_DATABASE_URI=... CREDITSCTL=... node dist/drizzle.js USER

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { readBalance, readExpiringSoon, readHistoryPage, type HistoryLine } from "@credits-worker/client/drizzle";
import { compare } from "./ledger.js";

const prismaSchema = createRequire(import.meta.url).resolve("@credits-worker/client/prisma/schema.prisma");
const models = readFileSync(prismaSchema, "utf8");
for (const name of ["model CreditsLot", "model CreditsHold", "view CreditsBalance", "view CreditsHistory", "view CreditsUsableLot"])
    if (!models.includes(name)) throw new Error(`${prismaSchema} has no ${name}`);

const pool = new pg.Pool({ connectionString: process.env.CREDITS_DATABASE_URI });
try {
    const db = drizzle(pool);
    const user = process.argv[2] ?? "";
    const lines: HistoryLine[] = [];
    // The newest 40 lines, in pages of 10.
    for (let before: number | null = null; lines.length < 40;) {
        const page = await readHistoryPage(db, user, before === null ? { limit: 10 } : { before, limit: 10 });
        lines.push(...page.jobs);
        if (page.next === null) break;
        before = page.next;
    }
    console.log(compare("drizzle", user, await readBalance(db, user), lines, await readExpiringSoon(db, user, 31), 31));
    console.log(`install-check: prisma schema ${prismaSchema.endsWith("prisma/schema.prisma")}`);
} finally {
    await pool.end();
}
