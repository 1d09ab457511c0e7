-- 004_bytewise_keys.sql -- the key columns compare bytewise (COLLATE "C"),
-- whatever the database's default collation.
--
-- Every batch looks these columns up in B-tree indexes (jobs by job_id, lots
-- and accounts by user_id, lots by payment_ref) and inserts into the indexes
-- on them. Under a libc or ICU collation (en_US.UTF-8, C.UTF-8: what initdb
-- picks on most servers) each comparison goes through strcoll() instead of
-- memcmp(). Measured with the benchmark in a C.UTF-8 database: the mixed
-- drain at 24,200-25,300 jobs/s before this migration, 26,900-30,100 after
-- (a C database: 23,900-28,200 in the same runs). IDs are opaque: bytewise
-- order is the only order they have. The worker already locks accounts in
-- user_id COLLATE "C" order.
--
-- Changing a text column's collation keeps the rows; the indexes on these
-- columns are rebuilt.

ALTER TABLE credits.accounts
    ALTER COLUMN user_id TYPE text COLLATE "C";

ALTER TABLE credits.jobs
    ALTER COLUMN job_id TYPE text COLLATE "C",
    ALTER COLUMN user_id TYPE text COLLATE "C";

ALTER TABLE credits.lots
    ALTER COLUMN user_id TYPE text COLLATE "C",
    ALTER COLUMN job_id TYPE text COLLATE "C",
    ALTER COLUMN payment_ref TYPE text COLLATE "C";

ALTER TABLE credits.entries
    ALTER COLUMN user_id TYPE text COLLATE "C",
    ALTER COLUMN job_id TYPE text COLLATE "C";
