//! Importing occurrence-report records into the registry (see `crate::import` for the format
//! and the mapping): a dry run that writes nothing and says what would happen to every row,
//! and the import itself — keyed on (source, case number), so a second run creates nothing
//! and an interrupted one continues where it stopped — and its undo.
//!
//! What happens to a row, decided in the order of diagnosis dates:
//! 1. already imported under the same source and case number → skipped;
//! 2. unreadable or invalid (the occurrence report's own rules) → rejected, with every field
//!    and why;
//! 3. its remarks say 再陽性 and name an earlier case number (in the file or imported before)
//!    → a new case linked to that person's (re-positive);
//! 4. the same person as an earlier row of the file (folded kana name and date of birth, or
//!    phone and date of birth, or kana name and phone — the rules of registration): a
//!    duplicate of it while that case's period has not ended, else a re-positive case;
//! 5. the same person as someone already registered at the centre: the report is linked to
//!    them, or — when their case has ended — a re-positive case is opened;
//! 6. otherwise a new person with the report.
//!
//! People imported as ended cases get no check-ins; people still within their period are
//! planned by the nightly planning from the next day. Every write is audited as the staff
//! member who ran the import, in the transaction that writes it.
use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::{
    Db, Error, FieldError, Result,
    access::{Role, Viewer},
    db::{BeginWrite, now},
    domain::{Lang, kana_key},
    import::{Mapped, Mapping, Sheet, repositive_of},
    periods::Periods,
    store::{
        Actor, audit,
        persons::{NewPerson, PersonInput},
        reports::{NewReport, ReportInput},
    },
    with_db,
};

/// What happens (or happened) to one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub line: usize,
    pub case_number: String,
    /// created, linked, repositive, duplicate, rejected, already.
    pub outcome: &'static str,
    /// The person (existing, or created by the run; None for a dry run's new ones).
    pub person_id: Option<i64>,
    /// The row of the file this one duplicates or follows (re-positive), if in the file.
    pub of_line: Option<usize>,
    /// The earlier case a re-positive row follows, when it is already registered.
    pub of_person: Option<i64>,
    /// Why a row was rejected, field by field ("field: reason; …").
    pub reason: Option<String>,
}

/// The report of a dry run or an import.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub batch_id: Option<i64>,
    pub rows_read: usize,
    /// Rows that pass every check (imported now, or before).
    pub valid: usize,
    pub created: usize,
    pub linked: usize,
    pub repositive: usize,
    pub duplicate: usize,
    pub rejected: usize,
    pub already: usize,
    /// Every row, in file order.
    pub rows: Vec<Outcome>,
}

impl Report {
    fn count(&mut self) {
        let n = |o: &str| self.rows.iter().filter(|r| r.outcome == o).count();
        (
            self.created,
            self.linked,
            self.repositive,
            self.duplicate,
            self.rejected,
            self.already,
        ) = (
            n("created"),
            n("linked"),
            n("repositive"),
            n("duplicate"),
            n("rejected"),
            n("already"),
        );
        self.valid = self.rows.len() - self.rejected;
    }

    /// The report as CSV (UTF-8 with BOM): line, case number, outcome, person, row, reason.
    pub fn csv(&self) -> Vec<u8> {
        let mut w =
            crate::stats::opendata::CsvChunks::new(crate::stats::opendata::Encoding::Utf8Bom);
        w.row([
            "line",
            "case_number",
            "outcome",
            "person_id",
            "of_line",
            "of_person",
            "reason",
        ]);
        for r in &self.rows {
            w.row([
                r.line.to_string(),
                r.case_number.clone(),
                r.outcome.to_string(),
                r.person_id.map(|x| x.to_string()).unwrap_or_default(),
                r.of_line.map(|x| x.to_string()).unwrap_or_default(),
                r.of_person.map(|x| x.to_string()).unwrap_or_default(),
                r.reason.clone().unwrap_or_default(),
            ]);
        }
        w.take()
    }
}

/// How the import runs.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    pub periods: &'a Periods,
    pub today: NaiveDate,
    pub file_name: &'a str,
    /// Told (rows done, rows in all) after each committed chunk.
    pub progress: &'a (dyn Fn(usize, usize) + Sync),
    /// The language of the report's reasons (the importing staff member's).
    pub lang: Lang,
}

/// An `import_rows` row to write: source, case number, line, outcome, person, report.
type OutcomeRow<'a> = (&'a str, &'a str, i64, &'a str, Option<i64>, Option<i64>);

