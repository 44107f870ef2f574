-- Nothing to store on SQLite: its answer batch runs in one transaction under the file's write
-- lock. The PostgreSQL migration of the same number adds the check its two-statement answer
-- path makes.
SELECT 1;
