"""Append-only attachments: a row per attaching, so the application role never needs UPDATE on the table.

Until now attaching bytes the asset already had (under another language, or to make older bytes current
again) updated their row. Now every attaching is a new row with its own id, and the current file per
(asset, kind, language) is the newest row, as before; rows are never changed or removed.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("attachments_pkey", "attachments", type_="primary")
    # A serial numbers the existing rows too; their order among themselves stays that of attached_at.
    op.execute("ALTER TABLE attachments ADD COLUMN id bigserial")
    op.create_primary_key("attachments_pkey", "attachments", ["id"])
    op.create_index("ix_attachments_asset_kind", "attachments", ["asset_id", "kind", "attached_at"])
    op.execute(
        "CREATE TRIGGER attachments_immutable BEFORE UPDATE OR DELETE ON attachments "
        "FOR EACH ROW EXECUTE FUNCTION mediamesh_reject_mutation()"
    )
    op.execute(
        "CREATE TRIGGER attachments_no_truncate BEFORE TRUNCATE ON attachments "
        "FOR EACH STATEMENT EXECUTE FUNCTION mediamesh_reject_mutation()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER attachments_no_truncate ON attachments")
    op.execute("DROP TRIGGER attachments_immutable ON attachments")
    op.drop_index("ix_attachments_asset_kind", "attachments")
    # The newest row per (asset, kind, sha256) is the one the old layout kept.
    op.execute(
        "DELETE FROM attachments a USING attachments b WHERE a.asset_id = b.asset_id AND a.kind = b.kind "
        "AND a.sha256 = b.sha256 AND (a.attached_at, a.id) < (b.attached_at, b.id)"
    )
    op.drop_constraint("attachments_pkey", "attachments", type_="primary")
    op.drop_column("attachments", "id")
    op.create_primary_key("attachments_pkey", "attachments", ["asset_id", "kind", "sha256"])
