-- Login security: see migrations/sqlite/0004 for the why of each change.

ALTER TABLE staff ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE staff ADD COLUMN locked_until TIMESTAMPTZ;
ALTER TABLE staff ADD COLUMN suspended BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE staff ADD COLUMN totp_secret TEXT;

CREATE TABLE mfa_challenges (
    token_hash TEXT PRIMARY KEY,
    staff_id   BIGINT NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    method     TEXT NOT NULL CHECK (method IN ('sms', 'email', 'totp')),
    code_hash  TEXT,
    tries      INTEGER NOT NULL DEFAULT 0,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
