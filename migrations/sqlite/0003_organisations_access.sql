-- Organisations and row access. A user belongs to one organisation; what they may see is
-- decided by their role (core/src/access.rs) and, for outside bodies, by assignments.

-- Prefecture of a health centre (for prefecture HQ staff, who see every centre of theirs).
ALTER TABLE health_centres ADD COLUMN prefecture TEXT NOT NULL DEFAULT '';

-- Bodies that use the system besides health centres: medical institutions, follow-up
-- contractors, lodging facilities, prefecture HQs, analysis centres. `health_centre_id` is
-- the centre that registered (and answers for) the body.
CREATE TABLE organisations (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('prefecture', 'medical_institution', 'contractor', 'lodging_facility', 'analysis_centre')),
    name             TEXT NOT NULL,
    prefecture       TEXT NOT NULL DEFAULT '',
    health_centre_id INTEGER REFERENCES health_centres(id),
    created_at       TEXT NOT NULL
);

ALTER TABLE staff ADD COLUMN organisation_id INTEGER REFERENCES organisations(id);

-- Which outside body follows which person (contractor / lodging facility: follow-up;
-- medical institution: its own tested or admitted patients).
CREATE TABLE person_assignments (
    person_id       INTEGER NOT NULL REFERENCES persons(id),
    organisation_id INTEGER NOT NULL REFERENCES organisations(id),
    created_at      TEXT NOT NULL,
    PRIMARY KEY (person_id, organisation_id)
);
CREATE INDEX person_assignments_org ON person_assignments(organisation_id);
