-- 003_usable_lots_index.sql -- find a user's lots with credits left without
-- reading the spent ones.
--
-- The worker loads, for each batch, the lots with credits left and, only for
-- users with an allocation in the batch, the spent monthly lots from the
-- batch's earliest requested period on (the allocate rules need no older
-- period). Without this index every batch would read all of a user's lots,
-- spent ones included, so the cost of a long-lived user would grow forever.

CREATE INDEX lots_usable ON credits.lots (user_id) WHERE remaining > 0;
