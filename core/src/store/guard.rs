//! **The access gate**: the one check every store function for personal data goes through —
//! an `Access` (a staff member, an opened person page, or the product itself) against the
//! person's row scope and the field group — and the record reader that checks, reads and
//! audits in one place.
use crate::{
    Db, Error, Result,
    access::{Access, Action, FieldGroup},
    db::BeginWrite,
    store::audit,
    with_db,
};

/// Refuses (not found / forbidden) unless `access` may do `action` on `group` of person
/// `id`. Store functions for a field group call this first.
pub async fn check(
    db: &Db,
    access: Access<'_>,
    id: i64,
    group: FieldGroup,
    action: Action,
) -> Result<()> {
    let v = match access {
        Access::System(_) => return Ok(()),
        Access::Opened(o) if o.person_id() != id => return Err(Error::NotFound("person")),
        Access::Opened(o) => o.viewer(),
        Access::Staff(v) => {
            let sql = format!(
                "SELECT COUNT(*) FROM persons p WHERE p.id = $1 AND {}",
                v.row_condition()
            );
            let n: i64 = with_db!(db, pool => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_one(pool).await?);
            if n == 0 {
                return Err(Error::NotFound("person"));
            }
            v
        }
    };
    if !v.may(group, action) {
        return Err(Error::Forbidden(
            "your role may not see or change this part of the record",
        ));
    }
    Ok(())
}

/// The rows of one of a person's records (`sql` takes the person id as `$1`): scope and
/// field group checked for `access` and the read audited as `action` in the same
/// transaction (a page opened with [`open`] was audited once when it was opened).
pub async fn read_records<T>(
    db: &Db,
    access: Access<'_>,
    person_id: i64,
    group: FieldGroup,
    action: &str,
    sql: &str,
    ip: Option<&str>,
) -> Result<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
{
    check(db, access, person_id, group, Action::Read).await?;
    if matches!(access, Access::Opened(_)) {
        return Ok(
            with_db!(db, p => sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql)).bind(person_id).fetch_all(p).await?),
        );
    }
    Ok(with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let rows = sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql)).bind(person_id).fetch_all(&mut *tx).await?;
        audit(&mut *tx, access.actor(), action, "person", Some(person_id), ip).await?;
        tx.commit().await?;
        rows
    }))
}
