//! The ID chain [利用者ID管理]: who may issue, suspend, re-enable and reset which IDs, enforced
//! here (not by the screens). The ministry manages the user-authentication officers of every
//! health centre; an officer manages the IDs of their own centre's staff and outside bodies
//! (see [`Role::manages`]). A change to an ID outside the manager's reach is "not found", as
//! if it did not exist. Each change is audited in its own transaction.
use crate::{
    Db, Error, Result,
    access::Role,
    db::{BeginWrite, now},
    store::{
        Actor, audit,
        staff::{StaffId, check_username},
    },
    with_db,
};

/// Who is managing IDs (from the session).
#[derive(Debug, Clone, Copy)]
pub struct Manager {
    pub staff_id: i64,
    pub role: Role,
    pub health_centre_id: i64,
}

impl Manager {
    fn check(&self) -> Result<()> {
        if self.role.manages().is_empty() {
            Err(Error::Forbidden(
                "only the user-authentication officer (or the ministry, for officers) manages IDs",
            ))
        } else {
            Ok(())
        }
    }

    /// SQL condition on `staff s`: the IDs this manager may manage (called after `check`, so
    /// the role list is never empty). Role names and the centre id are literals from the
    /// code and the session, never user input.
    fn reach(&self) -> String {
        let roles = self
            .role
            .manages()
            .iter()
            .map(|r| format!("'{}'", r.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        if self.role == Role::MinistryAdmin {
            format!("s.role IN ({roles})")
        } else {
            format!(
                "s.role IN ({roles}) AND s.health_centre_id = {}",
                self.health_centre_id
            )
        }
    }
}

/// The IDs `m` manages, by centre and id.
pub async fn list(db: &Db, m: &Manager) -> Result<Vec<StaffId>> {
    m.check()?;
    let sql = format!(
        "SELECT s.id, s.username, s.display_name, s.role, s.organisation_id, s.suspended,
                (s.totp_secret IS NOT NULL) AS has_totp, s.phone, s.email
         FROM staff s WHERE {} ORDER BY s.health_centre_id, s.id",
        m.reach()
    );
    Ok(
        with_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).persistent(false).fetch_all(p).await?),
    )
}

/// A new ID as its manager fills it in.
pub struct NewId<'a> {
    /// The ministry chooses the centre of a new officer; an officer's IDs are always of their
    /// own centre (this is ignored for them).
    pub health_centre_id: i64,
    pub username: &'a str,
    /// argon2id PHC string made by the caller.
    pub password_hash: &'a str,
    pub display_name: &'a str,
    pub role: Role,
    /// The outside body's name, for contractor, lodging and medical IDs.
    pub organisation: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub email: Option<&'a str>,
}

/// Issues an ID (with its outside body, role and second-factor contact) in one transaction
/// with its audit row; a role outside the manager's reach is refused.
pub async fn issue(db: &Db, m: &Manager, n: NewId<'_>, ip: Option<&str>) -> Result<i64> {
    m.check()?;
    if !m.role.manages().contains(&n.role) {
        return Err(Error::invalid("role", "err-choose-one-of-the-listed-roles"));
    }
    let centre = if m.role == Role::MinistryAdmin {
        n.health_centre_id
    } else {
        m.health_centre_id
    };
    let username = check_username(n.username)?;
    let kind = n.role.organisation_kind();
    let organisation = n.organisation.map(str::trim).filter(|o| !o.is_empty());
    if kind.is_some() && organisation.is_none() {
        return Err(Error::invalid(
            "organisation",
            "err-name-the-outside-body-this-id-is-for",
        ));
    }
    let t = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let org: Option<i64> = match (kind, organisation) {
            (Some(kind), Some(name)) => Some(sqlx::query_scalar(
                "INSERT INTO organisations (kind, name, health_centre_id, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
                .bind(kind).bind(name).bind(centre).bind(t).fetch_one(&mut *tx).await?),
            _ => None,
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO staff (health_centre_id, username, password_hash, display_name, created_at, role, organisation_id, phone, email)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id")
            .bind(centre).bind(username).bind(n.password_hash).bind(n.display_name.trim()).bind(t)
            .bind(n.role.as_str()).bind(org).bind(n.phone).bind(n.email)
            .fetch_one(&mut *tx).await.map_err(Error::unique_as("username"))?;
        audit(&mut *tx, Actor::Staff(m.staff_id), "id.issue", "staff", Some(id), ip).await?;
        tx.commit().await?;
        Ok(id)
    })
}

