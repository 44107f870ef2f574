-- The case registry's basic information [個人基本情報] (every field optional except those of
-- the person row before it: input burden was the real system's biggest complaint).
ALTER TABLE persons ADD COLUMN name_kana TEXT;
-- Normalised kana (full-width katakana, no spaces) for duplicate detection.
ALTER TABLE persons ADD COLUMN name_key TEXT;
ALTER TABLE persons ADD COLUMN sex TEXT CHECK (sex IN ('male', 'female', 'other', 'unknown'));
ALTER TABLE persons ADD COLUMN nationality TEXT;
ALTER TABLE persons ADD COLUMN prefecture_code TEXT;
ALTER TABLE persons ADD COLUMN municipality TEXT;
ALTER TABLE persons ADD COLUMN address TEXT;
ALTER TABLE persons ADD COLUMN occupation TEXT;
ALTER TABLE persons ADD COLUMN workplace TEXT;
ALTER TABLE persons ADD COLUMN emergency_contact TEXT;
ALTER TABLE persons ADD COLUMN reception_date TEXT;
-- A close contact: the case that made them one.
ALTER TABLE persons ADD COLUMN source_person_id INTEGER REFERENCES persons(id);
-- Day 0 of the observation period: onset (symptomatic), specimen (asymptomatic) or last
-- exposure (contact); the end is computed from flows/periods.toml unless overridden.
ALTER TABLE persons ADD COLUMN onset_date TEXT;
ALTER TABLE persons ADD COLUMN specimen_date TEXT;
ALTER TABLE persons ADD COLUMN last_exposure_date TEXT;
ALTER TABLE persons ADD COLUMN period_rule TEXT;
ALTER TABLE persons ADD COLUMN period_override_reason TEXT;
CREATE INDEX persons_source ON persons(source_person_id);
CREATE INDEX persons_dup ON persons(name_key, date_of_birth);

-- Test records [検査], any number per person.
CREATE TABLE person_tests (
    id              INTEGER PRIMARY KEY,
    person_id       INTEGER NOT NULL REFERENCES persons(id),
    specimen_date   TEXT NOT NULL,
    testing_site    TEXT,
    result_date     TEXT,
    laboratory      TEXT,
    specimen_type   TEXT,
    method          TEXT CHECK (method IN ('pcr', 'antigen_quantitative', 'antigen_qualitative', 'lamp', 'other')),
    result          TEXT NOT NULL CHECK (result IN ('positive', 'negative', 'pending', 'inconclusive')),
    other_pathogens TEXT,
    entered_by      INTEGER REFERENCES staff(id),
    created_at      TEXT NOT NULL
);
CREATE INDEX person_tests_person ON person_tests(person_id, specimen_date);

-- Severity at each point in time [重症度]: four levels of the clinical guide, mapped to the
-- notice's three (moderate I and II → moderate) in reports.
CREATE TABLE person_severities (
    id         INTEGER PRIMARY KEY,
    person_id  INTEGER NOT NULL REFERENCES persons(id),
    level      TEXT NOT NULL CHECK (level IN ('mild', 'moderate1', 'moderate2', 'severe')),
    from_date  TEXT NOT NULL,
    entered_by INTEGER REFERENCES staff(id),
    created_at TEXT NOT NULL
);
CREATE INDEX person_severities_person ON person_severities(person_id, from_date);
