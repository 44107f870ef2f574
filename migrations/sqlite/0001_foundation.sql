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
    date_of_birth     TEXT,               -- identifies the caller on the inbound line
    fallback_channel  TEXT CHECK (fallback_channel IN ('sms', 'email', 'voice')),
    opted_out_at      TEXT,               -- SMS STOP; planning skips opted-out people
    status            TEXT NOT NULL DEFAULT 'observing'
                      CHECK (status IN ('observing', 'opted_out', 'admitted', 'ended')),
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    CHECK (observation_end >= observation_start)
);
CREATE INDEX persons_centre_status ON persons(health_centre_id, status, observation_end);
CREATE INDEX persons_phone ON persons(phone);

-- Daily check-in times of a person (slot 0 = morning, slot 1 = evening, …), in minutes after
-- local midnight of the health centre's time zone.
CREATE TABLE person_slots (
    person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    slot      INTEGER NOT NULL CHECK (slot BETWEEN 0 AND 5),
    minutes   INTEGER NOT NULL CHECK (minutes BETWEEN 0 AND 1439),
    PRIMARY KEY (person_id, slot)
);
CREATE INDEX person_slots_minutes ON person_slots(minutes);

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
    reminders    INTEGER NOT NULL DEFAULT 0,  -- reminders and fallback calls made so far
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
    kind            TEXT NOT NULL DEFAULT 'initial',  -- initial | reminder | call
    status          TEXT NOT NULL,      -- queued | sent | delivered | failed | answered | no-answer | busy
    error           TEXT,               -- provider error code/text, never message content
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX contact_attempts_checkin ON contact_attempts(checkin_id);
CREATE INDEX contact_attempts_provider_id ON contact_attempts(provider_id);

-- Provider webhooks already handled (CallSid + step, MessageSid + status), with the answer
-- given, so a duplicate delivery changes nothing and gets the same answer.
CREATE TABLE webhook_events (
    key        TEXT PRIMARY KEY,
    response   TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- State of an automated call walking a flow, so any web process can take the next step.
CREATE TABLE call_sessions (
    call_sid    TEXT PRIMARY KEY,
    checkin_id  INTEGER NOT NULL REFERENCES checkins(id),
    question    INTEGER NOT NULL DEFAULT 0,   -- index into the flow's questions
    tries       INTEGER NOT NULL DEFAULT 0,   -- invalid or empty inputs on this question
    answers     TEXT NOT NULL DEFAULT '{}',   -- question id -> raw value, JSON
    stage       TEXT NOT NULL DEFAULT 'questions', -- identify | questions | readback | done
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Escalations: a person who needs a human. One open row per person and reason.
CREATE TABLE escalations (
    id          INTEGER PRIMARY KEY,
    person_id   INTEGER NOT NULL REFERENCES persons(id),
    reason      TEXT NOT NULL,      -- urgent | callback | unreachable | non_reporting | …
    priority    TEXT NOT NULL,      -- urgent | high | normal
    status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    opened_at   TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX escalations_one_open ON escalations(person_id, reason) WHERE status <> 'resolved';

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
