"""The HTTP API: the reads of the Python API over HTTP, and the endpoints that take S3 event notifications.

``create_app(mesh_factory, settings)`` builds the FastAPI app (the schema at ``/openapi.json``, Swagger UI at
``/docs`` and ReDoc at ``/redoc``, both served from files installed with the package, so they work offline);
``serve(host, port, settings)`` runs it with uvicorn. The app opens its mesh on first use and closes it at
shutdown. Writes need the bearer token ``MEDIAMESH_API_TOKEN``; reads need it too unless
``MEDIAMESH_API_OPEN_READS`` is true. Status codes (``errors.py`` maps each error family to one):

    400 malformed JSON or header          409 an asset prefix matches several assets
    401 no bearer token                   413 body over MEDIAMESH_API_MAX_BODY_BYTES
    403 wrong bearer token                415 a body that is not JSON
    404 unknown asset, feature, version   422 a bad parameter, a body of the wrong shape, or a slice or format
                                              the value does not have
    500 a stored value is corrupt (its bytes fail their checksum; run ``mediamesh verify``), or a bug
    503 no token configured, or the database or object store is unreachable (retry later; Retry-After says when)

Modules: ``app`` (settings, the app, docs), ``auth`` (bearer tokens), ``errors`` (the status table),
``models`` (request and response bodies), and ``routes/`` (health, assets, values, events).
"""

from mediamesh.orchestrator.interfaces.api.app import ApiSettings, create_app, serve

__all__ = ["ApiSettings", "create_app", "serve"]
