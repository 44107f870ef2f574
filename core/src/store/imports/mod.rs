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
mod batches;
mod matching;
mod stage;
mod write;

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::{
    Db, Error, FieldError, Result,
    access::{Role, Viewer},
    db::{BeginWrite, now},
    domain::Lang,
    import::{Mapped, Mapping, Records, Sheet},
    periods::Periods,
    store::{Actor, audit, persons::PersonInput, reports::ReportInput},
    with_db,
};
pub use batches::{ReportCsv, outcome_page, outcomes};
use matching::{Context, Keys};
use stage::Stage;

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

/// A row's outcome as stored (`import_rows`, the scratch store), as the report's word.
fn outcome_word(stored: &str) -> &'static str {
    match stored {
        "created" => "created",
        "linked" => "linked",
        "repositive" => "repositive",
        "duplicate" => "duplicate",
        "already" => "already",
        "undone" => "undone",
        _ => "rejected",
    }
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
    /// Rows of an import batch undone since.
    pub undone: usize,
    /// The rows, in file order: every row when there are at most [`ROWS_KEPT`]; else the
    /// rows to look at first (rejected, duplicates, linked, re-positive), up to that many —
    /// the report's CSV (`Options::report_csv`) has every row.
    pub rows: Vec<Outcome>,
    /// Whether `rows` holds every row.
    pub all_rows: bool,
}

/// Rows a report keeps in memory (the CSV has them all).
pub const ROWS_KEPT: usize = 10_000;

impl Report {
    /// The report of these rows, counted.
    fn of(batch_id: Option<i64>, rows_read: usize, rows: Vec<Outcome>) -> Report {
        let mut r = Report {
            batch_id,
            rows_read,
            all_rows: rows.len() == rows_read,
            rows,
            ..Default::default()
        };
        r.count();
        r
    }

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

    /// The report's rows as CSV (UTF-8 with BOM): line, case number, outcome, person, row,
    /// reason.
    pub fn csv(&self) -> Vec<u8> {
        let mut w = csv_writer();
        for r in &self.rows {
            csv_row(&mut w, r);
        }
        w.take()
    }
}

/// A report's CSV writer, its header written.
fn csv_writer() -> crate::stats::opendata::CsvChunks {
    let mut w = crate::stats::opendata::CsvChunks::new(crate::stats::opendata::Encoding::Utf8Bom);
    w.row([
        "line",
        "case_number",
        "outcome",
        "person_id",
        "of_line",
        "of_person",
        "reason",
    ]);
    w
}

fn csv_row(w: &mut crate::stats::opendata::CsvChunks, r: &Outcome) {
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

/// Where a report's CSV goes, a piece at a time (every row, in file order).
pub type CsvSink<'a> = &'a (dyn Fn(&[u8]) -> std::io::Result<()> + Sync);

/// How the import runs.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    pub periods: &'a Periods,
    pub today: NaiveDate,
    pub file_name: &'a str,
    /// Told (rows done, rows in all) after each committed chunk; while the file is still
    /// being read and checked (the total not yet known), (rows read so far, 0).
    pub progress: &'a (dyn Fn(usize, usize) + Sync),
    /// The language of the report's reasons (the importing staff member's).
    pub lang: Lang,
    /// Where the report's CSV of every row is written (a dry run's and an import's).
    pub report_csv: Option<CsvSink<'a>>,
}

/// An `import_rows` row to write: source, case number, line, outcome, person, report.
type OutcomeRow<'a> = (&'a str, &'a str, i64, &'a str, Option<i64>, Option<i64>);

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

fn may_import(viewer: &Viewer) -> Result<()> {
    if matches!(viewer.role, Role::HealthCentreStaff | Role::AuthOfficer) {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "imports are run by health-centre staff and the ID officer",
        ))
    }
}