/// Rows per transaction of an import.
const CHUNK: usize = 500;
/// Rows per statement: each statement's message stays within one loopback TCP segment
/// (~64 KB). sqlx does not set TCP_NODELAY, so the tail of a message spanning several
/// segments waits for the server's delayed acknowledgement (~40 ms a statement): five
/// 500-row statements per chunk made the writes 97 % of an import, the machine idle.
const ROWS_PER_STATEMENT: usize = 50;

/// A person as duplicate detection sees them.
#[derive(Debug, Clone)]
struct Known {
    person_id: Option<i64>,
    line: Option<usize>,
    observation_end: NaiveDate,
}

/// The keys registration matches people on.
fn keys(p: &NewPerson) -> Vec<String> {
    let name = p
        .details
        .name_key
        .clone()
        .unwrap_or_else(|| kana_key(&p.name));
    let phone = p.phone.as_ref().map(|x| x.as_str().to_string());
    let dob = p.date_of_birth.map(|d| d.to_string());
    let mut k = Vec::new();
    if let Some(d) = &dob {
        if !name.is_empty() {
            k.push(format!("nd|{name}|{d}"));
        }
        if let Some(ph) = &phone {
            k.push(format!("pd|{ph}|{d}"));
        }
    }
    if let Some(ph) = &phone
        && !name.is_empty()
    {
        k.push(format!("np|{name}|{ph}"));
    }
    k
}

/// A valid row, ready to write.
struct Planned {
    line: usize,
    case_number: String,
    report: NewReport,
    outcome: &'static str,
    /// Existing person (linked) or earlier case (re-positive), when already in the registry.
    person_id: Option<i64>,
    /// The row of this file it follows or duplicates.
    of_line: Option<usize>,
}

/// An imported person's channel: e-mail when they have only an address, else SMS.
fn channel_for(phone: &str, email: &str) -> String {
    if phone.is_empty() && !email.is_empty() {
        "email"
    } else {
        "sms"
    }
    .into()
}

fn to_input(m: &Mapped) -> ReportInput {
    let g = |f: &str| m.fields.get(f).cloned().unwrap_or_default();
    let phone = g("phone");
    let email = g("email");
    ReportInput {
        person: PersonInput {
            name: g("name"),
            name_kana: g("name_kana"),
            sex: g("sex"),
            date_of_birth: g("date_of_birth"),
            phone: phone.clone(),
            email: email.clone(),
            channel: channel_for(&phone, &email),
            prefecture_code: g("prefecture_code"),
            municipality: g("municipality"),
            address: g("address"),
            occupation: g("occupation"),
            onset_date: g("onset_date"),
            specimen_date: g("specimen_date"),
            not_duplicate: true,
            ..Default::default()
        },
        report_type: g("report_type"),
        diagnosis_date: g("diagnosis_date"),
        diagnosis_method: g("diagnosis_method"),
        doctor_name: g("doctor_name"),
        institution_name: g("institution_name"),
        institution_phone: g("institution_phone"),
        death_date: g("death_date"),
        estimated_infection_date: g("estimated_infection_date"),
        infection_place: g("infection_place"),
        symptoms: g("symptoms"),
        severity: g("severity"),
        notes: g("notes"),
        ..Default::default()
    }
}

