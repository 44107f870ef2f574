-- Occurrence reports [発生届]: the legal notification a doctor files. Filing creates or links
-- the person at the responsible health centre; a new positive report for someone whose
-- earlier case has ended opens a new case linked to it (re-positive [再陽性]).
ALTER TABLE persons ADD COLUMN previous_case_id INTEGER REFERENCES persons(id);

CREATE TABLE occurrence_reports (
    id                       INTEGER PRIMARY KEY,
    person_id                INTEGER NOT NULL REFERENCES persons(id),
    health_centre_id         INTEGER NOT NULL REFERENCES health_centres(id),
    -- patient / asymptomatic carrier / suspected / deceased [患者・無症状病原体保有者・疑似症患者・死亡者]
    report_type              TEXT NOT NULL CHECK (report_type IN ('patient', 'asymptomatic', 'suspected', 'deceased')),
    diagnosis_date           TEXT NOT NULL,
    diagnosis_method         TEXT NOT NULL,
    doctor_name              TEXT NOT NULL,
    institution_name         TEXT NOT NULL,
    institution_phone        TEXT,
    onset_date               TEXT,
    specimen_date            TEXT,
    death_date               TEXT,
    estimated_infection_date TEXT,
    infection_place          TEXT,
    infection_route          TEXT,
    symptoms                 TEXT,
    severity                 TEXT,
    notes                    TEXT,
    -- How the person was found: created, linked to an existing record, or a re-positive case.
    linkage                  TEXT NOT NULL CHECK (linkage IN ('created', 'linked', 'repositive')),
    filed_by                 INTEGER REFERENCES staff(id),
    filed_by_organisation    INTEGER REFERENCES organisations(id),
    created_at               TEXT NOT NULL
);
CREATE INDEX occurrence_reports_person ON occurrence_reports(person_id);
CREATE INDEX occurrence_reports_centre ON occurrence_reports(health_centre_id, created_at);