/// What a dry run and an import both do first: who may, the file's columns, every row read,
/// checked, searched for and staged (pass 1), and every valid row decided (pass 2).
/// Returns the stage, the stage's columns of a row, and the valid rows' count.
async fn prepare<'a>(
    db: &'a Db,
    viewer: &Viewer,
    mapping: &'a Mapping,
    file: &[u8],
    opt: &Options<'a>,
) -> Result<(Context<'a>, Stage, Vec<(&'static str, usize)>, usize)> {
    may_import(viewer)?;
    let mut records = Records::open(file, &mapping.encoding)?;
    let columns = mapping.columns_of(records.headers())?;
    let cx = Context {
        db,
        centre: viewer.health_centre_id,
        mapping,
        periods: opt.periods,
        today: opt.today,
        lang: opt.lang,
    };
    let t = std::time::Instant::now();
    let mut stage = matching::load(&cx, &mut records, &columns, opt.progress).await?;
    drop(records);
    let loaded = t.elapsed();
    let valid = matching::decide(&mut stage).await?;
    tracing::info!(
        rows = stage.rows(),
        valid,
        read_ms = loaded.as_millis() as u64,
        decide_ms = (t.elapsed() - loaded).as_millis() as u64,
        "import rows read, searched and decided"
    );
    Ok((cx, stage, matching::staged_columns(&columns), valid))
}

/// The report of a staged import: counts, the rows kept ([`ROWS_KEPT`], the ones to look
/// at first), and every row's CSV to the sink, read from the stage a page at a time.
async fn report(
    stage: &mut Stage,
    batch_id: Option<i64>,
    sink: Option<CsvSink<'_>>,
) -> Result<Report> {
    let mut r = Report {
        batch_id,
        rows_read: stage.rows(),
        all_rows: stage.rows() <= ROWS_KEPT,
        ..Default::default()
    };
    for (outcome, n) in stage.counts().await? {
        let n = n as usize;
        match outcome.as_str() {
            "created" => r.created += n,
            "linked" => r.linked += n,
            "repositive" => r.repositive += n,
            "duplicate" => r.duplicate += n,
            "rejected" => r.rejected += n,
            "already" => r.already += n,
            _ => {}
        }
    }
    r.valid = r.rows_read - r.rejected;
    let mut kept: Vec<(i64, Outcome)> = stage.outcomes(-1, ROWS_KEPT as i64, true).await?;
    kept.sort_by_key(|(ord, _)| *ord);
    r.rows = kept.into_iter().map(|(_, o)| o).collect();
    if let Some(sink) = sink {
        let io = |e: std::io::Error| Error::Internal(format!("import report: {e}"));
        let mut w = csv_writer();
        let mut after = -1;
        loop {
            let page = stage.outcomes(after, 2_000, false).await?;
            let Some((last, _)) = page.last() else { break };
            after = *last;
            for (_, o) in &page {
                csv_row(&mut w, o);
            }
            sink(&w.take()).map_err(io)?;
        }
        let rest = w.take();
        if !rest.is_empty() {
            sink(&rest).map_err(io)?;
        }
    }
    Ok(r)
}

/// What importing `file` would do (CSV in UTF-8 or CP932 — `mapping.encoding` — or XLSX),
/// writing nothing but one audit row (the registry was searched to find duplicates).
pub async fn dry_run(
    db: &Db,
    viewer: &Viewer,
    mapping: &Mapping,
    file: &[u8],
    opt: Options<'_>,
) -> Result<Report> {
    let (_, mut stage, _, _) = prepare(db, viewer, mapping, file, &opt).await?;
    with_db!(db, p => audit(p, Actor::Staff(viewer.staff_id), "import.dry_run", "health_centre", Some(viewer.health_centre_id), None).await)?;
    report(&mut stage, None, opt.report_csv).await
}

