"""Blob references: one view over every row that names a blob, and an xxh3 checksum beside SHA-256.

Garbage collection and ``mediamesh verify`` read ``blob_references`` and nothing else, so a table that
adds a ``blob_key`` column must add itself to the view in its own migration (a test checks that the
view covers every ``blob_key`` column in the schema).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# source: the table; row_key: that table's key for the row; bytes and xxh3 are NULL where not recorded.
_VIEW = """
CREATE VIEW blob_references AS
    SELECT blob_key, id AS sha256, size AS bytes, NULL::text AS xxh3,
           'assets'::text AS source, id::text AS row_key, id AS asset_id
      FROM assets
    UNION ALL
    SELECT blob_key, checksum, bytes, xxh3,
           'feature_values', key::text, asset_id
      FROM feature_values
    UNION ALL
    SELECT blob_key, sha256, NULL::bigint, NULL::text,
           'attachments', asset_id || '/' || kind || '/' || sha256, asset_id
      FROM attachments
    UNION ALL
    SELECT blob_key, id, bytes, NULL::text,
           'artefacts', id::text, NULL::varchar(64)
      FROM artefacts
"""


def upgrade() -> None:
    op.add_column(
        "feature_values",
        sa.Column("xxh3", sa.String(16), comment="xxh3-64 of the blob's bytes, checked on read; NULL before 0005"),
    )
    op.execute(_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW blob_references")
    op.drop_column("feature_values", "xxh3")