/// What a manager does to an existing ID.
pub enum Change<'a> {
    /// Suspends the ID and ends its sessions.
    Suspend,
    Enable,
    /// Replaces the password (hash made by the caller), clears the lock, ends the sessions.
    Reset {
        password_hash: &'a str,
    },
}

/// Changes an ID within the manager's reach, with its audit row, in one transaction.
pub async fn change(
    db: &Db,
    m: &Manager,
    target: i64,
    c: Change<'_>,
    ip: Option<&str>,
) -> Result<()> {
    m.check()?;
    let (set, action, end_sessions) = match c {
        Change::Suspend => ("suspended = TRUE", "id.suspend", true),
        Change::Enable => ("suspended = FALSE", "id.enable", false),
        Change::Reset { .. } => (
            "password_hash = $2, failed_logins = 0, locked_until = NULL",
            "id.reset",
            true,
        ),
    };
    let sql = format!(
        "UPDATE staff SET {set} WHERE id = $1 AND id IN (SELECT s.id FROM staff s WHERE {})",
        m.reach()
    );
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(target);
        if let Change::Reset { password_hash } = c {
            q = q.bind(password_hash);
        }
        if q.persistent(false).execute(&mut *tx).await?.rows_affected() == 0 {
            return Err(Error::NotFound("staff"));
        }
        if end_sessions {
            sqlx::query("DELETE FROM sessions WHERE staff_id = $1").bind(target).execute(&mut *tx).await?;
        }
        audit(&mut *tx, Actor::Staff(m.staff_id), action, "staff", Some(target), ip).await?;
        tx.commit().await?;
        Ok(())
    })
}

/// How much basic information the officer's centre shows contractors and lodging facilities:
/// `full` or the narrow reading (name and how to reach the person). Audited with the change.
pub async fn set_outside_basic(db: &Db, m: &Manager, full: bool, ip: Option<&str>) -> Result<()> {
    if m.role != Role::AuthOfficer {
        return Err(Error::Forbidden(
            "the health centre's own officer decides this",
        ));
    }
    let value = if full { "full" } else { "narrow" };
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        sqlx::query("UPDATE health_centres SET outside_basic = $1 WHERE id = $2")
            .bind(value).bind(m.health_centre_id).execute(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(m.staff_id), &format!("centre.outside_basic_{value}"), "health_centre", Some(m.health_centre_id), ip).await?;
        tx.commit().await?;
        Ok(())
    })
}

/// The centre's setting for outside bodies' basic information: true when `full`.
pub async fn outside_basic_full(db: &Db, health_centre_id: i64) -> Result<bool> {
    let v: Option<String> = with_db!(db, p => sqlx::query_scalar(
        "SELECT outside_basic FROM health_centres WHERE id = $1").bind(health_centre_id).fetch_optional(p).await?);
    Ok(v.as_deref() == Some("full"))
}

/// The centre's name as English calls read it (empty: "your health centre"). Set by the
/// centre's own officer; audited with the change.
pub async fn set_centre_name_en(db: &Db, m: &Manager, name: &str, ip: Option<&str>) -> Result<()> {
    if m.role != Role::AuthOfficer {
        return Err(Error::Forbidden(
            "the health centre's own officer decides this",
        ));
    }
    let name = name.trim();
    if name.chars().count() > 100 || !name.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        return Err(Error::invalid(
            "name_en",
            "err-write-the-name-in-english-letters-at-most-100-as",
        ));
    }
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        sqlx::query("UPDATE health_centres SET name_en = $1 WHERE id = $2")
            .bind(name).bind(m.health_centre_id).execute(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(m.staff_id), "centre.name_en", "health_centre", Some(m.health_centre_id), ip).await?;
        tx.commit().await?;
        Ok(())
    })
}

/// The centre's English name ('' when not set).
pub async fn centre_name_en(db: &Db, health_centre_id: i64) -> Result<String> {
    Ok(with_db!(db, p => sqlx::query_scalar(
        "SELECT name_en FROM health_centres WHERE id = $1").bind(health_centre_id).fetch_optional(p).await?)
        .unwrap_or_default())
}
