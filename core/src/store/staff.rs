//! Health centres, organisations and staff accounts (sessions and login challenges are in
//! `sessions`).

use crate::{Db, Error, Result, db::now, with_db};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct HealthCentre {
    pub id: i64,
    pub name: String,
    pub phone: String,
    pub time_zone: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Staff {
    pub id: i64,
    pub health_centre_id: i64,
    pub username: String,
    pub password_hash: String,
    pub display_name: String,
    pub role: String,
    pub organisation_id: Option<i64>,
}

pub async fn create_health_centre(
    db: &Db,
    name: &str,
    phone: &str,
    time_zone: &str,
) -> Result<i64> {
    if time_zone.parse::<chrono_tz::Tz>().is_err() {
        return Err(Error::invalid(
            "time_zone",
            "err-use-an-iana-time-zone-such-as-asia-tokyo",
        ));
    }
    Ok(with_db!(db, p => sqlx::query_scalar(
        "INSERT INTO health_centres (name, phone, time_zone, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
        .bind(name).bind(phone).bind(time_zone).bind(now()).fetch_one(p).await?))
}

pub async fn health_centre(db: &Db, id: i64) -> Result<HealthCentre> {
    with_db!(db, p => sqlx::query_as("SELECT id, name, phone, time_zone FROM health_centres WHERE id = $1")
        .bind(id).fetch_optional(p).await?)
    .ok_or(Error::NotFound("health centre"))
}

pub async fn health_centres(db: &Db) -> Result<Vec<HealthCentre>> {
    Ok(
        with_db!(db, p => sqlx::query_as("SELECT id, name, phone, time_zone FROM health_centres ORDER BY id")
        .fetch_all(p).await?),
    )
}

/// Creates a staff account; `password_hash` is an argon2id PHC string made by the caller.
pub async fn create_staff(
    db: &Db,
    health_centre_id: i64,
    username: &str,
    password_hash: &str,
    display_name: &str,
) -> Result<i64> {
    let username = check_username(username)?;
    with_db!(db, p => sqlx::query_scalar(
        "INSERT INTO staff (health_centre_id, username, password_hash, display_name, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id")
        .bind(health_centre_id).bind(username).bind(password_hash).bind(display_name).bind(now())
        .fetch_one(p).await.map_err(Error::unique_as("username")))
}

/// A user ID as typed, trimmed, if it is well formed.
pub fn check_username(username: &str) -> Result<&str> {
    let username = username.trim();
    if username.len() < 3
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(Error::invalid(
            "username",
            "err-use-at-least-3-letters-digits-or",
        ));
    }
    Ok(username)
}

pub async fn staff_by_username(db: &Db, username: &str) -> Result<Option<Staff>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT id, health_centre_id, username, password_hash, display_name, role, organisation_id FROM staff WHERE username = $1")
        .bind(username).fetch_optional(p).await?))
}

pub async fn staff_by_id(db: &Db, id: i64) -> Result<Staff> {
    with_db!(db, p => sqlx::query_as(
        "SELECT id, health_centre_id, username, password_hash, display_name, role, organisation_id FROM staff WHERE id = $1")
        .bind(id).fetch_optional(p).await?)
    .ok_or(Error::NotFound("staff"))
}

pub async fn count_health_centres(db: &Db) -> Result<i64> {
    Ok(
        with_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM health_centres").fetch_one(p).await?),
    )
}

/// An outside body registered by a health centre (contractor, lodging facility, medical
/// institution, prefecture HQ, analysis centre).
pub async fn create_organisation(
    db: &Db,
    kind: &str,
    name: &str,
    health_centre_id: i64,
) -> Result<i64> {
    with_db!(db, p => sqlx::query_scalar(
    "INSERT INTO organisations (kind, name, health_centre_id, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
    .bind(kind).bind(name).bind(health_centre_id).bind(now()).fetch_one(p).await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_check_violation() => Error::invalid("kind", "err-choose-prefecture-medical-institution-contractor"),
        _ => Error::Db(e),
    }))
}

/// Gives a staff account a role (and the organisation it acts for).
pub async fn set_role(
    db: &Db,
    staff_id: i64,
    role: crate::access::Role,
    organisation_id: Option<i64>,
) -> Result<()> {
    with_db!(db, p => sqlx::query("UPDATE staff SET role = $1, organisation_id = $2 WHERE id = $3")
        .bind(role.as_str()).bind(organisation_id).bind(staff_id).execute(p).await?.rows_affected());
    Ok(())
}

