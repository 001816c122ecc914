"""The feature catalogue: what every stored feature version is, so that a reader without its code can read it.

``feature_versions`` now records, with each code fingerprint, the module the feature came from, the Python
type of its value and how that value is stored (``payload_kind``). A feature moved to another module is a
new row, so rows are still only ever inserted; rows from before 0007 keep empty strings there.

``feature_catalogue`` is a view over the values themselves: one row per feature, version, code fingerprint,
params and model fingerprint ever computed, with how many values and assets have it and when it was first
and last computed (derived, so nothing in it is ever updated), plus what ``feature_versions`` knows of it.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Where several rows describe one fingerprint (a moved module), the newest row that names a module wins.
_VIEW = """
CREATE VIEW feature_catalogue AS
    WITH computed AS (
        SELECT feature AS name, version, code_fingerprint AS fingerprint, params, model_fingerprint,
               payload_kind, count(*) AS value_count, count(DISTINCT asset_id) AS asset_count,
               min(created_at) AS first_computed, max(created_at) AS last_computed
          FROM feature_values
         GROUP BY feature, version, code_fingerprint, params, model_fingerprint, payload_kind
    )
    SELECT c.name, c.version, c.fingerprint, c.params, c.model_fingerprint, c.payload_kind,
           coalesce(d.output_type, '') AS output_type, coalesce(d.module, '') AS module,
           coalesce(d.resources, '') AS resources,
           c.value_count, c.asset_count, c.first_computed, c.last_computed
      FROM computed c
      LEFT JOIN LATERAL (
            SELECT fv.output_type, fv.module, fv.resources
              FROM feature_versions fv
             WHERE fv.name = c.name AND fv.version = c.version AND fv.fingerprint = c.fingerprint
             ORDER BY fv.module = '', fv.first_seen DESC
             LIMIT 1
      ) d ON true
"""


def upgrade() -> None:
    for column, comment in (
        ("module", "the Python module that defined the feature; '' before 0007"),
        ("output_type", "qualified name of the value's Python type; '' before 0007"),
        ("payload_kind", "json, array or file: how the value is stored; '' before 0007"),
    ):
        op.add_column(
            "feature_versions", sa.Column(column, sa.Text, nullable=False, server_default="", comment=comment)
        )
    op.drop_constraint("feature_versions_pkey", "feature_versions", type_="primary")
    op.create_primary_key("feature_versions_pkey", "feature_versions", ["name", "version", "fingerprint", "module"])
    op.create_index("ix_feature_values_feature", "feature_values", ["feature", "version"])
    op.execute(_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW feature_catalogue")
    op.drop_index("ix_feature_values_feature", "feature_values")
    # The oldest row per fingerprint is the one the old layout kept.
    op.execute(
        "DELETE FROM feature_versions a USING feature_versions b WHERE a.name = b.name AND a.version = b.version "
        "AND a.fingerprint = b.fingerprint AND (a.first_seen, a.module) > (b.first_seen, b.module)"
    )
    op.drop_constraint("feature_versions_pkey", "feature_versions", type_="primary")
    op.create_primary_key("feature_versions_pkey", "feature_versions", ["name", "version", "fingerprint"])
    for column in ("payload_kind", "output_type", "module"):
        op.drop_column("feature_versions", column)
