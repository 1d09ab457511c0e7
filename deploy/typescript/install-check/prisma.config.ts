// The scratch app's Prisma configuration, as the package README gives it:
// the credits tables are external, so Prisma Migrate never manages them.
import { defineConfig } from "prisma/config";
export default defineConfig({
    schema: "prisma",
    experimental: { externalTables: true },
    tables: {
        external: [
            "credits.plans", "credits.packs", "credits.accounts", "credits.jobs", "credits.lots",
            "credits.entries", "credits.holds",
        ],
    },
});
