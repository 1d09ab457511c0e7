// Prisma's configuration for this package's tests and example, and the
// shape an app's own prisma.config.ts takes: the credits tables are
// external, so Prisma Migrate leaves them to `creditsctl migrate` (the
// views, `view` blocks in the schema, Prisma Migrate never applies).
import { defineConfig } from "prisma/config";

export default defineConfig({
    schema: "prisma",
    experimental: { externalTables: true },
    tables: {
        external: [
            "credits.plans", "credits.packs", "credits.accounts", "credits.jobs", "credits.lots", "credits.entries",
            "credits.holds",
        ],
    },
});
