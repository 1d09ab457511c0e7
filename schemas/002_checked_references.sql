-- 002_checked_references.sql -- references between ledger rows are checked
-- by `creditsctl audit`, not by foreign keys.
--
-- Measured with the benchmark's workload (tests/bench/): the foreign-key
-- triggers on credits.entries and credits.lots (one lookup and one KEY SHARE
-- lock per row, per key) raised PostgreSQL's CPU time per job from about 25
-- to about 40 microseconds, the largest single cost of a batch. Only the
-- worker writes these rows, in the same transaction as the jobs and lots
-- they reference; `creditsctl audit` reports any entry or lot whose job or
-- lot is missing. The invariants a row can hold on its own stay constraints.

ALTER TABLE credits.entries DROP CONSTRAINT IF EXISTS entries_job_id_fkey;
ALTER TABLE credits.entries DROP CONSTRAINT IF EXISTS entries_lot_id_fkey;
ALTER TABLE credits.lots DROP CONSTRAINT IF EXISTS lots_job_id_fkey;
