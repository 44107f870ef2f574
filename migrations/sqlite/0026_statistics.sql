-- Statistics [統計] kept as they happen, the counts-only daily report of the 2022 reform
-- [日次報告], publication settings and analysts' grants. See core/src/stats.rs and
-- ARCHITECTURE.md ("Statistics").
--
-- How the figures stay current: triggers on every table a figure is derived from mark the
-- person (or daily-count row) dirty in the writing transaction; the statistics job re-derives
-- each dirty source from its raw rows, subtracts what it contributed before (kept in
-- stats_sources) and adds what it contributes now. `mimamori stats rebuild` recomputes
-- everything from the raw rows alone.

-- What one source (p = person, d = daily-count row) contributes, as derived last time.
CREATE TABLE stats_sources (
    kind  TEXT NOT NULL,
    id    INTEGER NOT NULL,
    facts TEXT NOT NULL,         -- JSON, see core::stats::Facts
    PRIMARY KEY (kind, id)
);

-- Sources to re-derive; `v` grows with every mark so a mark made while the job works on the
-- source is never lost (the job deletes only the version it saw).
CREATE TABLE stats_dirty (
    kind TEXT NOT NULL,
    id   INTEGER NOT NULL,
    v    INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (kind, id)
);

-- Daily figures: measure × day × health centre, one row per breakdown value (dim 'total'
-- with value '', 'age', 'sex', 'muni', 'sev', 'res', 'age_sex' = 'band|sex'). The pages and
-- publication documents read only this table.
CREATE TABLE stats_daily (
    measure          TEXT NOT NULL,
    day              TEXT NOT NULL,
    health_centre_id INTEGER NOT NULL,
    dim              TEXT NOT NULL,
    value            TEXT NOT NULL,
    n                INTEGER NOT NULL,
    PRIMARY KEY (measure, dim, day, health_centre_id, value)
);

-- When the job last caught up, and whether marks were left (the statistics page shows it;
-- counting the marks themselves would scan a table that churns).
CREATE TABLE stats_meta (
    one          INTEGER PRIMARY KEY CHECK (one = 1),
    refreshed_at TEXT,
    behind       INTEGER NOT NULL DEFAULT 1
);
INSERT INTO stats_meta (one, behind) VALUES (1, 1);

-- Check-ins due and answered per day and centre (re-counted for recent days by the job).
CREATE TABLE stats_answers (
    day              TEXT NOT NULL,
    health_centre_id INTEGER NOT NULL,
    due              INTEGER NOT NULL,
    answered         INTEGER NOT NULL,
    PRIMARY KEY (day, health_centre_id)
);
CREATE INDEX checkins_local_date ON checkins(local_date);

-- The counts-only daily report of a medical institution [日次報告]: positives of the day by
-- age band, for people not in the notifiable groups (no occurrence report, no record).
CREATE TABLE daily_counts (
    id               INTEGER PRIMARY KEY,
    organisation_id  INTEGER REFERENCES organisations(id),
    health_centre_id INTEGER NOT NULL REFERENCES health_centres(id),
    day              TEXT NOT NULL,
    age_band         TEXT NOT NULL,
    n                INTEGER NOT NULL CHECK (n >= 0),
    entered_by       INTEGER REFERENCES staff(id),
    updated_at       TEXT NOT NULL,
    UNIQUE (health_centre_id, organisation_id, day, age_band)
);

-- Why a report under the counts-only rules was still a full occurrence report.
ALTER TABLE occurrence_reports ADD COLUMN notifiable TEXT;

-- Publication: counts from 1 to suppress_max are shown as '*' (0 = no suppression); the
-- local government code [全国地方公共団体コード] of the body that runs the centre.
ALTER TABLE health_centres ADD COLUMN suppress_max INTEGER NOT NULL DEFAULT 4;
ALTER TABLE health_centres ADD COLUMN lg_code TEXT NOT NULL DEFAULT '';

-- Analysis centres see the figures of the health centres that granted them.
CREATE TABLE stats_grants (
    organisation_id  INTEGER NOT NULL REFERENCES organisations(id),
    health_centre_id INTEGER NOT NULL REFERENCES health_centres(id),
    granted_by       INTEGER REFERENCES staff(id),
    created_at       TEXT NOT NULL,
    PRIMARY KEY (organisation_id, health_centre_id)
);

-- Marks. Persons: every insert and update (persons rows change rarely and most columns
-- matter); the rest: the person of every inserted, changed or deleted row (both persons
-- when a merge moves a row).
CREATE TRIGGER stats_persons_ins AFTER INSERT ON persons BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', NEW.id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_persons_upd AFTER UPDATE ON persons BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', NEW.id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_daily_counts_ins AFTER INSERT ON daily_counts BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('d', NEW.id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_daily_counts_upd AFTER UPDATE ON daily_counts BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('d', NEW.id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_daily_counts_del AFTER DELETE ON daily_counts BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('d', OLD.id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_person_tests_ins AFTER INSERT ON person_tests BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', NEW.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_person_tests_upd AFTER UPDATE ON person_tests BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', OLD.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
  INSERT INTO stats_dirty (kind, id) VALUES ('p', NEW.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_person_tests_del AFTER DELETE ON person_tests BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', OLD.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_person_severities_ins AFTER INSERT ON person_severities BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', NEW.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_person_severities_upd AFTER UPDATE ON person_severities BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', OLD.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
  INSERT INTO stats_dirty (kind, id) VALUES ('p', NEW.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_person_severities_del AFTER DELETE ON person_severities BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', OLD.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_person_residences_ins AFTER INSERT ON person_residences BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', NEW.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_person_residences_upd AFTER UPDATE ON person_residences BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', OLD.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
  INSERT INTO stats_dirty (kind, id) VALUES ('p', NEW.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_person_residences_del AFTER DELETE ON person_residences BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', OLD.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_occurrence_reports_ins AFTER INSERT ON occurrence_reports BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', NEW.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_occurrence_reports_upd AFTER UPDATE ON occurrence_reports BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', OLD.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
  INSERT INTO stats_dirty (kind, id) VALUES ('p', NEW.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_occurrence_reports_del AFTER DELETE ON occurrence_reports BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', OLD.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_person_sections_ins AFTER INSERT ON person_sections BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', NEW.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_person_sections_upd AFTER UPDATE ON person_sections BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', OLD.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
  INSERT INTO stats_dirty (kind, id) VALUES ('p', NEW.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_person_sections_del AFTER DELETE ON person_sections BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', OLD.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_escalations_ins AFTER INSERT ON escalations BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', NEW.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_escalations_upd AFTER UPDATE ON escalations BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', OLD.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
  INSERT INTO stats_dirty (kind, id) VALUES ('p', NEW.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;
CREATE TRIGGER stats_escalations_del AFTER DELETE ON escalations BEGIN
  INSERT INTO stats_dirty (kind, id) VALUES ('p', OLD.person_id) ON CONFLICT (kind, id) DO UPDATE SET v = v + 1;
END;

-- Existing people: derived by the first job run.
INSERT INTO stats_dirty (kind, id) SELECT 'p', id FROM persons;
