-- 009_lots_fillfactor.sql -- room on each page of credits.lots for the
-- new versions of its rows.
--
-- Every consume, hold and give-back updates `remaining` of a lot, and the
-- lots in use are the recent ones, packed full by their inserts. With no
-- room on its page, an update writes the row's new version to another page
-- and a new entry into each of the table's seven indexes: 662 bytes of WAL
-- per lot updated, measured (1,024 lots, updated twice, no checkpoint
-- between). With 30% of each page kept free, the new version stays on
-- its page as a heap-only tuple (HOT: no index changes; `remaining` is in
-- no index, see 005): 156 bytes of WAL per update, and three updates in
-- four HOT in the same test. In the benchmark's consume drain, where each
-- lot is updated about ten times, only its first update found its page
-- full (later versions go to pages with room): WAL per job went from 1,058
-- to 1,014 bytes there; a lot of a new purchase or allocation gains the
-- most. Pages written from now on keep the room; an
-- existing table is rewritten by `VACUUM FULL credits.lots` (it locks the
-- table: run it in a quiet hour, if ever; the lots in use are new anyway).

ALTER TABLE credits.lots SET (fillfactor = 70);
