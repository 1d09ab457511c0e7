-- 006_revision2.sql -- contract revision 2 (section 9.6): holds, revoked
-- lots, grant lots, the new entry kinds, job types and error codes, the
-- give-back links of entries, and the read views credits.balances and
-- credits.history.
--
-- Every invariant a constraint can hold is a constraint here; those that
-- span rows (a closed hold's amount equals what it charged plus what it gave
-- back, refunds never above what a charge spent) are checked by
-- `creditsctl audit`.

-- ---------------------------------------------------------------------------
-- Jobs: the new types (and `expire`, the sweep's own), the new codes
-- ---------------------------------------------------------------------------

ALTER TABLE credits.jobs DROP CONSTRAINT jobs_type_check;
ALTER TABLE credits.jobs ADD CONSTRAINT jobs_type_check CHECK (type IN (
    'consume', 'purchase', 'allocate', 'hold', 'capture', 'release', 'refund', 'revoke',
    'grant', 'cancel', 'expire'));

ALTER TABLE credits.jobs DROP CONSTRAINT jobs_error_check;
ALTER TABLE credits.jobs ADD CONSTRAINT jobs_error_check CHECK (error IN (
    'insufficient_credits', 'unknown_pack', 'unknown_plan', 'duplicate_payment',
    'already_allocated', 'stale_period', 'unknown_hold', 'hold_closed', 'hold_expired',
    'capture_exceeds_hold', 'unknown_charge', 'refund_exceeds_charge', 'unknown_payment',
    'already_revoked', 'no_plan'));

-- ---------------------------------------------------------------------------
-- Lots: the `grant` kind, and revocation
-- ---------------------------------------------------------------------------

ALTER TABLE credits.lots ADD COLUMN revoked_at timestamptz;

ALTER TABLE credits.lots DROP CONSTRAINT lots_kind_check;
ALTER TABLE credits.lots ADD CONSTRAINT lots_kind_check
    CHECK (kind IN ('pack', 'monthly', 'grant'));

-- Which columns each kind has: a grant has no pack, payment or plan, and
-- may or may not expire.
ALTER TABLE credits.lots DROP CONSTRAINT lots_check1;
ALTER TABLE credits.lots ADD CONSTRAINT lots_kind_columns CHECK (
       (kind = 'pack'
        AND expires_at IS NOT NULL AND pack_id IS NOT NULL
        AND payment_ref IS NOT NULL AND plan_id IS NULL AND period IS NULL)
    OR (kind = 'monthly'
        AND expires_at IS NULL AND plan_id IS NOT NULL
        AND period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'
        AND pack_id IS NULL AND payment_ref IS NULL)
    OR (kind = 'grant'
        AND pack_id IS NULL AND payment_ref IS NULL AND plan_id IS NULL AND period IS NULL));

-- Only a pack is revoked (its payment was refunded), and a revoked lot holds
-- nothing usable.
ALTER TABLE credits.lots ADD CONSTRAINT lots_revoked CHECK (
    revoked_at IS NULL OR (kind = 'pack' AND remaining = 0));

-- The read views find the lot a job created by its job.
CREATE INDEX lots_job ON credits.lots (job_id);

-- ---------------------------------------------------------------------------
-- Entries: the new kinds, and `origin`
-- ---------------------------------------------------------------------------

ALTER TABLE credits.entries ADD COLUMN origin text COLLATE "C";

ALTER TABLE credits.entries DROP CONSTRAINT entries_kind_check;
ALTER TABLE credits.entries ADD CONSTRAINT entries_kind_check CHECK (kind IN (
    'consume', 'purchase', 'allocate', 'forfeit', 'expire', 'hold', 'release', 'refund',
    'revoke', 'grant'));

ALTER TABLE credits.entries DROP CONSTRAINT entries_check;
ALTER TABLE credits.entries ADD CONSTRAINT entries_sign CHECK (
       (kind IN ('purchase', 'allocate', 'release', 'refund', 'grant') AND delta > 0)
    OR (kind IN ('consume', 'forfeit', 'expire', 'hold', 'revoke') AND delta < 0));

-- A give-back names what it gives back; what only takes names nothing but
-- the expiry or revocation that follows a give-back.
ALTER TABLE credits.entries ADD CONSTRAINT entries_origin CHECK (
       (kind IN ('release', 'refund') AND origin IS NOT NULL)
    OR (kind IN ('consume', 'purchase', 'allocate', 'forfeit', 'hold', 'grant')
        AND origin IS NULL)
    OR kind IN ('expire', 'revoke'));

-- A charge's refunds and a hold's releases, found by what they give back.
CREATE INDEX entries_origin ON credits.entries (origin) WHERE origin IS NOT NULL;

-- ---------------------------------------------------------------------------
-- Holds
-- ---------------------------------------------------------------------------

CREATE TABLE credits.holds (
    hold_id    text COLLATE "C" PRIMARY KEY
               CHECK (octet_length(hold_id) BETWEEN 1 AND 128),
    user_id    text COLLATE "C" NOT NULL,
    amount     bigint      NOT NULL CHECK (amount BETWEEN 1 AND 1000000000),
    status     text        NOT NULL
               CHECK (status IN ('open', 'captured', 'released', 'expired')),
    captured   bigint,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    closed_at  timestamptz,
    closed_by  text COLLATE "C",
    tool       text,
    ref        text,
    CHECK (expires_at > created_at),
    -- An open hold is not closed; a closed one says when.
    CHECK ((status = 'open') = (closed_at IS NULL)),
    -- What a capture charged, within the hold.
    CHECK ((status = 'captured') = (captured IS NOT NULL)),
    CHECK (captured BETWEEN 0 AND amount),
    -- A capture or a release job closes a hold; its expiry closes it alone.
    CHECK ((status IN ('captured', 'released')) = (closed_by IS NOT NULL))
);

-- A user's open holds (every batch of theirs loads them), and the holds due
-- to expire (the sweep).
CREATE INDEX holds_user_open ON credits.holds (user_id) WHERE status = 'open';
CREATE INDEX holds_open_expiry ON credits.holds (expires_at) WHERE status = 'open';
-- A capture's hold, for the capture's refunds.
CREATE INDEX holds_closed_by ON credits.holds (closed_by) WHERE closed_by IS NOT NULL;

-- ---------------------------------------------------------------------------
-- Read views (contract 9.6), for the web app's ORM
-- ---------------------------------------------------------------------------

-- The usable lots as of now(), with the credits in each: not expired, not
-- revoked, credits left. A hold past its expires_at has expired (contract
-- 9.2) even while its release is not yet written (the user's next job or
-- the sweep writes it): its shares count as back in their lots already, so
-- the view is exact as of now() in between. Overdue open holds are few
-- (holds_open_expiry finds them); a user's lots come through
-- lots_user_unspent, or by lot_id for a spent lot a share comes back to.
CREATE VIEW credits.usable_lots AS
WITH overdue AS (
        SELECT e.lot_id, -sum(e.delta)::bigint AS back
          FROM credits.holds h
          JOIN credits.entries e ON e.job_id = h.hold_id AND e.kind = 'hold'
         WHERE h.status = 'open' AND h.expires_at <= now()
         GROUP BY e.lot_id)
SELECT l.user_id, l.lot_id, l.kind, l.remaining + coalesce(o.back, 0) AS credits,
       l.granted, l.granted_at, l.expires_at, l.pack_id, l.plan_id, l.period
  FROM credits.lots l
  LEFT JOIN overdue o ON o.lot_id = l.lot_id
 WHERE NOT l.spent AND l.revoked_at IS NULL
   AND (l.expires_at IS NULL OR l.expires_at > now())
UNION ALL
SELECT l.user_id, l.lot_id, l.kind, o.back AS credits,
       l.granted, l.granted_at, l.expires_at, l.pack_id, l.plan_id, l.period
  FROM overdue o
  JOIN credits.lots l ON l.lot_id = o.lot_id
 WHERE l.spent AND l.revoked_at IS NULL
   AND (l.expires_at IS NULL OR l.expires_at > now());

-- The balance as of now(): the usable lots split by kind; `held` the holds
-- still open and not yet due; and the next expiry of credits.
CREATE VIEW credits.balances AS
SELECT a.user_id,
       coalesce(u.pack, 0) + coalesce(u.monthly, 0) + coalesce(u."grant", 0) AS total,
       coalesce(u.pack, 0) AS pack,
       coalesce(u.monthly, 0) AS monthly,
       coalesce(u."grant", 0) AS "grant",
       coalesce(h.held, 0) AS held,
       u.next_expiry_at,
       u.next_expiry_credits
  FROM credits.accounts a
  LEFT JOIN LATERAL (
        SELECT sum(v.credits) FILTER (WHERE v.kind = 'pack')::bigint AS pack,
               sum(v.credits) FILTER (WHERE v.kind = 'monthly')::bigint AS monthly,
               sum(v.credits) FILTER (WHERE v.kind = 'grant')::bigint AS "grant",
               min(v.expires_at) AS next_expiry_at,
               sum(v.credits) FILTER (WHERE v.expires_at = v.first_expiry)::bigint
                   AS next_expiry_credits
          FROM (SELECT kind, credits, expires_at, min(expires_at) OVER () AS first_expiry
                  FROM credits.usable_lots
                 WHERE user_id = a.user_id) v) u ON true
  LEFT JOIN LATERAL (
        SELECT sum(amount)::bigint AS held
          FROM credits.holds
         WHERE user_id = a.user_id AND status = 'open' AND expires_at > now()) h ON true;

-- One row per applied job that changed the user's lots, at the job's last
-- entry: a page is WHERE user_id = $1 AND cursor < $c ORDER BY cursor DESC
-- LIMIT $n, read backwards through entries_user (user_id, entry_id).
-- `delta` is the job's net change to the lots (the expiries it found on its
-- way included); tool and ref come from its entries, pack, plan and period
-- from the lot it created (if any). A rejected job is not a line of the
-- history (contract 9.6), even in the rare case it wrote the expiries it
-- found: those stay in credits.entries.
CREATE VIEW credits.history AS
SELECT e.user_id,
       e.job_id,
       j.type,
       s.delta,
       s.tool,
       s.ref,
       c.pack_id,
       c.plan_id,
       c.period,
       s.created_at,
       e.entry_id AS cursor
  FROM credits.entries e
  JOIN credits.jobs j ON j.job_id = e.job_id
  CROSS JOIN LATERAL (
        SELECT sum(x.delta)::bigint AS delta, max(x.tool) AS tool, max(x.ref) AS ref,
               min(x.created_at) AS created_at
          FROM credits.entries x
         WHERE x.job_id = e.job_id AND x.user_id = e.user_id) s
  LEFT JOIN LATERAL (
        SELECT l.pack_id, l.plan_id, l.period
          FROM credits.lots l
         WHERE l.job_id = e.job_id
         ORDER BY l.lot_id
         LIMIT 1) c ON true
 WHERE j.status = 'applied'
   AND NOT EXISTS (
        SELECT 1 FROM credits.entries y
         WHERE y.job_id = e.job_id AND y.user_id = e.user_id AND y.entry_id > e.entry_id);
