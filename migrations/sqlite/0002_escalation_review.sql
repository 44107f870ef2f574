-- Escalation review: who is on duty and how to reach them, per-centre rule overrides,
-- staff-entered observations, the review trail of each escalation, and staff notifications
-- that leave the answer's transaction as rows (sent by the dispatcher).

ALTER TABLE staff ADD COLUMN phone TEXT;           -- E.164, for urgent notifications
ALTER TABLE staff ADD COLUMN email TEXT;
ALTER TABLE staff ADD COLUMN on_duty INTEGER NOT NULL DEFAULT 0;

-- JSON object overriding keys of flows/rules.toml for this health centre.
ALTER TABLE health_centres ADD COLUMN rules TEXT NOT NULL DEFAULT '{}';

ALTER TABLE observations ADD COLUMN note TEXT;         -- staff / doctor's note
ALTER TABLE observations ADD COLUMN entered_by INTEGER REFERENCES staff(id);

ALTER TABLE escalations ADD COLUMN detail TEXT NOT NULL DEFAULT '';   -- which rule, which value
ALTER TABLE escalations ADD COLUMN assigned_to INTEGER REFERENCES staff(id);
ALTER TABLE escalations ADD COLUMN resolved_at TEXT;
CREATE INDEX escalations_queue ON escalations(status, priority, opened_at);

-- Every step on an escalation: opened, retriggered, acknowledged, note, action, resolved.
CREATE TABLE escalation_events (
    id            INTEGER PRIMARY KEY,
    escalation_id INTEGER NOT NULL REFERENCES escalations(id),
    person_id     INTEGER NOT NULL REFERENCES persons(id),
    staff_id      INTEGER REFERENCES staff(id),
    kind          TEXT NOT NULL,
    action        TEXT,        -- phoned | arranged_admission | advised | other
    note          TEXT,
    at            TEXT NOT NULL
);
CREATE INDEX escalation_events_person ON escalation_events(person_id, id);

-- Staff notifications (urgent escalations), written in the answer's transaction.
CREATE TABLE notifications (
    id            INTEGER PRIMARY KEY,
    escalation_id INTEGER NOT NULL REFERENCES escalations(id),
    staff_id      INTEGER NOT NULL REFERENCES staff(id),
    channel       TEXT NOT NULL,           -- sms | email
    status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    created_at    TEXT NOT NULL,
    sent_at       TEXT
);
CREATE INDEX notifications_pending ON notifications(status, created_at);
