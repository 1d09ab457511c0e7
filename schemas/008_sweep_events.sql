-- 008_sweep_events.sql -- contract sections 9.7 and 9.8: the sweep and the
-- events.
--
-- The sweep finds overdue holds, lots past their expiry with credits left,
-- and lots to announce (expiring within the notice days, not announced
-- yet), each through a partial index that holds only what it may find.
-- Events are written to credits.events in the transaction that causes them
-- and published to Redis after the commit; published_at stays null until
-- then, so a worker that finds unpublished events publishes them.

-- ---------------------------------------------------------------------------
-- Thresholds of the low-balance events
-- ---------------------------------------------------------------------------

-- The account's own threshold wins over its plan's; null: none.
ALTER TABLE credits.accounts
    ADD COLUMN low_balance bigint CHECK (low_balance BETWEEN 1 AND 1000000000000);
ALTER TABLE credits.plans
    ADD COLUMN low_balance bigint CHECK (low_balance BETWEEN 1 AND 1000000000000);

-- ---------------------------------------------------------------------------
-- Lots: announced once before they expire
-- ---------------------------------------------------------------------------

ALTER TABLE credits.lots ADD COLUMN expiry_noticed_at timestamptz;

-- Lots with credits left that expire: the sweep's expiries (expires_at
-- passed) and its notices (expires_at within the notice days).
CREATE INDEX lots_unspent_expiry ON credits.lots (expires_at)
    WHERE NOT spent AND expires_at IS NOT NULL;

-- ---------------------------------------------------------------------------
-- The sweep's expiries are jobs of their own: ID expire:{lot_id}
-- ---------------------------------------------------------------------------

-- NOT VALID: a database older than the reserved prefix may hold a
-- producer's job whose ID starts with it; new rows are checked.
ALTER TABLE credits.jobs ADD CONSTRAINT jobs_expire_id CHECK (
    (type = 'expire') = (job_id LIKE 'expire:%')) NOT VALID;

-- ---------------------------------------------------------------------------
-- Events
-- ---------------------------------------------------------------------------

CREATE TABLE credits.events (
    event_id     bigserial   PRIMARY KEY,
    user_id      text COLLATE "C" NOT NULL,
    type         text        NOT NULL CHECK (type IN (
                     'balance_low', 'balance_depleted', 'balance_recovered',
                     'credits_expiring', 'credits_expired', 'hold_expired')),
    job_id       text COLLATE "C" NOT NULL,
    at           timestamptz NOT NULL,
    -- The balance after the change, as in results.
    total        bigint      NOT NULL,
    pack         bigint      NOT NULL,
    monthly      bigint      NOT NULL,
    "grant"      bigint      NOT NULL,
    held         bigint      NOT NULL,
    -- The keys of each type (contract 9.8); null where the type has none.
    threshold    bigint,
    lot_id       bigint,
    credits      bigint,
    expires_at   timestamptz,
    hold_id      text COLLATE "C",
    released     bigint,
    published_at timestamptz,
    CHECK ((type IN ('balance_low', 'balance_recovered')) = (threshold IS NOT NULL)),
    CHECK ((type IN ('credits_expiring', 'credits_expired')) =
           (lot_id IS NOT NULL AND credits IS NOT NULL)),
    CHECK ((type = 'credits_expiring') = (expires_at IS NOT NULL)),
    CHECK ((type = 'hold_expired') = (hold_id IS NOT NULL AND released IS NOT NULL))
);

-- What is still to publish (normally nothing for long), and a user's
-- events for the web app and `creditsctl events --user`.
CREATE INDEX events_unpublished ON credits.events (event_id) WHERE published_at IS NULL;
CREATE INDEX events_user ON credits.events (user_id, event_id);
