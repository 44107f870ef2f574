//! The link form's answers between its screens: each screen is posted and redirected to
//! (Post/Redirect/Get), so Back and reload behave; what was typed on the earlier screens
//! waits here, tied to the check-in of the signed link, until the answer's own batch deletes
//! it (`observations::answer_checkins`). Drafts of check-ins no longer open are purged
//! ([`purge`]). Reads and writes are
//! audited as the person, in the same transaction.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::{
    Db, Result,
    db::{BeginWrite, now},
    store::{Actor, audit},
    with_db,
};

/// Question id (or `none:<group>`) → the value as typed.
pub type Answers = BTreeMap<String, String>;

/// The most a draft may hold: a form's answers are a few hundred bytes.
const MAX_BYTES: usize = 16 * 1024;

/// The person opens a screen of their form: audited, with what they typed so far.
pub async fn open(db: &Db, checkin_id: i64, person_id: i64) -> Result<Answers> {
    let json: Option<String> = with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let json: Option<String> = sqlx::query_scalar("SELECT answers FROM answer_drafts WHERE checkin_id = $1")
            .bind(checkin_id).fetch_optional(&mut *tx).await?;
        audit(&mut *tx, Actor::Person(person_id), "checkin.open", "person", Some(person_id), None).await?;
        tx.commit().await?;
        json
    });
    Ok(json
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default())
}

/// Keeps what the person typed so far (replacing the earlier draft).
pub async fn save(db: &Db, checkin_id: i64, person_id: i64, answers: &Answers) -> Result<()> {
    let json = serde_json::to_string(answers).map_err(|e| crate::Error::Internal(e.to_string()))?;
    if json.len() > MAX_BYTES {
        return Err(crate::Error::invalid("answers", "err-too-long"));
    }
    let t = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        sqlx::query(
            "INSERT INTO answer_drafts (checkin_id, answers, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (checkin_id) DO UPDATE SET answers = excluded.answers, updated_at = excluded.updated_at")
            .bind(checkin_id).bind(&json).bind(t).execute(&mut *tx).await?;
        audit(&mut *tx, Actor::Person(person_id), "checkin.draft", "person", Some(person_id), None).await?;
        tx.commit().await?;
    });
    Ok(())
}

/// Deletes drafts not touched since `before` and those of check-ins no longer open.
pub async fn purge(db: &Db, before: DateTime<Utc>) -> Result<u64> {
    crate::write_once!(db, e => Ok::<_, crate::Error>(sqlx::query(
        concat!("DELETE FROM answer_drafts WHERE updated_at < $1 OR NOT EXISTS (
           SELECT 1 FROM checkins c WHERE c.id = answer_drafts.checkin_id
             AND c.status IN ", crate::open_checkin_statuses!(), ")"))
        .bind(before).execute(e).await?.rows_affected()))
}
