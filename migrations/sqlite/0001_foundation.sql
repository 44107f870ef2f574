-- Foundation schema (SQLite). Timestamps are TEXT in RFC 3339 UTC, always bound by the
-- application (never DEFAULT CURRENT_TIMESTAMP) so they compare correctly as text.
-- Dates are TEXT 'YYYY-MM-DD'. Booleans are INTEGER 0/1.

-- A health centre [保健所]: the unit that owns people under observation.
CREATE TABLE health_centres (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    phone       TEXT NOT NULL,           -- shown to patients who report urgent signs
    time_zone   TEXT NOT NULL DEFAULT 'Asia/Tokyo',
    created_at  TEXT NOT NULL
);

-- Console users. Roles and MFA are widened by the access issue.
CREATE TABLE staff (
    id               INTEGER PRIMARY KEY,
    health_centre_id INTEGER NOT NULL REFERENCES health_centres(id),
    username         TEXT NOT NULL UNIQUE,
    password_hash    TEXT NOT NULL,       -- argon2id PHC string
    display_name     TEXT NOT NULL,
    role             TEXT NOT NULL DEFAULT 'health_centre_staff',
    created_at       TEXT NOT NULL
);

-- Console sessions; only a SHA-256 of the cookie value is stored.
CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    staff_id     INTEGER NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX sessions_staff ON sessions(staff_id);

-- A person under observation (patient or close contact).
CREATE TABLE persons (
    id                INTEGER PRIMARY KEY,
    health_centre_id  INTEGER NOT NULL REFERENCES health_centres(id),
    name              TEXT NOT NULL,
    phone             TEXT,               -- E.164
    email             TEXT,
    channel           TEXT NOT NULL CHECK (channel IN ('sms', 'email', 'voice')),
    language          TEXT NOT NULL DEFAULT 'ja',
    monitoring_type   TEXT NOT NULL DEFAULT 'patient' CHECK (monitoring_type IN ('patient', 'contact')),
    observation_start TEXT NOT NULL,
    observation_end   TEXT NOT NULL,
    slot_minutes      INTEGER NOT NULL DEFAULT 540 CHECK (slot_minutes BETWEEN 0 AND 1439),
    status            TEXT NOT NULL DEFAULT 'observing'
                      CHECK (status IN ('observing', 'opted_out', 'admitted', 'ended')),
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    CHECK (observation_end >= observation_start)
);
CREATE INDEX persons_centre_status ON persons(health_centre_id, status, observation_end);

-- One scheduled check-in per person x local date x slot. Every row ends in exactly one
-- final status: answered, missed, failed, opted_out or cancelled.
CREATE TABLE checkins (
    id           INTEGER PRIMARY KEY,
    person_id    INTEGER NOT NULL REFERENCES persons(id),
    local_date   TEXT NOT NULL,
    slot         INTEGER NOT NULL DEFAULT 0,
    due_at       TEXT NOT NULL,
    deadline_at  TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'planned'
                 CHECK (status IN ('planned', 'sending', 'sent', 'answered', 'missed', 'failed', 'opted_out', 'cancelled')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    claimed_at   TEXT,
    claim_token  TEXT,               -- which dispatcher batch holds the row while sending
    sent_at      TEXT,
    closed_at    TEXT,
    UNIQUE (person_id, local_date, slot)
);
CREATE INDEX checkins_due ON checkins(status, due_at);
CREATE INDEX checkins_deadline ON checkins(status, deadline_at);

-- Every attempt to reach a person, with the provider's id. The idempotency key is what the
-- provider sees, so a retried job never sends twice.
CREATE TABLE contact_attempts (
    id              INTEGER PRIMARY KEY,
    checkin_id      INTEGER NOT NULL REFERENCES checkins(id),
    channel         TEXT NOT NULL,
    provider        TEXT NOT NULL,
    provider_id     TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL,      -- queued | sent | delivered | failed
    error           TEXT,               -- provider error code/text, never message content
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX contact_attempts_checkin ON contact_attempts(checkin_id);

-- The dev outbox provider: messages that would have been sent, shown on the Outbox page.
CREATE TABLE outbox_messages (
    id              INTEGER PRIMARY KEY,
    channel         TEXT NOT NULL,
    to_addr         TEXT NOT NULL,
    subject         TEXT,
    body            TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at      TEXT NOT NULL
);

-- Health observations, from any source.
CREATE TABLE observations (
    id            INTEGER PRIMARY KEY,
    person_id     INTEGER NOT NULL REFERENCES persons(id),
    checkin_id    INTEGER UNIQUE REFERENCES checkins(id),  -- one answer per check-in
    source        TEXT NOT NULL,       -- web | voice | sms | staff | demo
    reporter      TEXT NOT NULL DEFAULT 'self',
    observed_at   TEXT NOT NULL,
    temperature_c REAL,
    spo2          INTEGER,
    symptoms      TEXT NOT NULL DEFAULT '{}',  -- JSON object question id -> bool
    urgent        INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);
CREATE INDEX observations_person ON observations(person_id, observed_at);

-- Append-only audit log of reads and writes of personal data (ids only, no content).
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor_kind  TEXT NOT NULL,   -- staff | person | system
    actor_id    INTEGER,
    action      TEXT NOT NULL,   -- e.g. person.read, person.create, observation.create
    target_kind TEXT NOT NULL,
    target_id   INTEGER,
    ip          TEXT
);
CREATE INDEX audit_log_target ON audit_log(target_kind, target_id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- Runs of scheduled jobs, one row per job and scheduled instant, so a cron tick seen by
-- several worker processes runs once cluster-wide.
CREATE TABLE job_runs (
    job           TEXT NOT NULL,
    scheduled_for TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    detail        TEXT,
    PRIMARY KEY (job, scheduled_for)
);