/// Imports `file`: one batch, chunks of rows each in one transaction (outcome rows, people,
/// reports and audit rows together, see `write`), so an interruption loses at most the
/// chunks in flight and a re-run continues after the last committed one.
pub async fn run(
    db: &Db,
    viewer: &Viewer,
    mapping: &Mapping,
    file: &[u8],
    opt: Options<'_>,
) -> Result<Report> {
    let (cx, mut stage, columns, valid) = prepare(db, viewer, mapping, file, &opt).await?;
    let t = now();
    let centre = viewer.health_centre_id;
    let batch_id: i64 = with_db!(db, p => sqlx::query_scalar(
        "INSERT INTO import_batches (health_centre_id, source, file_name, rows_total, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
        .bind(centre).bind(&mapping.source).bind(opt.file_name).bind(stage.rows() as i64)
        .bind(viewer.staff_id).bind(t).fetch_one(p).await?);
    // Rejected rows are recorded first (they write nothing else).
    let mut after = -1;
    loop {
        let rejected = stage.rejected(after, matching::CHUNK as i64).await?;
        let Some((last, ..)) = rejected.last() else {
            break;
        };
        after = *last;
        with_db!(db, pool => {
            let mut tx = pool.begin_write().await?;
            // Reasons name every field: fewer rows a statement than the other writes.
            for part in rejected.chunks(write::ROWS_PER_STATEMENT / 2) {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO import_rows (batch_id, source, case_number, line, outcome, reason) ");
                q.push_values(part, |mut b, (_, line, case, reason)| {
                    b.push_bind(batch_id).push_bind(&mapping.source).push_bind(case).push_bind(*line)
                        .push_bind("rejected").push_bind(reason);
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<(), Error>(())
        })?;
    }
    let actor = Actor::Staff(viewer.staff_id);
    let t = std::time::Instant::now();
    write::write_all(
        &cx,
        &mut stage,
        &columns,
        batch_id,
        actor,
        valid,
        opt.progress,
    )
    .await?;
    tracing::info!(
        batch_id,
        write_ms = t.elapsed().as_millis() as u64,
        "import rows written"
    );
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        sqlx::query("UPDATE import_batches SET finished_at = $1 WHERE id = $2").bind(now()).bind(batch_id).execute(&mut *tx).await?;
        audit(&mut *tx, actor, "import.run", "import_batch", Some(batch_id), None).await?;
        tx.commit().await?;
        Ok::<(), Error>(())
    })?;
    let r = report(&mut stage, Some(batch_id), opt.report_csv).await?;
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
            return Err(Error::invalid("batch", "err-import-already-undone"));
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
                return Err(Error::invalid_with("batch", "err-import-worked-on-since", vec![(
                    "ids",
                    touched.iter().map(i64::to_string).collect::<Vec<_>>().join(", "),
                )]));
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
        return Err(Error::invalid_with(
            "file",
            "err-import-no-name-column",
            vec![("headers", sheet.headers.join(", "))],
        ));
    }
    let dates = Mapping::standard("contacts");
    let mut in_file: HashMap<u128, usize> = HashMap::new();
    let mut rows = Vec::with_capacity(sheet.len());
    // Every row read and checked first; then the registry searched for all in batches.
    let mut read: Vec<(Outcome, Option<crate::store::persons::NewPerson>)> =
        Vec::with_capacity(sheet.len());
    for cells in sheet.rows() {
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
            line: cells.line,
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
        if parsed.is_none() {
            o.outcome = "rejected";
            o.reason = Some(reasons(&problems, opt.lang));
        }
        read.push((o, parsed));
    }
    let keys: Vec<Keys> = read
        .iter()
        .map(|(_, p)| p.as_ref().map(Keys::of).unwrap_or_default())
        .collect();
    let registered = matching::lookup(db, viewer.health_centre_id, &keys).await?;
    for (((mut o, parsed), ks), found) in read.into_iter().zip(keys).zip(registered) {
        let Some(p) = parsed else {
            rows.push(o);
            continue;
        };
        let ks = ks.digests();
        if let Some(l) = ks.iter().flatten().find_map(|k| in_file.get(k)) {
            o.outcome = "duplicate";
            o.of_line = Some(*l);
        } else if let Some((id, _)) = found {
            o.outcome = "duplicate";
            o.person_id = Some(id);
            o.reason = Some("already registered".into());
        } else {
            for k in ks.iter().flatten() {
                in_file.insert(*k, o.line);
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
    Ok(Report::of(None, sheet.len(), rows))
}
