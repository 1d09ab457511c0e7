-- 001_ledger.sql -- the credits ledger, contract v1 section 6.
--
-- The constraints hold every invariant a constraint can hold, so that no
-- program (the worker, creditsctl, a hand-written UPDATE) can break them.
-- The invariants that span rows (a lot equals its entries, a user's entries
-- equal the user's lots) are checked by `creditsctl audit`.

CREATE SCHEMA IF NOT EXISTS credits;

-- The catalog: data, changed by operators with SQL or `creditsctl plan|pack set`.
CREATE TABLE credits.plans (
    plan_id         text   PRIMARY KEY
                    CHECK (octet_length(plan_id) BETWEEN 1 AND 64),
    monthly_credits bigint NOT NULL
                    CHECK (monthly_credits BETWEEN 1 AND 1000000000000),
    -- NULL on insert means the contract's default, 2 * monthly_credits
    -- (filled in by the trigger below).
    rollover_cap    bigint NOT NULL,
    CHECK (rollover_cap BETWEEN monthly_credits AND 10000000000000)
);

CREATE FUNCTION credits.plans_default_cap() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.rollover_cap IS NULL THEN
        NEW.rollover_cap := 2 * NEW.monthly_credits;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER plans_default_cap BEFORE INSERT OR UPDATE ON credits.plans
    FOR EACH ROW EXECUTE FUNCTION credits.plans_default_cap();

CREATE TABLE credits.packs (
    pack_id    text    PRIMARY KEY
               CHECK (octet_length(pack_id) BETWEEN 1 AND 64),
    credits    bigint  NOT NULL CHECK (credits BETWEEN 1 AND 1000000000000),
    valid_days integer NOT NULL DEFAULT 90 CHECK (valid_days BETWEEN 1 AND 36500)
);

-- One row per user the worker has seen. The worker locks it (in user_id
-- order) for the length of a batch, so two workers never spend the same
-- credits. plan_id is the plan of the user's latest allocation.
CREATE TABLE credits.accounts (
    user_id    text        PRIMARY KEY,
    plan_id    text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One decision per job ID, forever: the dedupe key.
CREATE TABLE credits.jobs (
    job_id     text        PRIMARY KEY
               CHECK (octet_length(job_id) BETWEEN 1 AND 128),
    type       text        NOT NULL CHECK (type IN ('consume', 'purchase', 'allocate')),
    user_id    text        NOT NULL,
    status     text        NOT NULL CHECK (status IN ('applied', 'rejected')),
    error      text        CHECK (error IN ('insufficient_credits', 'unknown_pack',
                                            'unknown_plan', 'duplicate_payment',
                                            'already_allocated', 'stale_period')),
    result     bytea       NOT NULL, -- the msgpack result, replayed verbatim
    -- The canonical msgpack of the fields compared for id_conflict.
    request    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'applied') = (error IS NULL))
);

CREATE SEQUENCE credits.lot_id_seq AS bigint;

CREATE TABLE credits.lots (
    lot_id      bigint      PRIMARY KEY DEFAULT nextval('credits.lot_id_seq'),
    user_id     text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('pack', 'monthly')),
    granted     bigint      NOT NULL CHECK (granted > 0),
    remaining   bigint      NOT NULL,
    granted_at  timestamptz NOT NULL,
    expires_at  timestamptz,
    job_id      text        NOT NULL REFERENCES credits.jobs (job_id),
    pack_id     text,
    payment_ref text        UNIQUE,
    plan_id     text,
    period      text,
    CHECK (remaining BETWEEN 0 AND granted),
    CHECK ((kind = 'pack'
            AND expires_at IS NOT NULL AND pack_id IS NOT NULL
            AND payment_ref IS NOT NULL AND plan_id IS NULL AND period IS NULL)
        OR (kind = 'monthly'
            AND expires_at IS NULL AND plan_id IS NOT NULL
            AND period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'
            AND pack_id IS NULL AND payment_ref IS NULL))
);
ALTER SEQUENCE credits.lot_id_seq OWNED BY credits.lots.lot_id;

-- One monthly lot per user and period.
CREATE UNIQUE INDEX lots_monthly_period ON credits.lots (user_id, period)
    WHERE kind = 'monthly';
CREATE INDEX lots_user ON credits.lots (user_id, lot_id);

CREATE TABLE credits.entries (
    entry_id   bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    text        NOT NULL,
    job_id     text        NOT NULL REFERENCES credits.jobs (job_id),
    lot_id     bigint      NOT NULL REFERENCES credits.lots (lot_id),
    kind       text        NOT NULL
               CHECK (kind IN ('consume', 'purchase', 'allocate', 'forfeit', 'expire')),
    delta      bigint      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    tool       text,
    ref        text,
    CHECK ((kind IN ('purchase', 'allocate') AND delta > 0)
        OR (kind IN ('consume', 'forfeit', 'expire') AND delta < 0))
);

CREATE INDEX entries_user ON credits.entries (user_id, entry_id);
CREATE INDEX entries_job ON credits.entries (job_id);
CREATE INDEX entries_lot ON credits.entries (lot_id);
