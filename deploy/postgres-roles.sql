-- mediamesh's two roles (README "Roles"). The owner owns the database and runs `mediamesh migrate`; the API,
-- the workers and the CLI connect as the application role, which `mediamesh migrate` lets read everything and
-- append to the history tables, nothing more (no UPDATE or DELETE of history, no TRUNCATE, no DDL). Neither is
-- a superuser, so neither can set session_replication_role to switch the immutability triggers off.
--
-- The image's entrypoint runs this once, on a new Postgres volume, connected to `mediamesh` as the superuser.
-- On a volume from before the roles, run it by hand (the passwords come from the container's environment):
--   docker compose exec -T postgres psql -v ON_ERROR_STOP=1 -U mediamesh -d mediamesh < deploy/postgres-roles.sql
\getenv owner_password POSTGRES_OWNER_PASSWORD
\getenv app_password POSTGRES_APP_PASSWORD

CREATE ROLE mediamesh_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE mediamesh_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
ALTER DATABASE mediamesh OWNER TO mediamesh_owner;
-- The search indexes' vectors (pgvector, in the image); only a superuser may create the extension.
CREATE EXTENSION IF NOT EXISTS vector;

-- A database from before the roles: what the superuser created changes hands (nothing to do on a new volume).
DO $$
DECLARE
    item record;
BEGIN
    FOR item IN
        SELECT format('ALTER TABLE %s OWNER TO mediamesh_owner', c.oid::regclass) AS statement
          FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
           AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
        UNION ALL
        SELECT format('ALTER FUNCTION %s OWNER TO mediamesh_owner', p.oid::regprocedure)
          FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace
           AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE item.statement;
    END LOOP;
END
$$;
