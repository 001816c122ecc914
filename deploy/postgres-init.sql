-- Run once, when the Postgres volume is first initialised: the Prefect server keeps its state in its own
-- database beside mediamesh's (it needs pg_trgm, which this image ships and which its migrations create).
CREATE DATABASE prefect OWNER mediamesh;
