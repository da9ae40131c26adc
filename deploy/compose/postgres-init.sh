#!/bin/sh
# Run by the postgres image once, when it initialises an empty data
# folder: a role for Temporal (which creates its own two databases) and
# the Iceberg catalog's database, owned by costlake's role and closed to
# every other role but the gateway's read-only one. The passwords come
# from the container's environment (deploy/.env), never from this file.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
	-v temporal_password="$TEMPORAL_DB_PASSWORD" \
	-v catalog_password="$CATALOG_DB_PASSWORD" \
	-v reader_password="$CATALOG_READER_PASSWORD" <<'SQL'
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
CREATE ROLE costlake LOGIN PASSWORD :'catalog_password';
CREATE ROLE costlake_reader LOGIN PASSWORD :'reader_password';
CREATE DATABASE costlake OWNER costlake;
REVOKE ALL ON DATABASE costlake FROM PUBLIC;
GRANT CONNECT ON DATABASE costlake TO costlake_reader;
\connect costlake
-- The worker creates the tables; the gateway may read each one.
ALTER DEFAULT PRIVILEGES FOR ROLE costlake IN SCHEMA public GRANT SELECT ON TABLES TO costlake_reader;
SQL
