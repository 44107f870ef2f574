-- The change feed is PostgreSQL's (LISTEN/NOTIFY, see migrations/postgres/0016): SQLite has
-- no way to tell other processes, so on SQLite every person page and session is read from
-- the database. This file keeps the two migration lists in step.
SELECT 1;
