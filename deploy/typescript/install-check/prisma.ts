// prisma.ts -- the package's Prisma models in the app's own Prisma schema
// folder, the client generated without network, and the README's Prisma
// reads (prisma-reads.ts, copied from the README by the test) checked
// against creditsctl (ledger.ts):
//   CREDITS_DATABASE_URI=... CREDITSCTL=... node dist/prisma.js USER

import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/prisma/client.js";
import { readBalance, readExpiringSoon, readHistoryPage } from "./prisma-reads.js";
import { compare, type Line } from "./ledger.js";

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.env.CREDITS_DATABASE_URI }) });
try {
    const user = process.argv[2] ?? "";
    const lines: Line[] = [];
    // The newest 40 lines, in pages of 10.
    for (let before: number | null = null; lines.length < 40;) {
        const page = await readHistoryPage(prisma, user, before, 10);
        lines.push(...page.jobs);
        if (page.next === null) break;
        before = page.next;
    }
    // The app's own model sits beside the credits ones in one client.
    void prisma.appNote;
    console.log(compare("prisma", user, await readBalance(prisma, user), lines, await readExpiringSoon(prisma, user, 31), 31));
} finally {
    await prisma.$disconnect();
}
