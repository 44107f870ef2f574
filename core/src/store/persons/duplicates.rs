//! People who may be the same as a new registration (folded kana name, date of birth,
//! phone), as the registering viewer may see them.
use super::*;

/// A registered person who may be the same as a new registration.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct DuplicateCandidate {
    pub id: i64,
    pub name: String,
    pub name_kana: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub phone: Option<String>,
    pub monitoring_type: String,
    pub status: String,
    /// What matched: kana name (width and kana variants folded), date of birth, phone, sex,
    /// address.
    #[sqlx(skip)]
    pub matched: Vec<&'static str>,
}

/// People `viewer` may see who may be `p`: the same folded kana name with the same date of
/// birth or phone, or the same phone and date of birth. Each comes with what matched.
/// Audited as a list read when anything is found.
pub async fn possible_duplicates(
    db: &Db,
    viewer: &Viewer,
    p: &NewPerson,
) -> Result<Vec<DuplicateCandidate>> {
    let key = p.details.name_key.clone().unwrap_or_default();
    let phone = p
        .phone
        .as_ref()
        .map(|x| x.as_str().to_string())
        .unwrap_or_default();
    let sql = format!(
        "SELECT p.id, p.name, p.name_kana, p.date_of_birth, p.phone, p.monitoring_type, p.status, p.name_key,
                p.sex, p.address
         FROM persons p
         WHERE {} AND p.merged_into IS NULL AND ((p.name_key = $1 AND $1 <> '' AND (p.date_of_birth = $2 OR p.phone = $3))
                       OR (p.phone = $3 AND $3 <> '' AND p.date_of_birth = $2))
         ORDER BY p.id DESC LIMIT 20",
        viewer.row_condition()
    );
    type Row = (
        i64,
        String,
        Option<String>,
        Option<NaiveDate>,
        Option<String>,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(&key).bind(p.date_of_birth).bind(&phone).fetch_all(pool).await?);
    let out: Vec<DuplicateCandidate> = rows
        .into_iter()
        .map(
            |(id, name, name_kana, dob, ph, monitoring_type, status, nk, sex, address)| {
                let mut matched = Vec::new();
                if nk.as_deref() == Some(key.as_str()) {
                    matched.push("name_kana");
                }
                if dob.is_some() && dob == p.date_of_birth {
                    matched.push("date_of_birth");
                }
                if !phone.is_empty() && ph.as_deref() == Some(phone.as_str()) {
                    matched.push("phone");
                }
                if sex.is_some() && sex.as_deref() == p.details.sex {
                    matched.push("sex");
                }
                if address.is_some() && address == p.details.address {
                    matched.push("address");
                }
                DuplicateCandidate {
                    id,
                    name,
                    name_kana,
                    date_of_birth: dob,
                    phone: ph,
                    monitoring_type,
                    status,
                    matched,
                }
            },
        )
        .collect();
    if !out.is_empty() {
        with_db!(db, pool => audit(pool, Actor::Staff(viewer.staff_id), "person.duplicates", "health_centre", Some(viewer.health_centre_id), None).await)?;
    }
    Ok(out)
}
