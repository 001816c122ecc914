"""The local-services room: processes mediamesh starts on this machine for development and tests.

``prefect_server`` (the local Prefect API, stopped after it idles), ``seaweed`` (a SeaweedFS S3 server),
``devstack`` (``mediamesh dev-stack``: both plus workers and the API), ``lifecycle`` (a command's scratch
space, signals and children) and ``ports`` (free loopback ports). The embedded Postgres stays in
``store.database``: only the store talks to Postgres.
"""
