//! Staff sessions, login challenges (the second factor) and lockout after failed logins.
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::{Db, Result, db::now, with_db};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub staff_id: i64,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The staff member's account, read with the session (one query per request).
    pub health_centre_id: i64,
    pub display_name: String,
    pub role: String,
    pub organisation_id: Option<i64>,
}

/// What the database keeps of a session token (its SHA-256, hex).
pub fn hash_token(token: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let d = Sha256::digest(token.as_bytes());
    let mut s = String::with_capacity(2 * d.len());
    for b in d {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// Stores a new session for `token` (the cookie value, kept only as a hash).
pub async fn create_session(
    db: &Db,
    token: &str,
    staff_id: i64,
    csrf: &str,
    ttl: Duration,
) -> Result<()> {
    let t = now();
    crate::write_once!(db, e => Ok::<_, crate::Error>( sqlx::query(
        "INSERT INTO sessions (token_hash, staff_id, csrf_token, created_at, last_seen_at, expires_at)
         VALUES ($1, $2, $3, $4, $4, $5)")
        .bind(hash_token(token)).bind(staff_id).bind(csrf).bind(t).bind(t + ttl)
        .execute(e).await?.rows_affected()))?;
    Ok(())
}

/// Looks up a live session, ending it if it has passed its absolute expiry or been idle
/// longer than `idle`; refreshes `last_seen_at` at most once a minute.
pub async fn session(db: &Db, token: &str, idle: Duration) -> Result<Option<Session>> {
    let h = hash_token(token);
    let s: Option<Session> = with_db!(db, p => sqlx::query_as(
        "SELECT s.staff_id, s.csrf_token, s.expires_at, s.last_seen_at, st.health_centre_id, st.display_name, st.role, st.organisation_id
         FROM sessions s JOIN staff st ON st.id = s.staff_id WHERE s.token_hash = $1")
        .bind(&h).fetch_optional(p).await?);
    let t = now();
    match s {
        Some(s) if s.expires_at > t && s.last_seen_at + idle > t => {
            if t - s.last_seen_at > Duration::minutes(1) {
                crate::write_once!(db, e => Ok::<_, crate::Error>( sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
                    .bind(t).bind(&h).execute(e).await?.rows_affected()))?;
            }
            Ok(Some(s))
        }
        Some(_) => {
            delete_session(db, token).await?;
            Ok(None)
        }
        None => Ok(None),
    }
}

pub async fn delete_session(db: &Db, token: &str) -> Result<()> {
    crate::write_once!(db, e => Ok::<_, crate::Error>( sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(hash_token(token)).execute(e).await?.rows_affected()))?;
    Ok(())
}

/// What the login needs to know about an account beyond its password.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoginState {
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub suspended: bool,
    pub totp_secret: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

pub async fn login_state(db: &Db, staff_id: i64) -> Result<LoginState> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT failed_logins, locked_until, suspended, totp_secret, phone, email FROM staff WHERE id = $1")
        .bind(staff_id).fetch_one(p).await?))
}

/// Records a wrong password: after 5 in a row the account locks, for 5 minutes doubling with
/// every further failure (at most an hour). Returns the lock's end, if locked.
pub async fn login_failed(db: &Db, staff_id: i64) -> Result<Option<DateTime<Utc>>> {
    let n: i32 = crate::write_once!(db, e => Ok::<_, crate::Error>(sqlx::query_scalar(
        "UPDATE staff SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins")
        .bind(staff_id).fetch_one(e).await?))?;
    if n < 5 {
        return Ok(None);
    }
    let minutes = (5i64 << (n - 5).min(4)).min(60);
    let until = now() + Duration::minutes(minutes);
    crate::write_once!(db, e => Ok::<_, crate::Error>(sqlx::query("UPDATE staff SET locked_until = $1 WHERE id = $2")
        .bind(until).bind(staff_id).execute(e).await?.rows_affected()))?;
    Ok(Some(until))
}

pub async fn login_succeeded(db: &Db, staff_id: i64) -> Result<()> {
    crate::write_once!(db, e => Ok::<_, crate::Error>(sqlx::query("UPDATE staff SET failed_logins = 0, locked_until = NULL WHERE id = $1")
        .bind(staff_id).execute(e).await?.rows_affected()))?;
    Ok(())
}

/// A pending second-factor challenge.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Challenge {
    pub staff_id: i64,
    pub method: String,
    pub code_hash: Option<String>,
    pub tries: i32,
    pub expires_at: DateTime<Utc>,
}

pub async fn create_challenge(
    db: &Db,
    token: &str,
    staff_id: i64,
    method: &str,
    code: Option<&str>,
    ttl: Duration,
) -> Result<()> {
    let t = now();
    crate::write_once!(db, e => Ok::<_, crate::Error>(sqlx::query(
        "INSERT INTO mfa_challenges (token_hash, staff_id, method, code_hash, tries, expires_at, created_at)
         VALUES ($1, $2, $3, $4, 0, $5, $6)")
        .bind(hash_token(token)).bind(staff_id).bind(method).bind(code.map(|c| hash_token(&format!("{token}:{c}"))))
        .bind(t + ttl).bind(t).execute(e).await?.rows_affected()))?;
    Ok(())
}

/// Looks up a challenge and counts this attempt.
pub async fn challenge_attempt(db: &Db, token: &str) -> Result<Option<Challenge>> {
    crate::write_once!(db, e => Ok::<_, crate::Error>(sqlx::query_as(
        "UPDATE mfa_challenges SET tries = tries + 1 WHERE token_hash = $1
         RETURNING staff_id, method, code_hash, tries, expires_at")
        .bind(hash_token(token)).fetch_optional(e).await?))
}

/// Whether `code` is the one sent for challenge `token` (constant-time on the hashes).
pub fn code_matches(c: &Challenge, token: &str, code: &str) -> bool {
    let want = c.code_hash.as_deref().unwrap_or("");
    let got = hash_token(&format!("{token}:{}", code.trim()));
    want.len() == got.len()
        && want
            .bytes()
            .zip(got.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0
}

pub async fn delete_challenge(db: &Db, token: &str) -> Result<()> {
    crate::write_once!(db, e => Ok::<_, crate::Error>(sqlx::query("DELETE FROM mfa_challenges WHERE token_hash = $1")
        .bind(hash_token(token)).execute(e).await?.rows_affected()))?;
    Ok(())
}

/// Ends every session of a staff member ("log out everywhere", suspension).
pub async fn delete_sessions_of(db: &Db, staff_id: i64) -> Result<u64> {
    crate::write_once!(db, e => Ok::<_, crate::Error>(sqlx::query("DELETE FROM sessions WHERE staff_id = $1")
        .bind(staff_id).execute(e).await?.rows_affected()))
}

/// The account of a pending challenge without counting an attempt: (staff id, method).
pub async fn challenge_owner(db: &Db, token: &str) -> Result<Option<(i64, String)>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT staff_id, method FROM mfa_challenges WHERE token_hash = $1 AND expires_at > $2")
        .bind(hash_token(token)).bind(now()).fetch_optional(p).await?))
}

/// Replaces the code of a pending challenge (a new code read out by a call).
pub async fn replace_challenge_code(db: &Db, token: &str, code: &str) -> Result<()> {
    crate::write_once!(db, e => Ok::<_, crate::Error>(sqlx::query("UPDATE mfa_challenges SET code_hash = $1 WHERE token_hash = $2 AND method <> 'totp'")
        .bind(hash_token(&format!("{token}:{code}"))).bind(hash_token(token)).execute(e).await?.rows_affected()))?;
    Ok(())
}
