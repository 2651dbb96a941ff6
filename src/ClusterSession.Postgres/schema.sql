-- ClusterSession: PostgreSQL schema of the session store (see docs/postgres-data-model.md).
--
-- PostgresSessionStore.CreateSchemaAsync() runs exactly this script after replacing
--   {schema}  with the schema name   (option Schema, default public)
--   {prefix}  with the table prefix  (option TablePrefix, default clustersession_)
-- and, when the option Unlogged is set, "CREATE TABLE" with "CREATE UNLOGGED TABLE".
-- A DBA can run it by hand instead, for example:
--   sed -e 's/{schema}/public/g' -e 's/{prefix}/clustersession_/g' schema.sql | psql -v ON_ERROR_STOP=1
-- A double quote inside a name must be written twice. Every statement is idempotent
-- (IF NOT EXISTS, ON CONFLICT DO NOTHING); nothing here alters or drops an existing object.

CREATE SCHEMA IF NOT EXISTS "{schema}";

-- The store's own state: the layout marker (row 'layout': '2' = the previous release's layout, keyed by session ids;
-- 'migrating' = an upgrade is moving sessions; '3' = keyed by handles only), the moment the first node of this
-- release registered (row 'nodes_since') and one heartbeat row per running store ('node:<random>', value = the
-- layout it acts on). No session data. docs/postgres-data-model.md, "Layouts and upgrades".
CREATE TABLE IF NOT EXISTS "{schema}"."{prefix}store" (
    name       text COLLATE "C" NOT NULL,
    value      text             NOT NULL,
    updated_at timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT "{prefix}store_pkey" PRIMARY KEY (name)
);

-- One row per session. expires_at = least(last_accessed_at + idle_timeout, absolute_expires_at),
-- kept in the row so that reads and the cleanup filter on one indexed column.
CREATE TABLE IF NOT EXISTS "{schema}"."{prefix}sessions" (
    id                  text COLLATE "C" NOT NULL, -- the session's handle (22 characters); 32: an id of the previous layout
    created_at          timestamptz      NOT NULL,
    last_accessed_at    timestamptz      NOT NULL,
    idle_timeout        interval         NOT NULL,
    absolute_expires_at timestamptz      NOT NULL,
    expires_at          timestamptz      NOT NULL,
    principal           text COLLATE "C",
    version             bigint           NOT NULL,
    CONSTRAINT "{prefix}sessions_pkey" PRIMARY KEY (id)
);

-- Finding a principal's sessions; anonymous sessions (principal IS NULL) stay out of the index.
CREATE INDEX IF NOT EXISTS "{prefix}sessions_principal_idx"
    ON "{schema}"."{prefix}sessions" (principal) WHERE principal IS NOT NULL;

-- The cleanup walks expired sessions oldest first.
CREATE INDEX IF NOT EXISTS "{prefix}sessions_expires_at_idx"
    ON "{schema}"."{prefix}sessions" (expires_at);

-- One row per attribute, so a save writes only the attributes it changed. The foreign key
-- makes a deleted session take its attributes with it (ON DELETE CASCADE), makes an id change
-- move them in the same statement (ON UPDATE CASCADE), and makes it impossible for a late
-- save to leave attributes of a session that no longer exists.
CREATE TABLE IF NOT EXISTS "{schema}"."{prefix}attributes" (
    session_id text COLLATE "C" NOT NULL,
    name       text COLLATE "C" NOT NULL,
    value      bytea            NOT NULL,
    CONSTRAINT "{prefix}attributes_pkey" PRIMARY KEY (session_id, name),
    CONSTRAINT "{prefix}attributes_session_fkey" FOREIGN KEY (session_id)
        REFERENCES "{schema}"."{prefix}sessions" (id) ON DELETE CASCADE ON UPDATE CASCADE
);

-- Claims of session lifecycle events that ClusterSession.AspNetCore delivers to one node only: the node whose insert
-- lands handles the event. Rows live for a few minutes; the cleanup deletes them. No session data.
CREATE TABLE IF NOT EXISTS "{schema}"."{prefix}event_claims" (
    event_id   text COLLATE "C" NOT NULL,
    expires_at timestamptz      NOT NULL,
    CONSTRAINT "{prefix}event_claims_pkey" PRIMARY KEY (event_id)
);

-- ASP.NET Core Data Protection's key ring, shared by every server through the store (ClusterSession.AspNetCore
-- uses it unless the application persists its keys itself). One row per XML element (a key or a revocation),
-- only ever inserted; Data Protection reads them all, oldest first, and decides which keys are valid.
CREATE TABLE IF NOT EXISTS "{schema}"."{prefix}key_ring" (
    id            bigint GENERATED ALWAYS AS IDENTITY,
    friendly_name text        NOT NULL,
    xml           text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT "{prefix}key_ring_pkey" PRIMARY KEY (id)
);

-- The layout marker, where none is set yet: '2' when sessions keyed by ids (32 characters) exist, '3' otherwise.
-- (PostgresSessionStore.CreateSchemaAsync sets '2' before this line when the sessions table existed before the
-- store table, i.e. on a database of the previous release, even an empty one.)
INSERT INTO "{schema}"."{prefix}store" (name, value)
SELECT 'layout', CASE WHEN EXISTS (SELECT FROM "{schema}"."{prefix}sessions" WHERE length(id) = 32) THEN '2' ELSE '3' END
ON CONFLICT (name) DO NOTHING;
