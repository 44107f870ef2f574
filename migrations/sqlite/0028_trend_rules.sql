-- Rules over a person's own history (core/src/rules/trend.rs): the running state the answer
-- writer keeps per person (baseline, latest readings, daily maxima, symptoms seen) so no
-- answer re-reads history. Rebuilt from the observations when missing or out of order. seq
-- counts writes: a write expecting seq n-1 that finds another value lost a race with a
-- concurrent writer and fails its batch (retried answer by answer, reading the new state).
CREATE TABLE rule_state (
    person_id INTEGER PRIMARY KEY REFERENCES persons(id) ON DELETE CASCADE,
    state     TEXT NOT NULL,
    seq       BIGINT NOT NULL
);

-- Versions of a health centre's rule overrides, activated from the rule lab: which rules were
-- in force on any date. health_centres.rules holds the latest.
CREATE TABLE rule_versions (
    id               INTEGER PRIMARY KEY,
    health_centre_id INTEGER NOT NULL REFERENCES health_centres(id),
    version          INTEGER NOT NULL,
    rules            TEXT NOT NULL,
    note             TEXT NOT NULL,
    activated_by     INTEGER NOT NULL REFERENCES staff(id),
    activated_at     TEXT NOT NULL,
    UNIQUE (health_centre_id, version)
);