/// The prefectures of health centres `a` and `b` (`None` when `a` does not exist).
pub async fn prefecture_of(db: &Db, a: i64, b: i64) -> Result<Option<(String, String)>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT x.prefecture, y.prefecture FROM health_centres x, health_centres y WHERE x.id = $1 AND y.id = $2")
        .bind(a).bind(b).fetch_optional(p).await?))
}

/// Sets the prefecture of a health centre (prefecture HQ staff see every centre of theirs).
pub async fn set_prefecture(db: &Db, health_centre_id: i64, prefecture: &str) -> Result<()> {
    with_db!(db, p => sqlx::query("UPDATE health_centres SET prefecture = $1 WHERE id = $2")
        .bind(prefecture).bind(health_centre_id).execute(p).await?.rows_affected());
    Ok(())
}

/// Registers an authenticator-app secret (base64 of the raw bytes).
pub async fn set_totp(db: &Db, staff_id: i64, secret_b64: Option<&str>) -> Result<()> {
    with_db!(db, p => sqlx::query("UPDATE staff SET totp_secret = $1 WHERE id = $2")
        .bind(secret_b64).bind(staff_id).execute(p).await?.rows_affected());
    Ok(())
}

/// Sets how a staff member is reached (second factor by SMS / e-mail, urgent notifications).
pub async fn set_contact(
    db: &Db,
    staff_id: i64,
    phone: Option<&str>,
    email: Option<&str>,
) -> Result<()> {
    with_db!(db, p => sqlx::query("UPDATE staff SET phone = $1, email = $2 WHERE id = $3")
        .bind(phone).bind(email).bind(staff_id).execute(p).await?.rows_affected());
    Ok(())
}

/// A staff ID as its officer manages it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct StaffId {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub organisation_id: Option<i64>,
    pub suspended: bool,
    pub has_totp: bool,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// Restricts a health centre's people to government staff (no outside institution access).
pub async fn set_government_only(db: &Db, health_centre_id: i64, on: bool) -> Result<()> {
    with_db!(db, p => sqlx::query("UPDATE health_centres SET government_only = $1 WHERE id = $2")
        .bind(on).bind(health_centre_id).execute(p).await?.rows_affected());
    Ok(())
}

pub async fn prefectures(db: &Db) -> Result<Vec<(String, String)>> {
    Ok(
        with_db!(db, p => sqlx::query_as("SELECT code, name FROM prefectures ORDER BY code").fetch_all(p).await?),
    )
}

/// Outside bodies registered by a health centre: (id, kind, name).
pub async fn organisations_of(
    db: &Db,
    health_centre_id: i64,
) -> Result<Vec<(i64, String, String)>> {
    Ok(
        with_db!(db, p => sqlx::query_as("SELECT id, kind, name FROM organisations WHERE health_centre_id = $1 ORDER BY id")
        .bind(health_centre_id).fetch_all(p).await?),
    )
}

/// Replaces one's own password (hash made by the caller after the rules were checked).
pub async fn set_password(db: &Db, staff_id: i64, password_hash: &str) -> Result<()> {
    with_db!(db, p => sqlx::query("UPDATE staff SET password_hash = $1 WHERE id = $2")
        .bind(password_hash).bind(staff_id).execute(p).await?.rows_affected());
    Ok(())
}

/// Sets the local government that runs a health centre.
pub async fn set_municipality(db: &Db, health_centre_id: i64, municipality: &str) -> Result<()> {
    with_db!(db, p => sqlx::query("UPDATE health_centres SET municipality = $1 WHERE id = $2")
        .bind(municipality).bind(health_centre_id).execute(p).await?.rows_affected());
    Ok(())
}

/// The staff member with this login name, as the store sees them (for the CLI, which acts as
/// a named staff member).
pub async fn viewer_by_username(db: &Db, username: &str) -> Result<Option<crate::access::Viewer>> {
    let row: Option<(i64, String, i64, Option<i64>)> = with_db!(db, p => sqlx::query_as(
        "SELECT id, role, health_centre_id, organisation_id FROM staff WHERE username = $1")
        .bind(username.trim()).fetch_optional(p).await?);
    Ok(row.and_then(|(id, role, centre, org)| {
        Some(crate::access::Viewer {
            staff_id: id,
            role: crate::access::Role::parse(&role)?,
            health_centre_id: centre,
            organisation_id: org,
        })
    }))
}