/// A rejected row's reasons in `lang` (the importing staff member's language).
fn reasons(f: &[FieldError], lang: Lang) -> String {
    f.iter()
        .map(|e| format!("{}: {}", e.field, e.message(lang)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Decides every row (nothing written). `imported`: case number → (person) of earlier runs;
/// `registry`: key → people of the centre.
fn decide(
    mapping: &Mapping,
    sheet: &Sheet,
    periods: &Periods,
    today: NaiveDate,
    lang: Lang,
    imported: &HashMap<String, Option<i64>>,
    registry: &HashMap<String, Known>,
) -> Result<(Vec<Outcome>, Vec<Planned>)> {
    let columns = mapping.columns_of(sheet)?;
    let mut outcomes = Vec::with_capacity(sheet.rows.len());
    let mut valid: Vec<(usize, String, NewReport, Option<String>)> = Vec::new();
    let mut seen_numbers: HashMap<String, usize> = HashMap::new();
    for (line, cells) in &sheet.rows {
        let case = columns
            .iter()
            .find(|(f, _)| *f == "case_number")
            .and_then(|(_, i)| cells.get(*i))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let reject = |why: String| Outcome {
            line: *line,
            case_number: case.clone(),
            outcome: "rejected",
            person_id: None,
            of_line: None,
            of_person: None,
            reason: Some(why),
        };
        if let Some(first) = seen_numbers.get(&case).filter(|_| !case.is_empty()) {
            outcomes.push(reject(reasons(
                &[FieldError::new(
                    "case_number",
                    "err-import-case-twice".into(),
                    vec![("case", case.clone()), ("line", first.to_string())],
                )],
                lang,
            )));
            continue;
        }
        if !case.is_empty() && imported.contains_key(&case) {
            seen_numbers.insert(case.clone(), *line);
            outcomes.push(Outcome {
                line: *line,
                case_number: case.clone(),
                outcome: "already",
                person_id: imported[&case],
                of_line: None,
                of_person: None,
                reason: None,
            });
            continue;
        }
        let mapped = match mapping.map_row(&columns, *line, cells) {
            Ok(m) => m,
            Err(f) => {
                outcomes.push(reject(reasons(&f, lang)));
                continue;
            }
        };
        match to_input(&mapped).parse(periods, today) {
            Ok(r) => {
                seen_numbers.insert(case.clone(), *line);
                let remarks = mapped.fields.get("remarks").cloned();
                valid.push((*line, case, r, remarks));
            }
            Err(Error::Invalid(f)) => outcomes.push(reject(reasons(&f, lang))),
            Err(e) => return Err(e),
        }
    }
    // Earlier diagnoses first, so chains are followed forward.
    valid.sort_by_key(|v| (v.2.diagnosis_date, v.0));
    let mut in_file: HashMap<String, Known> = HashMap::new();
    let mut by_number: HashMap<String, usize> = HashMap::new();
    let mut planned = Vec::with_capacity(valid.len());
    for (line, case, report, remarks) in valid {
        let ks = keys(&report.person);
        let earlier_number = remarks.as_deref().and_then(repositive_of);
        let (outcome, person_id, of_line) = if let Some(n) = earlier_number.as_ref().and_then(|n| {
            by_number
                .get(n)
                .map(|l| (None, Some(*l)))
                .or_else(|| imported.get(n).map(|p| (*p, None)))
        }) {
            ("repositive", n.0, n.1)
        } else if let Some(k) = ks.iter().find_map(|k| in_file.get(k)) {
            if k.observation_end < report.diagnosis_date {
                ("repositive", None, k.line)
            } else {
                ("duplicate", None, k.line)
            }
        } else if let Some(k) = ks.iter().find_map(|k| registry.get(k)) {
            if k.observation_end < report.diagnosis_date {
                ("repositive", k.person_id, None)
            } else {
                ("linked", k.person_id, None)
            }
        } else {
            ("created", None, None)
        };
        if outcome != "duplicate" {
            let known = Known {
                person_id: None,
                line: Some(line),
                observation_end: report.person.observation_end,
            };
            for k in &ks {
                in_file.insert(k.clone(), known.clone());
            }
        }
        by_number.insert(case.clone(), line);
        outcomes.push(Outcome {
            line,
            case_number: case.clone(),
            outcome,
            person_id: (outcome == "linked").then_some(person_id).flatten(),
            of_line,
            of_person: (outcome == "repositive").then_some(person_id).flatten(),
            reason: None,
        });
        planned.push(Planned {
            line,
            case_number: case,
            report,
            outcome,
            person_id,
            of_line,
        });
    }
    outcomes.sort_by_key(|o| o.line);
    Ok((outcomes, planned))
}

fn may_import(viewer: &Viewer) -> Result<()> {
    if matches!(viewer.role, Role::HealthCentreStaff | Role::AuthOfficer) {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "imports are run by health-centre staff and the ID officer",
        ))
    }
}

/// Case numbers of `source` imported before (not rejected, not undone), with their person.
async fn imported(db: &Db, source: &str) -> Result<HashMap<String, Option<i64>>> {
    let rows: Vec<(String, Option<i64>)> = with_db!(db, p => sqlx::query_as(
        "SELECT case_number, person_id FROM import_rows WHERE source = $1 AND outcome NOT IN ('rejected', 'undone')")
        .bind(source).fetch_all(p).await?);
    Ok(rows.into_iter().collect())
}

/// The centre's people by matching key (held in memory for the run: one read, not one query
/// per row).
async fn registry(db: &Db, centre: i64) -> Result<HashMap<String, Known>> {
    type Row = (
        i64,
        Option<String>,
        String,
        Option<NaiveDate>,
        Option<String>,
        NaiveDate,
    );
    let rows: Vec<Row> = with_db!(db, p => sqlx::query_as(
        "SELECT id, name_key, name, date_of_birth, phone, observation_end FROM persons
         WHERE health_centre_id = $1 AND merged_into IS NULL ORDER BY id")
        .bind(centre).fetch_all(p).await?);
    let mut m = HashMap::with_capacity(rows.len() * 2);
    for (id, name_key, name, dob, phone, end) in rows {
        let name = name_key.unwrap_or_else(|| kana_key(&name));
        let known = Known {
            person_id: Some(id),
            line: None,
            observation_end: end,
        };
        let dob = dob.map(|d| d.to_string());
        if let Some(d) = &dob {
            if !name.is_empty() {
                m.entry(format!("nd|{name}|{d}"))
                    .or_insert_with(|| known.clone());
            }
            if let Some(ph) = &phone {
                m.entry(format!("pd|{ph}|{d}"))
                    .or_insert_with(|| known.clone());
            }
        }
        if let Some(ph) = &phone
            && !name.is_empty()
        {
            m.entry(format!("np|{name}|{ph}"))
                .or_insert_with(|| known.clone());
        }
    }
    Ok(m)
}

/// What importing `sheet` would do, writing nothing but one audit row (the registry was read
/// to find duplicates).
pub async fn dry_run(
    db: &Db,
    viewer: &Viewer,
    mapping: &Mapping,
    sheet: &Sheet,
    opt: Options<'_>,
) -> Result<Report> {
    may_import(viewer)?;
    let imported = imported(db, &mapping.source).await?;
    let registry = registry(db, viewer.health_centre_id).await?;
    let (rows, _) = decide(
        mapping,
        sheet,
        opt.periods,
        opt.today,
        opt.lang,
        &imported,
        &registry,
    )?;
    with_db!(db, p => audit(p, Actor::Staff(viewer.staff_id), "import.dry_run", "health_centre", Some(viewer.health_centre_id), None).await)?;
    let mut r = Report {
        rows_read: sheet.rows.len(),
        rows,
        ..Default::default()
    };
    r.count();
    Ok(r)
}

/// Imports `sheet`: one batch, chunks of rows each in one transaction (outcome rows, people,
/// reports and audit rows together), so an interruption loses at most the chunk in flight and
/// a re-run continues after the last committed one.
pub async fn run(
    db: &Db,
    viewer: &Viewer,
    mapping: &Mapping,
    sheet: &Sheet,
    opt: Options<'_>,
) -> Result<Report> {
    may_import(viewer)?;
    let imported = imported(db, &mapping.source).await?;
    let registry = registry(db, viewer.health_centre_id).await?;
    let (mut rows, planned) = decide(
        mapping,
        sheet,
        opt.periods,
        opt.today,
        opt.lang,
        &imported,
        &registry,
    )?;
    let t = now();
    let centre = viewer.health_centre_id;
    let batch_id: i64 = with_db!(db, p => sqlx::query_scalar(
        "INSERT INTO import_batches (health_centre_id, source, file_name, rows_total, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
        .bind(centre).bind(&mapping.source).bind(opt.file_name).bind(sheet.rows.len() as i64)
        .bind(viewer.staff_id).bind(t).fetch_one(p).await?);
    // Rejected rows are recorded first (they write nothing else).
    let rejected: Vec<&Outcome> = rows.iter().filter(|o| o.outcome == "rejected").collect();
    for chunk in rejected.chunks(CHUNK) {
        with_db!(db, pool => {
            let mut tx = pool.begin_write().await?;
            for o in chunk {
                sqlx::query("INSERT INTO import_rows (batch_id, source, case_number, line, outcome, reason) VALUES ($1, $2, $3, $4, 'rejected', $5)")
                    .bind(batch_id).bind(&mapping.source).bind(&o.case_number).bind(o.line as i64).bind(&o.reason)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<(), Error>(())
        })?;
    }
    let total = planned.len();
    let mut person_of_line: HashMap<usize, i64> = HashMap::new();
    let actor = Actor::Staff(viewer.staff_id);
    let mut done = 0;
    let pg = matches!(db, Db::Postgres(_));
    for chunk in planned.chunks(CHUNK) {
        let written: Vec<(usize, i64)> = with_db!(db, pool => {
            let mut tx = pool.begin_write().await?;
            // Ids first (a sequence on PostgreSQL; after the largest on SQLite, whose single
            // writer holds the lock), so people and reports go in as one statement each per
            // chunk — a statement per row, with its trigger, was 30,000 rows a minute.
            let new_people = chunk.iter().filter(|p| matches!(p.outcome, "created" | "repositive")).count() as i64;
            let new_reports = chunk.iter().filter(|p| p.outcome != "duplicate").count() as i64;
            let alloc = |table: &str| if pg {
                format!("SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, $1)")
            } else {
                format!("WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < $1)
                         SELECT (SELECT COALESCE(MAX(id), 0) FROM {table}) + n FROM s")
            };
            let mut person_ids: Vec<i64> = if new_people > 0 {
                sqlx::query_scalar(sqlx::AssertSqlSafe(alloc("persons"))).bind(new_people).fetch_all(&mut *tx).await?
            } else { Vec::new() };
            let mut report_ids: Vec<i64> = if new_reports > 0 {
                sqlx::query_scalar(sqlx::AssertSqlSafe(alloc("occurrence_reports"))).bind(new_reports).fetch_all(&mut *tx).await?
            } else { Vec::new() };
            person_ids.reverse();
            report_ids.reverse();
            let mut written = Vec::with_capacity(chunk.len());
            let mut people: Vec<(i64, &Planned, Option<i64>)> = Vec::new();
            let mut reports: Vec<(i64, i64, &Planned, &'static str)> = Vec::new();
            let mut outcome_rows: Vec<OutcomeRow<'_>> = Vec::with_capacity(chunk.len());
            for p in chunk {
                let earlier = p.person_id.or_else(|| p.of_line.and_then(|l| person_of_line.get(&l).copied()));
                let (person_id, report_id) = match p.outcome {
                    "duplicate" => (earlier.unwrap_or_default(), None),
                    "linked" => {
                        let id = earlier.ok_or_else(|| Error::Internal("linked row without a person".into()))?;
                        let rid = report_ids.pop().ok_or_else(|| Error::Internal("report ids".into()))?;
                        reports.push((rid, id, p, "linked"));
                        (id, Some(rid))
                    }
                    outcome => {
                        let id = person_ids.pop().ok_or_else(|| Error::Internal("person ids".into()))?;
                        people.push((id, p, if outcome == "repositive" { earlier } else { None }));
                        let rid = report_ids.pop().ok_or_else(|| Error::Internal("report ids".into()))?;
                        reports.push((rid, id, p, if outcome == "repositive" { "repositive" } else { "created" }));
                        (id, Some(rid))
                    }
                };
                outcome_rows.push((&mapping.source, &p.case_number, p.line as i64, p.outcome, (person_id != 0).then_some(person_id), report_id));
                written.push((p.line, person_id));
                // Later rows of the same chunk may follow this one.
                person_of_line.insert(p.line, person_id);
            }
            for people in people.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO persons (id, health_centre_id, name, phone, email, channel, language, monitoring_type,
                       observation_start, observation_end, date_of_birth, status, created_at, updated_at,
                       name_kana, name_key, sex, prefecture_code, municipality, address, occupation,
                       reception_date, onset_date, specimen_date, period_rule, period_override_reason,
                       previous_case_id, name_norm) ");
                q.push_values(people, |mut b, (id, p, previous)| {
                    let person = &p.report.person;
                    let d = &person.details;
                    let ended = person.observation_end < opt.today || p.report.report_type == "deceased";
                    b.push_bind(*id).push_bind(centre).push_bind(person.name.clone()).push_bind(person.phone.as_ref().map(|x| x.as_str().to_string()))
                        .push_bind(person.email.as_ref().map(|x| x.as_str().to_string())).push_bind(person.channel.as_str()).push_bind(person.language.as_str())
                        .push_bind(person.monitoring_type).push_bind(person.observation_start).push_bind(person.observation_end)
                        .push_bind(person.date_of_birth).push_bind(if ended { "ended" } else { "observing" }).push_bind(t).push_bind(t)
                        .push_bind(d.name_kana.clone()).push_bind(d.name_key.clone()).push_bind(d.sex).push_bind(d.prefecture_code.clone())
                        .push_bind(d.municipality.clone()).push_bind(d.address.clone()).push_bind(d.occupation.clone())
                        .push_bind(d.reception_date.or(Some(p.report.diagnosis_date))).push_bind(d.onset_date).push_bind(d.specimen_date)
                        .push_bind(d.period_rule.clone()).push_bind(d.period_override_reason.clone()).push_bind(*previous)
                        .push_bind(kana_key(&person.name));
                });
                q.build().execute(&mut *tx).await?;
                let slots: Vec<(i64, i32, i32)> = people
                    .iter()
                    .flat_map(|(id, p, _)| p.report.person.slots.iter().enumerate().map(move |(i, m)| (*id, i as i32, *m)))
                    .collect();
                let mut q = sqlx::QueryBuilder::new("INSERT INTO person_slots (person_id, slot, minutes) ");
                q.push_values(&slots, |mut b, (id, slot, m)| {
                    b.push_bind(*id).push_bind(*slot).push_bind(*m);
                });
                if !slots.is_empty() {
                    q.build().execute(&mut *tx).await?;
                }
            }
            for part in reports.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO occurrence_reports (id, person_id, health_centre_id, report_type, diagnosis_date, diagnosis_method,
                       doctor_name, institution_name, institution_phone, onset_date, specimen_date, death_date,
                       estimated_infection_date, infection_place, infection_route, symptoms, severity, notes, linkage,
                       filed_by, created_at) ");
                q.push_values(part, |mut b, (rid, pid, p, linkage)| {
                    let r = &p.report;
                    b.push_bind(*rid).push_bind(*pid).push_bind(centre).push_bind(r.report_type).push_bind(r.diagnosis_date)
                        .push_bind(r.diagnosis_method).push_bind(r.doctor_name.clone()).push_bind(r.institution_name.clone())
                        .push_bind(r.institution_phone.clone()).push_bind(r.person.details.onset_date).push_bind(r.person.details.specimen_date)
                        .push_bind(r.death_date).push_bind(r.estimated_infection_date).push_bind(r.infection_place.clone())
                        .push_bind(r.infection_route).push_bind(r.symptoms.clone()).push_bind(r.severity).push_bind(r.notes.clone())
                        .push_bind(*linkage).push_bind(viewer.staff_id).push_bind(t);
                });
                q.build().execute(&mut *tx).await?;
            }
            for part in outcome_rows.chunks(4 * ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO import_rows (batch_id, source, case_number, line, outcome, person_id, report_id) ");
                q.push_values(part, |mut b, (src, case, line, outcome, person, report)| {
                    b.push_bind(batch_id).push_bind(*src).push_bind(*case).push_bind(*line).push_bind(*outcome).push_bind(*person).push_bind(*report);
                });
                q.build().execute(&mut *tx).await?;
            }
            let audit_rows: Vec<crate::store::audit::NewAuditRow<'_>> = outcome_rows
                .iter()
                .filter(|r| r.3 != "duplicate")
                .map(|r| (actor, "import.row", "person", r.4, None))
                .collect();
            for part in audit_rows.chunks(4 * ROWS_PER_STATEMENT) {
                crate::store::audit::audit_many(&mut *tx, part).await?;
            }
            tx.commit().await?;
            Ok::<_, Error>(written)
        })?;
        for (line, id) in written {
            person_of_line.insert(line, id);
        }
        done += chunk.len();
        (opt.progress)(done, total);
    }
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        sqlx::query("UPDATE import_batches SET finished_at = $1 WHERE id = $2").bind(now()).bind(batch_id).execute(&mut *tx).await?;
        audit(&mut *tx, actor, "import.run", "import_batch", Some(batch_id), None).await?;
        tx.commit().await?;
        Ok::<(), Error>(())
    })?;
    for o in &mut rows {
        if matches!(o.outcome, "created" | "repositive" | "duplicate") {
            o.person_id = person_of_line.get(&o.line).copied().filter(|x| *x != 0);
        }
    }
    let mut r = Report {
        batch_id: Some(batch_id),
        rows_read: sheet.rows.len(),
        rows,
        ..Default::default()
    };
    r.count();
    tracing::info!(
        batch_id,
        created = r.created,
        linked = r.linked,
        rejected = r.rejected,
        "import finished"
    );
    Ok(r)
}

/// A batch as the console lists it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Batch {
    pub id: i64,
    pub source: String,
    pub file_name: String,
    pub rows_total: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub undone_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The centre's import batches, newest first.
pub async fn batches(db: &Db, viewer: &Viewer) -> Result<Vec<Batch>> {
    may_import(viewer)?;
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT id, source, file_name, CAST(rows_total AS BIGINT) AS rows_total, created_at, finished_at, undone_at FROM import_batches
         WHERE health_centre_id = $1 ORDER BY id DESC LIMIT 100")
        .bind(viewer.health_centre_id).fetch_all(p).await?))
}

