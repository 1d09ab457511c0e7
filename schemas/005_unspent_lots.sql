-- 005_unspent_lots.sql -- an index of the lots with credits left.
--
-- Every batch loads its users' lots with credits left. Through lots_user
-- that meant reading every lot a user ever had: a user who bought thousands
-- of packs made every batch with them slower (the benchmark's hot user,
-- 300,000 jobs: 19,000 jobs/s, against 37,000 over 100,000 jobs).
--
-- An index whose predicate is `remaining > 0` would do, but `remaining`
-- changes on every consume, and an update that touches a column an index
-- depends on (its predicate included) cannot be a HOT update: measured,
-- that cost 18% more PostgreSQL CPU per job. `spent` changes only once in a
-- lot's life, when its last credit goes; PostgreSQL computes it, so no
-- program can get it wrong.

ALTER TABLE credits.lots
    ADD COLUMN spent boolean GENERATED ALWAYS AS (remaining = 0) STORED;

CREATE INDEX lots_user_unspent ON credits.lots (user_id, lot_id) WHERE NOT spent;
