//! SQL that differs between SQLite and PostgreSQL.
use crate::Db;

/// Claims up to `$3` due check-ins for one dispatcher batch (`$4` = claim token): planned
/// ones whose time has come, and ones whose earlier claim (`claimed_at < $2`) was abandoned
/// by a crashed worker. PostgreSQL skips rows other workers hold; SQLite has a single writer.
pub fn claim_due(db: &Db) -> &'static str {
    match db {
        Db::Postgres(_) => {
            "UPDATE checkins SET status = 'sending', claimed_at = $1, claim_token = $4
             WHERE id IN (
               SELECT id FROM checkins
               WHERE (status = 'planned' AND due_at <= $1) OR (status = 'sending' AND claimed_at < $2)
               ORDER BY due_at LIMIT $3
               FOR UPDATE SKIP LOCKED)"
        }
        Db::Sqlite(_) => {
            "UPDATE checkins SET status = 'sending', claimed_at = $1, claim_token = $4
             WHERE id IN (
               SELECT id FROM checkins
               WHERE (status = 'planned' AND due_at <= $1) OR (status = 'sending' AND claimed_at < $2)
               ORDER BY due_at LIMIT $3)"
        }
    }
}
