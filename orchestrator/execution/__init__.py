"""The planning and execution room: from wanted features to stored values.

``planner`` works out what a trigger needs (keys, stored or missing, in dependency order); ``engine``
computes a plan's missing values with Prefect tasks; ``dispatch`` chooses where a plan runs (this process
or the work pools, from ``MEDIAMESH_EXECUTION``); ``workers`` are the pools' flow and workers; ``ingest``
registers a file or a landing object with its sidecars; ``plugins`` composes the registry; ``training``
trains and catalogues MediaFM checkpoints.
"""
