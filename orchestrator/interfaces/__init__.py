"""The interfaces room: how people and systems reach the mesh.

``cli`` (the ``mediamesh`` command), ``api`` (the HTTP API), ``events`` (S3 and filer notifications),
``watch`` (reconciling a bucket prefix or a folder) and ``reads`` (finding, slicing and rendering a value,
the same way for each of them). Each goes through ``orchestrator.execution`` to run work and through
``store`` to read; none talks to Postgres, object storage or Prefect itself.
"""
