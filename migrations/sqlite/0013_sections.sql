-- The registry's smaller record groups (welfare, household, memo, interview, underlying
-- conditions, admission, care contacts, release date), one typed JSON document per person
-- and section; the shape and checks live in core/src/store/sections.rs.
CREATE TABLE person_sections (
    person_id  INTEGER NOT NULL REFERENCES persons(id),
    section    TEXT NOT NULL,
    data       TEXT NOT NULL,
    updated_by INTEGER REFERENCES staff(id),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (person_id, section)
);