/// The recorded outcome of every row of a batch (downloadable as the report).
pub async fn outcomes(db: &Db, viewer: &Viewer, batch_id: i64) -> Result<Report> {
    may_import(viewer)?;
    type Row = (i64, String, String, Option<i64>, Option<String>);
    let rows: Vec<Row> = with_db!(db, p => sqlx::query_as(
        "SELECT CAST(r.line AS BIGINT), r.case_number, r.outcome, r.person_id, r.reason FROM import_rows r
         JOIN import_batches b ON b.id = r.batch_id
         WHERE r.batch_id = $1 AND b.health_centre_id = $2 ORDER BY r.line")
        .bind(batch_id).bind(viewer.health_centre_id).fetch_all(p).await?);
    let mut r = Report {
        batch_id: Some(batch_id),
        rows_read: rows.len(),
        rows: rows
            .into_iter()
            .map(|(line, case_number, outcome, person_id, reason)| Outcome {
                line: line as usize,
                case_number,
                outcome: match outcome.as_str() {
                    "created" => "created",
                    "linked" => "linked",
                    "repositive" => "repositive",
                    "duplicate" => "duplicate",
                    "undone" => "undone",
                    _ => "rejected",
                },
                person_id,
                of_line: None,
                of_person: None,
                reason,
            })
            .collect(),
        ..Default::default()
    };
    r.count();
    Ok(r)
}

/// Undoes an import batch (the centre's ID officer): the reports it filed and the people it
/// created are removed — only while none of them has been touched since (no other report,
/// observation, check-in, test, severity, residence, section, escalation or edit). Its rows
/// are kept, marked undone, so the same records can be imported again.
pub async fn undo(db: &Db, viewer: &Viewer, batch_id: i64) -> Result<usize> {
    if viewer.role != Role::AuthOfficer {
        return Err(Error::Forbidden(
            "only the user-authentication officer undoes an import",
        ));
    }
    let t = now();
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let batch: Option<(i64, Option<chrono::DateTime<chrono::Utc>>, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "SELECT health_centre_id, undone_at, created_at FROM import_batches WHERE id = $1")
            .bind(batch_id).fetch_optional(&mut *tx).await?;
        let Some((centre, undone, _)) = batch else { return Err(Error::NotFound("import batch")) };
        if centre != viewer.health_centre_id {
            return Err(Error::NotFound("import batch"));
        }
        if undone.is_some() {
            return Err(Error::invalid("batch", "this import was already undone"));
        }
        let created: Vec<i64> = sqlx::query_scalar(
            "SELECT person_id FROM import_rows WHERE batch_id = $1 AND outcome IN ('created', 'repositive') AND person_id IS NOT NULL")
            .bind(batch_id).fetch_all(&mut *tx).await?;
        let reports: Vec<i64> = sqlx::query_scalar(
            "SELECT report_id FROM import_rows WHERE batch_id = $1 AND report_id IS NOT NULL")
            .bind(batch_id).fetch_all(&mut *tx).await?;
        if !created.is_empty() {
            let ids = crate::store::id_list(&created);
            let rids = crate::store::id_list(&reports);
            let touched: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT p.id FROM persons p WHERE p.id IN ({ids}) AND (
                   p.updated_at <> p.created_at OR p.merged_into IS NOT NULL
                   OR EXISTS (SELECT 1 FROM occurrence_reports r WHERE r.person_id = p.id AND r.id NOT IN ({rids}))
                   OR EXISTS (SELECT 1 FROM observations o WHERE o.person_id = p.id)
                   OR EXISTS (SELECT 1 FROM checkins c WHERE c.person_id = p.id AND c.status NOT IN ('planned', 'cancelled'))
                   OR EXISTS (SELECT 1 FROM person_tests x WHERE x.person_id = p.id)
                   OR EXISTS (SELECT 1 FROM person_severities x WHERE x.person_id = p.id)
                   OR EXISTS (SELECT 1 FROM person_residences x WHERE x.person_id = p.id)
                   OR EXISTS (SELECT 1 FROM person_sections x WHERE x.person_id = p.id)
                   OR EXISTS (SELECT 1 FROM escalations x WHERE x.person_id = p.id)
                   OR EXISTS (SELECT 1 FROM persons q WHERE q.source_person_id = p.id OR (q.previous_case_id = p.id AND q.id NOT IN ({ids}))))
                 ORDER BY p.id LIMIT 20"))).fetch_all(&mut *tx).await?;
            if !touched.is_empty() {
                return Err(Error::invalid("batch", format!(
                    "people of this import have been worked on since (ids {}); undo is refused so nothing entered since is lost",
                    touched.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        if !reports.is_empty() {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM occurrence_reports WHERE id IN ({})", crate::store::id_list(&reports))))
                .execute(&mut *tx).await?;
        }
        if !created.is_empty() {
            let ids = crate::store::id_list(&created);
            for sql in [
                format!("DELETE FROM checkins WHERE person_id IN ({ids})"),
                format!("DELETE FROM person_slots WHERE person_id IN ({ids})"),
                format!("DELETE FROM person_assignments WHERE person_id IN ({ids})"),
                format!("DELETE FROM person_shares WHERE person_id IN ({ids})"),
                // Re-positive chains inside the batch point at each other: cut them first.
                format!("UPDATE persons SET previous_case_id = NULL WHERE id IN ({ids})"),
                format!("DELETE FROM persons WHERE id IN ({ids})"),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await?;
            }
        }
        sqlx::query("UPDATE import_rows SET outcome = 'undone' WHERE batch_id = $1 AND outcome <> 'rejected'")
            .bind(batch_id).execute(&mut *tx).await?;
        sqlx::query("UPDATE import_batches SET undone_by = $1, undone_at = $2 WHERE id = $3")
            .bind(viewer.staff_id).bind(t).bind(batch_id).execute(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "import.undo", "import_batch", Some(batch_id), None).await?;
        tx.commit().await?;
        Ok(created.len())
    })
}

/// The headers a contact list may use (ours, or the usual Japanese ones).
const CONTACT_HEADERS: &[(&str, &[&str])] = &[
    ("name", &["name", "氏名", "名前"]),
    ("name_kana", &["name_kana", "フリガナ", "ふりがな", "カナ"]),
    ("phone", &["phone", "電話番号", "電話"]),
    ("email", &["email", "メール", "メールアドレス"]),
    ("date_of_birth", &["date_of_birth", "生年月日"]),
    ("sex", &["sex", "性別"]),
    (
        "last_exposure_date",
        &["last_exposure_date", "最終接触日", "接触日"],
    ),
];

/// Registers a list of close contacts of case `case_id` in one step (or, with `dry_run`,
/// says what it would do): each row checked like a registration, duplicates inside the list
/// and against the centre's people (the same keys) reported and left out. Needs write access
/// to contacts of the case; each person registered is audited and gets today's check-in.
pub async fn contacts(
    db: &Db,
    viewer: &Viewer,
    case_id: i64,
    sheet: &Sheet,
    dry_run: bool,
    window: chrono::Duration,
    opt: Options<'_>,
) -> Result<Report> {
    crate::store::guard::check(
        db,
        crate::access::Access::Staff(viewer),
        case_id,
        crate::access::FieldGroup::Contacts,
        crate::access::Action::Write,
    )
    .await?;
    let col = |f: &str| {
        CONTACT_HEADERS
            .iter()
            .find(|(k, _)| *k == f)
            .and_then(|(_, names)| {
                sheet
                    .headers
                    .iter()
                    .position(|h| names.contains(&h.as_str()))
            })
    };
    if col("name").is_none() {
        return Err(Error::invalid(
            "file",
            format!(
                "no name column (氏名 or name); the headers are: {}",
                sheet.headers.join(", ")
            ),
        ));
    }
    let dates = Mapping::standard("contacts");
    let registry = registry(db, viewer.health_centre_id).await?;
    let mut in_file: HashMap<String, usize> = HashMap::new();
    let mut rows = Vec::with_capacity(sheet.rows.len());
    for (line, cells) in &sheet.rows {
        let get = |f: &str| {
            col(f)
                .and_then(|i| cells.get(i))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let mut problems = Vec::new();
        let mut date = |f: &'static str| {
            let v = get(f);
            if v.is_empty() {
                return String::new();
            }
            match dates.date(&v) {
                Ok(d) => d.to_string(),
                Err((key, args)) => {
                    problems.push(FieldError::new(f, key.to_string(), args));
                    String::new()
                }
            }
        };
        let (dob, exposure) = (date("date_of_birth"), date("last_exposure_date"));
        let phone = get("phone");
        let email = get("email");
        let input = PersonInput {
            name: get("name"),
            name_kana: get("name_kana"),
            phone: phone.clone(),
            email: email.clone(),
            channel: channel_for(&phone, &email),
            date_of_birth: dob,
            sex: get("sex"),
            last_exposure_date: exposure,
            monitoring_type: "contact".into(),
            source_person_id: Some(case_id),
            not_duplicate: true,
            ..Default::default()
        };
        let mut o = Outcome {
            line: *line,
            case_number: String::new(),
            outcome: "created",
            person_id: None,
            of_line: None,
            of_person: None,
            reason: None,
        };
        let parsed = if problems.is_empty() {
            match input.parse_with(opt.periods, opt.today) {
                Ok(p) => Some(p),
                Err(Error::Invalid(f)) => {
                    problems = f;
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let Some(p) = parsed else {
            o.outcome = "rejected";
            o.reason = Some(reasons(&problems, opt.lang));
            rows.push(o);
            continue;
        };
        let ks = keys(&p);
        if let Some(l) = ks.iter().find_map(|k| in_file.get(k)) {
            o.outcome = "duplicate";
            o.of_line = Some(*l);
        } else if let Some(k) = ks.iter().find_map(|k| registry.get(k)) {
            o.outcome = "duplicate";
            o.person_id = k.person_id;
            o.reason = Some("already registered".into());
        } else {
            for k in ks {
                in_file.insert(k, *line);
            }
            if !dry_run {
                o.person_id = Some(
                    crate::store::persons::create(
                        db,
                        Actor::Staff(viewer.staff_id),
                        viewer.health_centre_id,
                        &p,
                        window,
                        None,
                    )
                    .await?,
                );
            }
        }
        rows.push(o);
    }
    let mut r = Report {
        rows_read: sheet.rows.len(),
        rows,
        ..Default::default()
    };
    r.count();
    Ok(r)
}
