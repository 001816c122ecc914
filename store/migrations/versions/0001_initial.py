"""Initial schema: assets, aliases, feature versions, immutable values, lineage, attempts, claims, runs.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_now = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("id", sa.String(64), primary_key=True, comment="SHA-256 of the asset's bytes"),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("blob_key", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    )
    op.create_table(
        "aliases",
        sa.Column("asset_id", sa.String(64), sa.ForeignKey("assets.id"), primary_key=True),
        sa.Column("name", sa.Text, primary_key=True, comment="a path or URI the bytes were ingested under"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    )
    op.create_index("ix_aliases_name", "aliases", ["name"])
    op.create_table(
        "feature_versions",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("version", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.String(64), primary_key=True, comment="code fingerprint seen with this version"),
        sa.Column("resources", sa.Text, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    )
    op.create_table(
        "feature_values",
        sa.Column(
            "key",
            sa.String(64),
            primary_key=True,
            comment="hash of feature, version, params, model, input keys",
        ),
        sa.Column("asset_id", sa.String(64), sa.ForeignKey("assets.id"), nullable=False),
        sa.Column("feature", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("params", JSONB, nullable=False),
        sa.Column("model_fingerprint", sa.Text),
        sa.Column("code_fingerprint", sa.String(64), nullable=False),
        sa.Column("payload_kind", sa.Text, nullable=False),
        sa.Column("blob_key", sa.Text, nullable=False),
        sa.Column("meta", JSONB, nullable=False),
        sa.Column("shape", JSONB),
        sa.Column("dtype", sa.Text),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("worker", sa.Text, nullable=False),
        sa.Column("device", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    )
    op.create_index("ix_feature_values_asset_feature", "feature_values", ["asset_id", "feature", "version"])
    op.create_table(
        "lineage",
        sa.Column("value_key", sa.String(64), sa.ForeignKey("feature_values.key"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("input_name", sa.Text, nullable=False),
        sa.Column("input_key", sa.String(64), nullable=False, comment="a value key, or the asset id for 'source'"),
    )
    op.create_table(
        "attempts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("value_key", sa.String(64), nullable=False),
        sa.Column("asset_id", sa.String(64), sa.ForeignKey("assets.id"), nullable=False),
        sa.Column("feature", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("error_type", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("retryable", sa.Boolean, nullable=False),
        sa.Column("worker", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(36)),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    )
    op.create_index("ix_attempts_asset", "attempts", ["asset_id"])
    op.create_table(
        "claims",
        sa.Column("value_key", sa.String(64), primary_key=True),
        sa.Column("asset_id", sa.String(64), nullable=False),
        sa.Column("feature", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("worker", sa.Text, nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("planned", sa.Integer, nullable=False, server_default="0"),
        sa.Column("computed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reused", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    )
    # Values and their lineage are written once: the database itself refuses to change or remove them.
    op.execute(
        """
        CREATE FUNCTION mediamesh_reject_mutation() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'mediamesh: % on % is not allowed; values are immutable', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'restrict_violation';
        END
        $$ LANGUAGE plpgsql
        """
    )
    for table in ("feature_values", "lineage"):
        op.execute(
            f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION mediamesh_reject_mutation()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION mediamesh_reject_mutation()"
        )


def downgrade() -> None:
    for table in (
        "runs",
        "claims",
        "attempts",
        "lineage",
        "feature_values",
        "feature_versions",
        "aliases",
        "assets",
    ):
        op.drop_table(table)
    op.execute("DROP FUNCTION mediamesh_reject_mutation()")
