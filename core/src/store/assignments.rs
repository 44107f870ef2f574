//! Who else may see a person: an outside body of the person's centre it is **assigned** to
//! (follow-up contractor, lodging facility, medical institution: their matrix row then
//! applies), or a related health centre it is **shared** with. Record administration of the
//! responsible health centre; the write and its audit row are one transaction.
use crate::{
    Db, Error, Result,
    access::{Access, Role},
    db::{BeginWrite, now},
    store::{audit, persons},
    with_db,
};

/// Only the person's own health centre (or the product itself, e.g. demo data) administers
/// who else sees them.
async fn administering(db: &Db, access: Access<'_>, person_id: i64) -> Result<i64> {
    if let Some(v) = access.viewer()
        && v.role != Role::HealthCentreStaff
    {
        return Err(Error::Forbidden(
            "only the person's health centre decides who else sees them",
        ));
    }
    let p = match access {
        Access::System(_) => persons::load(db, person_id).await?,
        _ => persons::get(db, access, person_id, None).await?,
    };
    if access
        .viewer()
        .is_some_and(|v| v.health_centre_id != p.health_centre_id)
    {
        return Err(Error::Forbidden(
            "only the person's health centre decides who else sees them",
        ));
    }
    Ok(p.health_centre_id)
}

/// Assigns person `person_id` to outside body `organisation_id`, which must belong to the
/// person's health centre. Idempotent; audited as `person.assign`.
pub async fn assign(
    db: &Db,
    access: Access<'_>,
    person_id: i64,
    organisation_id: i64,
    ip: Option<&str>,
) -> Result<()> {
    let centre = administering(db, access, person_id).await?;
    let t = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let ours: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM organisations WHERE id = $1 AND health_centre_id = $2")
            .bind(organisation_id).bind(centre).fetch_optional(&mut *tx).await?;
        if ours.is_none() {
            return Err(Error::invalid("organisation_id", "err-choose-one-of-this-health-centre-s-outside"));
        }
        sqlx::query("INSERT INTO person_assignments (person_id, organisation_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(person_id).bind(organisation_id).bind(t).execute(&mut *tx).await?;
        audit(&mut *tx, access.actor(), "person.assign", "person", Some(person_id), ip).await?;
        tx.commit().await?;
        Ok(())
    })
}

/// Shares person `person_id` with another existing health centre, which sees them at once.
/// Idempotent; audited as `person.share`.
pub async fn share(
    db: &Db,
    access: Access<'_>,
    person_id: i64,
    health_centre_id: i64,
    ip: Option<&str>,
) -> Result<()> {
    let centre = administering(db, access, person_id).await?;
    let by = access.viewer().map(|v| v.staff_id);
    let t = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM health_centres WHERE id = $1")
            .bind(health_centre_id).fetch_optional(&mut *tx).await?;
        if health_centre_id == centre || exists.is_none() {
            return Err(Error::invalid("health_centre_id", "err-choose-another-existing-health-centre"));
        }
        sqlx::query(
            "INSERT INTO person_shares (person_id, health_centre_id, shared_by, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING")
            .bind(person_id).bind(health_centre_id).bind(by).bind(t).execute(&mut *tx).await?;
        audit(&mut *tx, access.actor(), "person.share", "person", Some(person_id), ip).await?;
        tx.commit().await?;
        Ok(())
    })
}
