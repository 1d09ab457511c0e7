-- 007_credit_bounds.sql -- an upper bound on the credits of one lot.
--
-- The worker sums a user's lots in 64-bit integers, and a sum that does not
-- fit is a programmer error it stops on (core/ledger.c). The catalog
-- already bounds what the worker itself grants (a pack's credits and a
-- plan's monthly credits at 10^12, 001_ledger.sql), but a lot written by
-- hand, by a script or by a later program was bounded only by bigint: two
-- lots of 5 * 10^18 made every job of that user stop the worker. With
-- every lot at most 10^12, a user's usable credits reach 2^63 only past
-- nine million lots with credits left, more than one batch can load.
-- (Grants of contract revision 2 are at most 10^9 each.)
--
-- VALIDATE checks the rows already there: a database holding such a lot
-- refuses this migration, naming the constraint, until the lot is fixed.

ALTER TABLE credits.lots
    ADD CONSTRAINT lots_granted_bound CHECK (granted <= 1000000000000);
