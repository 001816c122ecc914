"""The search indexes: per-shot vectors (pgvector), timed-text cues (full-text search) and shot times.

They are projections of stored values (``features/indexes.py``), written in the value's own transaction and
rebuildable from the values, so the application role may delete their rows (``mediamesh index rebuild``).

Vectors of every index, version and width share one table; each (index, version, width) gets its own partial
HNSW index on ``embedding::vector(width)`` when its first rows arrive. The application role may not run DDL,
so it asks ``mediamesh_ensure_vector_index``, a function that runs as the owner and builds only that index
(and ``mediamesh_drop_vector_indexes``, which drops one search index's HNSW indexes before a rebuild, so the
rows go back in without growing a graph row by row and the index is built once, in bulk).

The ``vector`` extension must exist: the embedded server creates it with the database, the compose image's
init script does too; elsewhere a superuser runs ``CREATE EXTENSION vector`` once.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import VECTOR
from sqlalchemy.dialects.postgresql import TSVECTOR

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ENSURE = """
CREATE FUNCTION mediamesh_ensure_vector_index(p_index text, p_version text, p_dims integer,
                                              p_m integer, p_ef_construction integer)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    name text := 'search_vectors_hnsw_' || substr(md5(p_index || '@' || p_version || '/' || p_dims), 1, 16);
BEGIN
    IF p_dims < 1 OR p_dims > 2000 THEN
        RAISE EXCEPTION 'an HNSW index takes 1 to 2000 dimensions, not %', p_dims;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(name));
    IF to_regclass(name) IS NULL THEN
        -- A build over many rows (a rebuild, a bulk load) wants more than the default 64 MB.
        PERFORM set_config('maintenance_work_mem', '512MB', true);
        EXECUTE format(
            'CREATE INDEX %I ON search_vectors USING hnsw ((embedding::vector(%s)) vector_cosine_ops) '
            'WITH (m = %s, ef_construction = %s) WHERE index_name = %L AND version = %L AND dims = %s',
            name, p_dims, p_m, p_ef_construction, p_index, p_version, p_dims);
    END IF;
    RETURN name;
END
$$
"""


_DROP = """
CREATE FUNCTION mediamesh_drop_vector_indexes(p_index text, p_version text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    item record;
    dropped integer := 0;
BEGIN
    FOR item IN
        SELECT DISTINCT
               'search_vectors_hnsw_' || substr(md5(index_name || '@' || version || '/' || dims), 1, 16) AS name
          FROM search_vectors
         WHERE index_name = p_index AND (p_version IS NULL OR version = p_version)
    LOOP
        IF to_regclass(item.name) IS NOT NULL THEN
            EXECUTE format('DROP INDEX %I', item.name);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END
$$
"""


def upgrade() -> None:
    present = op.get_bind().execute(sa.text("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")).scalar()
    if not present:
        op.execute("CREATE EXTENSION vector")  # only a superuser may: the error then says so
    op.create_table(
        "search_vectors",
        sa.Column("index_name", sa.Text, primary_key=True),
        sa.Column("value_key", sa.String(64), sa.ForeignKey("feature_values.key"), primary_key=True),
        sa.Column("shot", sa.Integer, primary_key=True),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("model_fingerprint", sa.Text),
        sa.Column("asset_id", sa.String(64), nullable=False),
        sa.Column("shots_key", sa.String(64)),
        sa.Column("language", sa.Text),
        sa.Column("dims", sa.Integer, nullable=False),
        sa.Column("embedding", VECTOR(), nullable=False),
    )
    # Vectors stay in the table's own pages (they hardly compress): the planner then counts what reading them
    # costs, and takes the HNSW index over a scan of a table it would otherwise think small.
    op.execute("ALTER TABLE search_vectors ALTER COLUMN embedding SET STORAGE MAIN")
    op.create_index("ix_search_vectors_scope", "search_vectors", ["index_name", "version", "asset_id"])
    op.create_table(
        "search_cues",
        sa.Column("index_name", sa.Text, primary_key=True),
        sa.Column("value_key", sa.String(64), sa.ForeignKey("feature_values.key"), primary_key=True),
        sa.Column("cue", sa.Integer, primary_key=True),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("asset_id", sa.String(64), nullable=False),
        sa.Column("shots_key", sa.String(64)),
        sa.Column("shot", sa.Integer, nullable=False),
        sa.Column("start_time", sa.Float, nullable=False),
        sa.Column("end_time", sa.Float, nullable=False),
        sa.Column("language", sa.Text),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("document", TSVECTOR, sa.Computed("to_tsvector('simple'::regconfig, text)", persisted=True)),
    )
    op.create_index("ix_search_cues_document", "search_cues", ["document"], postgresql_using="gin")
    op.create_index("ix_search_cues_scope", "search_cues", ["index_name", "version", "asset_id"])
    op.create_table(
        "search_shots",
        sa.Column("index_name", sa.Text, primary_key=True),
        sa.Column("value_key", sa.String(64), sa.ForeignKey("feature_values.key"), primary_key=True),
        sa.Column("shot", sa.Integer, primary_key=True),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("asset_id", sa.String(64), nullable=False),
        sa.Column("start_time", sa.Float, nullable=False),
        sa.Column("end_time", sa.Float, nullable=False),
    )
    op.create_index("ix_search_shots_scope", "search_shots", ["index_name", "version", "asset_id", "start_time"])
    op.create_table(
        "search_indexed",
        sa.Column("index_name", sa.Text, primary_key=True),
        sa.Column("value_key", sa.String(64), sa.ForeignKey("feature_values.key"), primary_key=True),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.execute(_ENSURE)
    op.execute(
        "REVOKE ALL ON FUNCTION mediamesh_ensure_vector_index(text, text, integer, integer, integer) FROM PUBLIC"
    )
    op.execute(_DROP)
    op.execute("REVOKE ALL ON FUNCTION mediamesh_drop_vector_indexes(text, text) FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION mediamesh_drop_vector_indexes(text, text)")
    op.execute("DROP FUNCTION mediamesh_ensure_vector_index(text, text, integer, integer, integer)")
    for table in ("search_indexed", "search_shots", "search_cues", "search_vectors"):
        op.drop_table(table)
