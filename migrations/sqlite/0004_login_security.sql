-- Login security: lockout after repeated failures, suspension by an officer, a TOTP secret
-- for authenticator apps, and the pending second-factor challenges of logins in progress.

ALTER TABLE staff ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE staff ADD COLUMN locked_until TEXT;
ALTER TABLE staff ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;
ALTER TABLE staff ADD COLUMN totp_secret TEXT;          -- base64 of 20 random bytes

-- A login that passed the password and waits for its one-time code. Only hashes are kept.
CREATE TABLE mfa_challenges (
    token_hash TEXT PRIMARY KEY,
    staff_id   INTEGER NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    method     TEXT NOT NULL CHECK (method IN ('sms', 'email', 'totp')),
    code_hash  TEXT,            -- SMS / e-mail code; NULL for TOTP
    tries      INTEGER NOT NULL DEFAULT 0,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL
);
