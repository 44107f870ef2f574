//! SQL that differs between SQLite and PostgreSQL.
use crate::Db;

/// Row lock clause for claiming: PostgreSQL skips rows other workers hold; SQLite has a
/// single writer, so the UPDATE is already exclusive.
fn skip_locked(db: &Db) -> &'static str {
    match db {
        Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        Db::Sqlite(_) => "",
    }
}

/// True when a check-in (`c`) of a person (`p`) goes out as a call: its lane (`$5`/`$7` in
/// the claims; NULL = every lane). The voice and text lanes are claimed apart so that a day
/// of SMS does not keep the call numbers idle, nor the other way round.
const LANE_VOICE: &str = "CASE WHEN c.on_fallback AND p.fallback_channel IS NOT NULL \
     THEN p.fallback_channel ELSE p.channel END = 'voice'";

/// Claims up to `$3` due check-ins for one dispatcher batch (`$4` = claim token): planned
/// ones whose time has come, and ones whose earlier claim (`claimed_at < $2`) was abandoned
/// by a crashed worker — the nearest answer deadline first, so a short window is not stuck
/// behind a long one (see `mimamori_core::capacity`).
pub fn claim_due(db: &Db, lane: bool) -> String {
    // Without a lane (`$5` NULL) the claim needs no join: the sending path's hot statement.
    let (from, filter) = if lane {
        (
            "checkins c JOIN persons p ON p.id = c.person_id",
            format!("AND ({LANE_VOICE}) = $5"),
        )
    } else {
        ("checkins c", "AND $5 IS NULL".to_string())
    };
    format!(
        "UPDATE checkins SET status = 'sending', claimed_at = $1, claim_token = $4
         WHERE id IN (
           SELECT c.id FROM {from}
           WHERE ((c.status = 'planned' AND c.due_at <= $1) OR (c.status = 'sending' AND c.claimed_at < $2))
             {filter}
           ORDER BY c.deadline_at, c.due_at LIMIT $3{})",
        skip_locked(db).replace("UPDATE", "UPDATE OF c")
    )
}

/// Claims up to `$3` pending staff notifications for one sender until `$2` (`$1` = now):
/// ones never claimed and ones whose claim ran out (a worker died holding it). Two workers
/// never get the same one.
pub fn claim_notifications(db: &Db) -> String {
    format!(
        "UPDATE notifications SET claimed_until = $2
         WHERE id IN (
           SELECT id FROM notifications
           WHERE status = 'pending' AND (claimed_until IS NULL OR claimed_until < $1)
           ORDER BY id LIMIT $3{})
         RETURNING id",
        skip_locked(db)
    )
}

/// Claims up to `$3` sent-but-unanswered check-ins for a reminder: sent before `$2`, fewer
/// than `$5` reminders so far, answer window still open, of people with monitoring type
/// `$6` (each flow has its own policy). `$4` = claim token.
pub fn claim_reminders(db: &Db) -> String {
    format!(
        "UPDATE checkins SET status = 'sending', claimed_at = $1, claim_token = $4, reminders = reminders + 1
         WHERE id IN (
           SELECT c.id FROM checkins c JOIN persons p ON p.id = c.person_id
           WHERE c.status = 'sent' AND c.sent_at <= $2 AND c.reminders < $5 AND c.deadline_at > $1
             AND p.monitoring_type = $6 AND ($7 IS NULL OR ({LANE_VOICE}) = $7)
           ORDER BY c.sent_at LIMIT $3{})",
        skip_locked(db).replace("UPDATE", "UPDATE OF c")
    )
}

/// PostgreSQL: plans the local day containing `$1` of every health centre (each in its own
/// time zone) for every slot in one set-based statement; `$2` = answer window in seconds.
/// Idempotent through the unique key (person, local date, slot).
pub const PLAN_DAY_POSTGRES: &str = "
    INSERT INTO checkins (person_id, local_date, slot, due_at, deadline_at, status, attempts)
    SELECT p.id, d.local_date, s.slot, d.due, d.due + make_interval(secs => $2), 'planned', 0
    FROM person_slots s
    JOIN persons p ON p.id = s.person_id
    JOIN (SELECT id, time_zone, ($1::timestamptz AT TIME ZONE time_zone)::date AS local_date
          FROM health_centres) h ON h.id = p.health_centre_id
    CROSS JOIN LATERAL (
        SELECT h.local_date, (h.local_date + make_interval(mins => s.minutes)) AT TIME ZONE h.time_zone AS due
    ) d
    WHERE p.status = 'observing' AND p.observation_start <= d.local_date AND p.observation_end >= d.local_date
    ON CONFLICT (person_id, local_date, slot) DO NOTHING";
