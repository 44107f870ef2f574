-- Merging duplicate records: the kept record takes the chosen field values and the other
-- record's tests, severities, residences, behaviour history, reports, observations,
-- contacts and assignments; the other record ends with merged_into set. Each merge keeps
-- both records as they were and the ids of every row it moved, so an ID officer can undo it.
ALTER TABLE persons ADD COLUMN merged_into INTEGER REFERENCES persons(id);

CREATE TABLE person_merges (
    id            INTEGER PRIMARY KEY,
    kept_id       INTEGER NOT NULL REFERENCES persons(id),
    merged_id     INTEGER NOT NULL REFERENCES persons(id),
    kept_before   TEXT NOT NULL,
    merged_before TEXT NOT NULL,
    choices       TEXT NOT NULL,
    moved         TEXT NOT NULL,
    merged_by     INTEGER REFERENCES staff(id),
    merged_at     TEXT NOT NULL,
    undone_by     INTEGER REFERENCES staff(id),
    undone_at     TEXT
);
CREATE INDEX person_merges_kept ON person_merges(kept_id);
