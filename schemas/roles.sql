-- roles.sql -- the database roles of credits-worker, for least privilege.
-- Applied by `creditsctl roles` (in one transaction), run by a role with
-- CREATEROLE that owns the database, or by a superuser. Safe to run again.
--
--   credits_owner   owns schema credits and everything in it. `creditsctl
--                   migrate` runs as a member of it and switches to it
--                   (SET ROLE), so every object a migration creates is its.
--   credits_worker  exactly what credits-worker does (schemas/grants.sql).
--   credits_reader  reads the schema: what the web app shows (balances,
--                   history, the catalog) and what `creditsctl audit` checks.
--
-- All three are NOLOGIN. Programs and people log in as roles that are
-- members of one, for instance:
--
--   CREATE ROLE credits_migrate LOGIN PASSWORD '...' IN ROLE credits_owner;
--   CREATE ROLE credits_app LOGIN PASSWORD '...' IN ROLE credits_worker;
--   CREATE ROLE webapp LOGIN PASSWORD '...' IN ROLE credits_reader;
--
-- The privileges on the schema's objects are in schemas/grants.sql, which
-- `creditsctl migrate` applies after every run (and `creditsctl roles` too,
-- when its role may act as credits_owner).

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['credits_owner', 'credits_worker', 'credits_reader'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', name);
        ELSE
            -- Nobody logs in as these, whatever was changed by hand.
            EXECUTE format('ALTER ROLE %I NOLOGIN', name);
        END IF;
    END LOOP;
END
$$;

-- CONNECT for all three (so PUBLIC's may be revoked); CREATE for the owner,
-- because migrate creates the schema (and CREATE SCHEMA IF NOT EXISTS
-- checks the privilege even when the schema is there). A GRANT by a role
-- that may not grant only warns: check that it took.
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO credits_owner, credits_worker, credits_reader',
                   current_database());
    EXECUTE format('GRANT CREATE ON DATABASE %I TO credits_owner', current_database());
    IF NOT has_database_privilege('credits_owner', current_database(), 'CREATE')
       OR NOT has_database_privilege('credits_worker', current_database(), 'CONNECT') THEN
        RAISE EXCEPTION 'may not grant privileges on database %', current_database()
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

-- A schema migrated before these roles existed is handed to credits_owner:
-- the schema, its tables, views and sequences (a sequence owned by a
-- column follows its table), and its functions. Changing an owner takes a
-- superuser, or a member of both the old owner and credits_owner.
DO $$
DECLARE
    rel record;
    fn regprocedure;
BEGIN
    IF to_regnamespace('credits') IS NULL THEN
        RETURN;
    END IF;
    IF (SELECT nspowner FROM pg_namespace WHERE nspname = 'credits')
       <> 'credits_owner'::regrole THEN
        ALTER SCHEMA credits OWNER TO credits_owner;
    END IF;
    FOR rel IN
        SELECT c.oid::regclass AS name,
               CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                              WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END AS kind
          FROM pg_class AS c
         WHERE c.relnamespace = 'credits'::regnamespace
           AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
           AND c.relowner <> 'credits_owner'::regrole
           AND NOT EXISTS (SELECT FROM pg_depend AS d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                              AND d.deptype IN ('a', 'i'))
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO credits_owner', rel.kind, rel.name);
    END LOOP;
    FOR fn IN
        SELECT p.oid::regprocedure FROM pg_proc AS p
         WHERE p.pronamespace = 'credits'::regnamespace
           AND p.proowner <> 'credits_owner'::regrole
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO credits_owner', fn);
    END LOOP;
END
$$;
