// drizzle.ts -- the package's Drizzle schema and reads, and its Prisma
// schema file, as an app finds them once the package is installed:
//   CREDITS_DATABASE_URI=... node dist/drizzle.js USER

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { lots, readBalance, readHistoryPage } from "@credits-worker/client/drizzle";

const prismaSchema = createRequire(import.meta.url).resolve("@credits-worker/client/prisma/schema.prisma");
if (!readFileSync(prismaSchema, "utf8").includes("model CreditsLot")) throw new Error(`${prismaSchema} has no CreditsLot model`);

const pool = new pg.Pool({ connectionString: process.env.CREDITS_DATABASE_URI });
try {
    const db = drizzle(pool);
    const user = process.argv[2] ?? "";
    const balance = await readBalance(db, user);
    const page = await readHistoryPage(db, user, { limit: 10 });
    const lotCount = (await db.select({ id: lots.lotId }).from(lots)).length;
    console.log(`install-check: drizzle balance ${JSON.stringify(balance)} entries=${page.entries.length} lots>0=${lotCount > 0}`);
    console.log(`install-check: prisma schema ${prismaSchema.endsWith("prisma/schema.prisma")}`);
} finally {
    await pool.end();
}
