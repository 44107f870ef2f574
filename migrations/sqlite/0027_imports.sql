-- Migration and bulk import (core/src/import, core/src/store/imports.rs): one batch per run
-- of a file, one row per source record with its outcome. (source, case_number) is unique, so
-- a second run — or the rest of an interrupted one — creates nothing twice.
CREATE TABLE import_batches (
    id               INTEGER PRIMARY KEY,
    health_centre_id INTEGER NOT NULL REFERENCES health_centres(id),
    source           TEXT NOT NULL,
    file_name        TEXT NOT NULL,
    rows_total       INTEGER NOT NULL,
    created_by       INTEGER REFERENCES staff(id),
    created_at       TEXT NOT NULL,
    finished_at      TEXT,
    undone_by        INTEGER REFERENCES staff(id),
    undone_at        TEXT
);

CREATE TABLE import_rows (
    id          INTEGER PRIMARY KEY,
    batch_id    INTEGER NOT NULL REFERENCES import_batches(id),
    source      TEXT NOT NULL,
    case_number TEXT NOT NULL,
    line        INTEGER NOT NULL,
    -- created | linked | repositive | duplicate | rejected | undone
    outcome     TEXT NOT NULL,
    person_id   INTEGER,             -- no foreign key: an undone batch keeps the ids it had
    report_id   INTEGER,
    reason      TEXT
);
-- A record is imported once; a rejected row may come again corrected, an undone batch again.
CREATE UNIQUE INDEX import_rows_key ON import_rows(source, case_number) WHERE outcome NOT IN ('rejected', 'undone');
CREATE INDEX import_rows_batch ON import_rows(batch_id, line);

-- An undone import deletes the people it created: their figures go with them.
CREATE TRIGGER stats_persons_del AFTER DELETE ON persons BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', OLD.id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
