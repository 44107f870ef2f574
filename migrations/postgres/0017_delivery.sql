-- Delivery you can trust (issue 12).
-- A check-in whose primary channel failed (busy, no answer, undeliverable, invalid) moves to
-- the person's fallback channel inside its answer window; its attempts count again from 0
-- there (attempt keys carry the channel, so they never collide).
ALTER TABLE checkins ADD COLUMN on_fallback BOOLEAN NOT NULL DEFAULT FALSE;

-- Faults of the operator's own set-up (a wrong provider credential, a suspended account):
-- one open alarm per provider, shown on the console, /healthz and the log. While one is
-- open, check-ins are put back, not failed: no patient is escalated for our mistake.
CREATE TABLE operator_alarms (
    id           BIGSERIAL PRIMARY KEY,
    provider     TEXT NOT NULL,
    code         TEXT NOT NULL,
    detail       TEXT NOT NULL,
    raised_at    TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    occurrences  INTEGER NOT NULL DEFAULT 1,
    cleared_at   TIMESTAMPTZ
);
CREATE UNIQUE INDEX operator_alarms_open ON operator_alarms(provider) WHERE cleared_at IS NULL;

-- A medical institution's report never links itself to an existing person (issue 13): when
-- it looks like someone the centre already has (kana, date of birth and phone or name), the
-- report creates a new record and proposes the match here, for the centre to confirm (merge).
ALTER TABLE occurrence_reports ADD COLUMN proposed_person_id BIGINT REFERENCES persons(id);
