#!/bin/sh
# Creates the roles and databases of relance and Temporal. The postgres image
# runs the files of /docker-entrypoint-initdb.d once, when its data volume is
# empty; later password changes must be made with ALTER ROLE.
#
#   role temporal -> databases temporal, temporal_visibility (Temporal persistence
#                    and visibility; schemas applied by temporal-admin-tools)
#   role relance  -> database relance (schema applied by `relance db upgrade`)
#
# Passwords come from TEMPORAL_DB_PASSWORD and RELANCE_DB_PASSWORD (set in
# docker-compose.yml). The file may be sourced by the entrypoint: no `exit`,
# no `set -u`.
set -e

psql -v ON_ERROR_STOP=1 --no-psqlrc \
     --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
     --set=temporal_password="${TEMPORAL_DB_PASSWORD:-temporal}" \
     --set=relance_password="${RELANCE_DB_PASSWORD:-relance}" <<'SQL'
-- Temporal: its schema tool also runs CREATE DATABASE (ignored when the
-- database exists), which needs CREATEDB.
SELECT format('CREATE ROLE temporal LOGIN CREATEDB PASSWORD %L', :'temporal_password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'temporal')\gexec
SELECT 'CREATE DATABASE temporal OWNER temporal'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'temporal')\gexec
SELECT 'CREATE DATABASE temporal_visibility OWNER temporal'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'temporal_visibility')\gexec

-- relance: owner of its database, hence of the public schema (PostgreSQL 15+).
SELECT format('CREATE ROLE relance LOGIN PASSWORD %L', :'relance_password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'relance')\gexec
SELECT 'CREATE DATABASE relance OWNER relance'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'relance')\gexec
SQL
