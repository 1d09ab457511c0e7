-- grants.sql -- what the roles of schemas/roles.sql may do with the objects
-- of schema credits. Applied as credits_owner (SET ROLE) in one
-- transaction, whenever the roles exist: by `creditsctl migrate` after
-- every run, and by `creditsctl roles`.
--
-- Everything is revoked first, then granted: after each run the privileges
-- are exactly these, whatever was granted by hand in between.
--
-- Convention for migrations: a migration that adds a table, a view, a
-- sequence or a column that a role writes adds its grants here in the same
-- change, guarded (to_regclass(), a column check) so that this file runs
-- at every schema version. migrate applies it right after the migrations,
-- in the same run. A new table or view is readable by credits_reader from
-- its creation on (the default privileges below); credits_worker gets
-- nothing on it unless it is granted here.

REVOKE ALL ON ALL TABLES IN SCHEMA credits FROM credits_worker, credits_reader;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA credits FROM credits_worker, credits_reader;
GRANT USAGE ON SCHEMA credits TO credits_worker, credits_reader;

-- credits_worker: every statement of worker/daemon/store.c, nothing more.
-- No DDL (it owns nothing), no TRUNCATE, no DELETE but of old events (below);
-- UPDATE only of the columns it changes.
GRANT SELECT ON credits.plans, credits.packs TO credits_worker;
-- Accounts are created ON CONFLICT DO NOTHING and locked FOR NO KEY UPDATE
-- (which needs UPDATE of some column); an allocate sets the plan.
GRANT SELECT, INSERT ON credits.accounts TO credits_worker;
GRANT UPDATE (plan_id) ON credits.accounts TO credits_worker;
-- A decision is claimed once and replayed; it is never changed.
GRANT SELECT, INSERT ON credits.jobs TO credits_worker;
-- Lots are created, then only their credits change (spent, expired,
-- forfeited); their IDs are reserved from the sequence.
GRANT SELECT, INSERT ON credits.lots TO credits_worker;
GRANT UPDATE (remaining) ON credits.lots TO credits_worker;
GRANT USAGE ON SEQUENCE credits.lot_id_seq TO credits_worker;
-- Entries are only ever added; a batch reads what a hold or a charge took,
-- to give it back.
GRANT SELECT, INSERT ON credits.entries TO credits_worker;

-- Revision 2 (contract section 9), once its migration has made these.
DO $$
BEGIN
    IF to_regclass('credits.holds') IS NOT NULL THEN
        GRANT SELECT, INSERT ON credits.holds TO credits_worker;
        GRANT UPDATE (status, captured, closed_at, closed_by) ON credits.holds TO credits_worker;
    END IF;
    IF EXISTS (SELECT FROM pg_attribute
                WHERE attrelid = 'credits.lots'::regclass AND attname = 'revoked_at'
                  AND NOT attisdropped) THEN
        GRANT UPDATE (revoked_at) ON credits.lots TO credits_worker;
    END IF;
    -- The sweep announces a lot once before it expires.
    IF EXISTS (SELECT FROM pg_attribute
                WHERE attrelid = 'credits.lots'::regclass AND attname = 'expiry_noticed_at'
                  AND NOT attisdropped) THEN
        GRANT UPDATE (expiry_noticed_at) ON credits.lots TO credits_worker;
    END IF;
    -- The outbox: written with the ledger, marked when published, and the
    -- one DELETE the worker has: published events past their retention.
    IF to_regclass('credits.events') IS NOT NULL THEN
        GRANT SELECT, INSERT, DELETE ON credits.events TO credits_worker;
        GRANT UPDATE (published_at) ON credits.events TO credits_worker;
        IF pg_get_serial_sequence('credits.events', 'event_id') IS NOT NULL THEN
            EXECUTE format('GRANT USAGE ON SEQUENCE %s TO credits_worker',
                           pg_get_serial_sequence('credits.events', 'event_id'));
        END IF;
    END IF;
END
$$;

-- credits_reader: every table and view of the schema (the ledger, the
-- catalog, the decisions; revision 2's holds, events and read views), now
-- and as later migrations create them. Nothing else.
GRANT SELECT ON ALL TABLES IN SCHEMA credits TO credits_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA credits GRANT SELECT ON TABLES TO credits_reader;
