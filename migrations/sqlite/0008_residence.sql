-- Where a person stays [居所], dated: home, hospital, lodging facility [宿泊療養施設],
-- welfare facility, other. The latest entry is copied to persons.residence_kind for lists
-- and the review queue's filter; a hospital stay also sets persons.status = 'admitted'.
CREATE TABLE person_residences (
    id         INTEGER PRIMARY KEY,
    person_id  INTEGER NOT NULL REFERENCES persons(id),
    kind       TEXT NOT NULL CHECK (kind IN ('home', 'hospital', 'lodging', 'welfare', 'other')),
    place      TEXT,
    from_date  TEXT NOT NULL,
    entered_by INTEGER REFERENCES staff(id),
    created_at TEXT NOT NULL
);
CREATE INDEX person_residences_person ON person_residences(person_id, from_date);
ALTER TABLE persons ADD COLUMN residence_kind TEXT NOT NULL DEFAULT 'home';
