//! Importing records from the console [一括取込] (health-centre staff and the ID officer):
//! upload a CSV (UTF-8 or Shift_JIS) or Excel file with a mapping → the dry run's report
//! (nothing written) → import, run in the background with its progress shown → the row-by-row
//! report to download → undo by the ID officer. The same use cases as `mimamori import`.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Form, Router,
    extract::{DefaultBodyLimit, Multipart, Path, State},
    http::header,
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use maud::{Markup, html};
use mimamori_core::{
    Error,
    access::Role,
    domain::Lang,
    import::{self, Mapping},
    store::imports::{self, Report},
};
use serde::Deserialize;

use crate::web::{
    AppState,
    auth::CurrentStaff,
    error::{AppError, HtmlError},
    i18n::{Arg, UiLang, count, tr, tr_args},
    japan_today, layout,
};

mod check;
mod progress;

use check::{Check, DRY_RUN_INLINE, dry_run_page, pending_csv, pending_page};
use progress::{progress_page, progress_script};

/// Largest file accepted from the console (the CLI takes any size).
const MAX_UPLOAD: usize = 50 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/imports", get(index).post(upload))
        .route("/imports/{id}", get(batch))
        .route("/imports/{id}/report.csv", get(report_csv))
        .route("/imports/{id}/undo", post(undo))
        .route("/imports/pending/{token}", get(pending_page))
        .route("/static/progress.js", get(progress_script))
        .route("/imports/pending/{token}/report.csv", get(pending_csv))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD))
}

/// Imports in flight and dry runs waiting for the go-ahead, per server process: the file is
/// kept in memory between the dry run and the import (at most an hour; one per staff member).
/// All the files held at once — being checked, waiting, being imported — stay within
/// `http.import_files_mb` ([`Pending::hold`]): memory stays bounded however many staff
/// upload at once.
#[derive(Default)]
pub struct Pending {
    uploads: Mutex<HashMap<String, Upload>>,
    running: Mutex<HashMap<String, Run>>,
    /// Each member's latest upload (its token): a dry run that ends after a newer file of
    /// the same member was uploaded is set aside, not kept in place of the newer one's.
    latest: Mutex<HashMap<i64, String>>,
    /// Bytes held by [`Held`] shares.
    held: std::sync::atomic::AtomicUsize,
}

impl Pending {
    /// A share of `cap` bytes for an uploaded file of `file` bytes, or None when the files
    /// already held leave no room. A file is counted twice: itself, and its dry run's
    /// report of every row (kept beside it for the download; smaller than the file).
    fn hold(self: &Arc<Self>, file: usize, cap: usize) -> Option<Held> {
        use std::sync::atomic::Ordering;
        let bytes = file.saturating_mul(2);
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                now.checked_add(bytes).filter(|n| *n <= cap)
            })
            .ok()?;
        Some(Held {
            pending: self.clone(),
            bytes,
        })
    }
}

/// A file's share of the memory imports may hold, given back when the file is let go (its
/// dry run refused, its go-ahead expired or used, its import ended).
pub(super) struct Held {
    pending: Arc<Pending>,
    bytes: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.pending
            .held
            .fetch_sub(self.bytes, std::sync::atomic::Ordering::AcqRel);
    }
}

/// An import started from the console: whose, since when, how far.
struct Run {
    staff_id: i64,
    at: std::time::Instant,
    state: Running,
}

/// How long a finished import's progress page still leads to its batch.
const FINISHED_KEPT: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long a dry run's file and report wait for the go-ahead (`err-import-upload-expired`
/// says "one hour").
const UPLOAD_KEPT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Lets go of `staff_id`'s waiting dry run and of every one past [`UPLOAD_KEPT`].
fn let_go(uploads: &mut HashMap<String, Upload>, staff_id: i64) {
    uploads.retain(|_, u| u.at.elapsed() < UPLOAD_KEPT && u.staff_id != staff_id);
}

struct Upload {
    staff_id: i64,
    /// A list of close contacts of this case (else occurrence-report records).
    contacts_of: Option<i64>,
    at: std::time::Instant,
    file_name: String,
    mapping: Mapping,
    /// The file as uploaded (read again for the import).
    bytes: Vec<u8>,
    /// The dry run's rows to look at.
    report: Report,
    /// The dry run's report of every row, as CSV.
    report_csv: Vec<u8>,
    /// The file's share of `http.import_files_mb`.
    _held: Held,
}

#[derive(Clone)]
enum Running {
    /// A dry run reading and checking the file: rows read so far.
    Checking {
        read: usize,
    },
    /// A dry run ended: its report waits under the same token.
    Checked,
    /// A dry run refused the file (which field, why).
    Refused(Vec<mimamori_core::FieldError>),
    /// A dry run that ended after the same member had uploaded a newer file: set aside.
    Superseded,
    Going {
        done: usize,
        total: usize,
    },
    Done(i64),
    Failed(String),
}

fn may(who: &CurrentStaff) -> Result<(), HtmlError> {
    if matches!(who.role, Role::HealthCentreStaff | Role::AuthOfficer) {
        Ok(())
    } else {
        Err(Error::Forbidden("imports are run by health-centre staff and the ID officer").into())
    }
}

/// The mappings beside the flows (`*.mapping.toml`), by file name.
fn mappings(s: &AppState) -> Vec<(String, Result<Mapping, String>)> {
    let dir = std::path::Path::new(&s.config.flows_dir);
    let mut v: Vec<(String, Result<Mapping, String>)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    name.ends_with(".mapping.toml")
                        .then(|| (name, Mapping::load(&e.path())))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The upload form; with `errors`, a summary of them under `heading` (a catalogue key).
fn upload_form(
    lang: Lang,
    who: &CurrentStaff,
    s: &AppState,
    errors: &[mimamori_core::FieldError],
    heading: &str,
) -> Markup {
    let err = |f: &str| {
        errors
            .iter()
            .find(|e| e.field == f)
            .map(|e| e.message(lang))
    };
    html! {
        @if !errors.is_empty() {
            div class="error-summary" role="alert" tabindex="-1" {
                h2 { (tr(lang, heading)) }
                ul { @for e in errors { li { a href=(format!("#{}", if e.field == "file" { "file" } else { "mapping" })) { (e.message(lang)) } } } }
            }
        }
        form method="post" action="/imports" enctype="multipart/form-data" class="card" {
            input type="hidden" name="csrf" value=(who.csrf);
            label for="file" { (tr(lang, "import-file")) }
            p class="muted" { (tr(lang, "import-file-help")) }
            input type="file" id="file" name="file" accept=".csv,.xlsx,text/csv" required aria-describedby="file-err";
            @if let Some(e) = err("file") { div class="err" id="file-err" { (e) } }
            label for="mapping" { (tr(lang, "import-mapping")) }
            select id="mapping" name="mapping" {
                option value="" { (tr(lang, "import-standard-format")) }
                @for (name, m) in mappings(s) {
                    @if m.is_ok() { option value=(name) { (name) } }
                }
            }
            label for="contacts_of" { (tr(lang, "import-contacts-of")) }
            p class="muted" { (tr(lang, "import-contacts-help")) }
            input type="text" inputmode="numeric" id="contacts_of" name="contacts_of" autocomplete="off" aria-describedby="contacts_of-err";
            @if let Some(e) = err("contacts_of") { div class="err" id="contacts_of-err" { (e) } }
            // On a line of its own, not glued to the case-ID box before it.
            p class="actions" { button type="submit" name="action" value="dry_run" { (tr(lang, "import-check")) } }
        }
    }
}

async fn index(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
) -> Result<Html<String>, HtmlError> {
    may(&who)?;
    let list = imports::batches(&s.db, &who.viewer()).await?;
    let tz = chrono_tz::Asia::Tokyo;
    Ok(layout::page(
        lang,
        &who,
        tr(lang, "import-title"),
        html! {
            (upload_form(lang, &who, &s, &[], ""))
            h2 { (tr(lang, "import-batches")) }
            @if list.is_empty() { p { (tr(lang, "import-none-yet")) } } @else {
                table {
                    thead { tr { th { "#" } th { (tr(lang, "import-file")) } th { (tr(lang, "import-rows")) } th { (tr(lang, "import-when")) } th { (tr(lang, "import-state")) } } }
                    tbody {
                        @for b in &list {
                            tr {
                                td { a href=(format!("/imports/{}", b.id)) { (b.id) } }
                                td { (b.file_name) " (" (b.source) ")" }
                                td { (count(b.rows_total)) }
                                td { (b.created_at.with_timezone(&tz).format("%Y-%m-%d %H:%M")) }
                                td { @if b.undone_at.is_some() { (tr(lang, "import-undone")) } @else if b.finished_at.is_some() { (tr(lang, "import-finished")) } @else { (tr(lang, "import-running")) } }
                            }
                        }
                    }
                }
            }
        },
    ))
}

fn summary(lang: Lang, r: &Report) -> Markup {
    html! {
        dl class="kv card" {
            dt { (tr(lang, "import-rows-read")) } dd { (count(r.rows_read as i64)) }
            dt { (tr(lang, "import-valid")) } dd { (count(r.valid as i64)) }
            dt { (tr(lang, "import-created")) } dd { (count(r.created as i64)) }
            dt { (tr(lang, "import-linked")) } dd { (count(r.linked as i64)) }
            dt { (tr(lang, "import-repositive")) } dd { (count(r.repositive as i64)) }
            dt { (tr(lang, "import-duplicate")) } dd { (count(r.duplicate as i64)) }
            dt { (tr(lang, "import-rejected")) } dd { (count(r.rejected as i64)) }
            dt { (tr(lang, "import-already")) } dd { (count(r.already as i64)) }
        }
    }
}

fn problem_rows(lang: Lang, r: &Report) -> Markup {
    let shown: Vec<_> = r
        .rows
        .iter()
        .filter(|o| o.outcome != "created" && o.outcome != "already")
        .take(300)
        .collect();
    html! {
        @if !shown.is_empty() {
            h2 id="rows" { (tr(lang, "import-rows-to-look-at")) }
            div style="overflow-x:auto" tabindex="0" role="region" aria-labelledby="rows" {
                table {
                    thead { tr { th { (tr(lang, "import-line")) } th { (tr(lang, "import-case-number")) } th { (tr(lang, "import-outcome")) } th { (tr(lang, "import-detail")) } } }
                    tbody {
                        @for o in shown {
                            tr {
                                td { (o.line) }
                                td { (o.case_number) }
                                td { span class=(format!("tag {}", if o.outcome == "rejected" { "failed" } else { "" })) { (outcome_label(lang, o.outcome)) } }
                                // A field name such as `diagnosis_date` wraps on a phone.
                                td style="overflow-wrap:anywhere;min-width:8rem" {
                                    @if let Some(reason) = &o.reason { (reason) }
                                    @if let Some(l) = o.of_line { (tr(lang, "import-line")) " " (l) }
                                    @if let Some(p) = o.person_id { " " a href=(format!("/persons/{p}")) { "ID " (p) } }
                                    @if let Some(p) = o.of_person { " ← " a href=(format!("/persons/{p}")) { "ID " (p) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn outcome_label(lang: Lang, o: &str) -> &'static str {
    tr(
        lang,
        match o {
            "created" => "import-created",
            "linked" => "import-linked",
            "repositive" => "import-repositive",
            "duplicate" => "import-duplicate",
            "already" => "import-already",
            "undone" => "import-undone",
            _ => "import-rejected",
        },
    )
}

/// The upload: a dry run (the report, and a button to import what it found), or — with a
/// token from that dry run — the import itself, in the background.
async fn upload(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    mut form: Multipart,
) -> Result<Response, HtmlError> {
    may(&who)?;
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| AppError::BadRequest(e.to_string()))?
    {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            let fname = field.file_name().unwrap_or("upload").to_string();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| AppError::BadRequest(e.to_string()))?;
            if !bytes.is_empty() {
                file = Some((fname, bytes.to_vec()));
            }
        } else {
            fields.insert(
                name,
                field
                    .text()
                    .await
                    .map_err(|e| AppError::BadRequest(e.to_string()))?,
            );
        }
    }
    who.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or(""))?;
    let pending = s.imports.clone();
    if let Some(token) = fields.get("token") {
        // The go-ahead after a dry run.
        let up = pending.uploads.lock().expect("lock").remove(token);
        let Some(up) = up.filter(|u| u.staff_id == who.id && u.at.elapsed() < UPLOAD_KEPT) else {
            return Err(Error::invalid("file", "err-import-upload-expired").into());
        };
        if let Some(case) = up.contacts_of {
            let window = chrono::Duration::minutes(s.config.checkin.answer_window_minutes);
            let periods = s.periods.clone();
            let opt = imports::Options {
                periods: &periods,
                today: japan_today(),
                file_name: &up.file_name,
                progress: &|_, _| {},
                lang,
                report_csv: None,
            };
            let sheet = import::read(&up.bytes, &up.mapping.encoding)?;
            let r =
                imports::contacts(&s.db, &who.viewer(), case, &sheet, false, window, opt).await?;
            return Ok(layout::page(lang, &who, tr(lang, "import-title"), html! {
                p role="status" { (tr(lang, "import-contacts-done")) " " a href=(format!("/persons/{case}")) { "ID " (case) } }
                (summary(lang, &r))
                (problem_rows(lang, &r))
            }).into_response());
        }
        {
            // Finished runs are kept an hour for their progress page, then forgotten.
            let mut running = pending.running.lock().expect("lock");
            running.retain(|_, r| {
                matches!(r.state, Running::Going { .. } | Running::Checking { .. })
                    || r.at.elapsed() < FINISHED_KEPT
            });
            running.insert(
                token.clone(),
                Run {
                    staff_id: who.id,
                    at: std::time::Instant::now(),
                    state: Running::Going {
                        done: 0,
                        total: up.report.valid,
                    },
                },
            );
        }
        let (db, viewer, periods, token2) =
            (s.db.clone(), who.viewer(), s.periods.clone(), token.clone());
        tokio::spawn(async move {
            let p2 = pending.clone();
            let t3 = token2.clone();
            let progress = move |done: usize, total: usize| {
                if let Some(r) = p2.running.lock().expect("lock").get_mut(&t3) {
                    // (done, 0): the file is still being read; the page shows 0 until
                    // rows are written.
                    if total > 0 {
                        r.state = Running::Going { done, total };
                    }
                }
            };
            let opt = imports::Options {
                periods: &periods,
                today: japan_today(),
                file_name: &up.file_name,
                progress: &progress,
                lang,
                report_csv: None,
            };
            let r = imports::run(&db, &viewer, &up.mapping, &up.bytes, opt).await;
            // The file and its share of `http.import_files_mb` are let go now.
            drop(up);
            let state = match r {
                Ok(r) => Running::Done(r.batch_id.unwrap_or_default()),
                Err(e) => {
                    tracing::error!(error = %e, "console import failed");
                    Running::Failed(e.to_string())
                }
            };
            if let Some(r) = pending.running.lock().expect("lock").get_mut(&token2) {
                (r.state, r.at) = (state, std::time::Instant::now());
            }
        });
        return Ok(Redirect::to(&format!("/imports/0?token={token}")).into_response());
    }
    let mut errors = Vec::new();
    let mapping = match fields.get("mapping").map(String::as_str).unwrap_or("") {
        "" => Ok(Mapping::standard("import")),
        name => mappings(&s)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m)
            .unwrap_or_else(|| Err(format!("no mapping {name}"))),
    };
    let mapping = match mapping {
        Ok(m) => Some(m),
        Err(e) => {
            errors.push(mimamori_core::FieldError::new("mapping", e, Vec::new()));
            None
        }
    };
    let Some((file_name, bytes)) = file else {
        errors.push(mimamori_core::FieldError::new(
            "file",
            "err-import-choose-a-file".into(),
            Vec::new(),
        ));
        return form_again(lang, &who, &s, errors);
    };
    let Some(mapping) = mapping else {
        return form_again(lang, &who, &s, errors);
    };
    // A new file lets go of this member's earlier dry run (the go-ahead is for the latest
    // one only) and of every dry run past its hour, before room is asked for.
    let_go(&mut pending.uploads.lock().expect("lock"), who.id);
    let cap = s.config.http.import_files_mb.saturating_mul(1024 * 1024);
    let Some(held) = pending.hold(bytes.len(), cap) else {
        // Other staff's files fill the room imports may hold: try again shortly, or use the
        // command line (`mimamori import`), which is not bounded by the web process.
        tracing::warn!(
            staff_id = who.id,
            bytes = bytes.len(),
            "import refused: the files held for imports are at http.import_files_mb"
        );
        // Not the file's fault: the summary says to wait, not to fix.
        let mut r = form_page(
            lang,
            &who,
            &s,
            vec![mimamori_core::FieldError::new(
                "file",
                "err-import-busy".into(),
                Vec::new(),
            )],
            "import-busy-title",
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
        return Ok(r);
    };
    let contacts_of = match fields.get("contacts_of").map(|x| x.trim()).unwrap_or("") {
        "" => None,
        x => match x.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                return form_again(
                    lang,
                    &who,
                    &s,
                    vec![mimamori_core::FieldError::new(
                        "contacts_of",
                        "err-import-case-id".into(),
                        Vec::new(),
                    )],
                );
            }
        },
    };
    // The dry run runs as a task of its own: a file checked within a few seconds is shown at
    // once; a larger one goes on in the background while a progress page refreshes itself
    // (a 50 MB file takes longer than a request may).
    let token = uuid::Uuid::new_v4().simple().to_string();
    pending
        .latest
        .lock()
        .expect("lock")
        .insert(who.id, token.clone());
    pending.running.lock().expect("lock").insert(
        token.clone(),
        Run {
            staff_id: who.id,
            at: std::time::Instant::now(),
            state: Running::Checking { read: 0 },
        },
    );
    let check = Check {
        s: s.clone(),
        viewer: who.viewer(),
        staff_id: who.id,
        lang,
        token: token.clone(),
        file_name,
        bytes,
        held,
        mapping,
        contacts_of,
    };
    let mut task = tokio::spawn(check.run());
    // Well within the request's own time limit.
    let inline = DRY_RUN_INLINE.min(std::time::Duration::from_millis(
        s.config.http.request_timeout_secs * 1000 / 5,
    ));
    match tokio::time::timeout(inline, &mut task).await {
        Ok(joined) => {
            pending.running.lock().expect("lock").remove(&token);
            match joined.map_err(|e| AppError::Core(Error::Internal(e.to_string())))? {
                Ok(true) => dry_run_page(lang, &who, &s, &token),
                Ok(false) => Ok(superseded_page(lang, &who)),
                Err(Error::Invalid(f)) => form_again(lang, &who, &s, f),
                Err(e) => Err(e.into()),
            }
        }
        // Still checking: the task goes on (a dropped handle does not stop it).
        Err(_) => Ok(Redirect::to(&format!("/imports/0?token={token}")).into_response()),
    }
}

/// A dry run set aside because the same member uploaded a newer file meanwhile: says so
/// and leads to the imports page (the newer file's own page shows its report).
fn superseded_page(lang: Lang, who: &CurrentStaff) -> Response {
    layout::page(
        lang,
        who,
        tr(lang, "import-dry-run"),
        html! {
            div class="card" role="status" {
                p { (tr(lang, "import-superseded")) }
                p { a href="/imports" { (tr(lang, "import-back-to-form")) } }
            }
        },
    )
    .into_response()
}

/// The form again with what to fix (422).
fn form_again(
    lang: Lang,
    who: &CurrentStaff,
    s: &AppState,
    errors: Vec<mimamori_core::FieldError>,
) -> Result<Response, HtmlError> {
    Ok(form_page(
        lang,
        who,
        s,
        errors,
        "stats-fix-these",
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
    ))
}

/// The form again with `errors` summed up under `heading`, answered with `status`.
fn form_page(
    lang: Lang,
    who: &CurrentStaff,
    s: &AppState,
    errors: Vec<mimamori_core::FieldError>,
    heading: &str,
    status: axum::http::StatusCode,
) -> Response {
    let title = format!("{}: {}", tr(lang, "stats-error"), tr(lang, "import-title"));
    let mut r = layout::page_titled(
        lang,
        who,
        &title,
        tr(lang, "import-title"),
        upload_form(lang, who, s, &errors, heading),
    )
    .into_response();
    *r.status_mut() = status;
    r
}

fn csv(bytes: Vec<u8>, name: &str) -> Response {
    csv_stream(axum::body::Body::from(bytes), name)
}

fn csv_stream(body: axum::body::Body, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize, Default)]
struct BatchQuery {
    #[serde(default)]
    token: String,
}

/// A batch: while it runs, its progress (kept up to date in place); then its report.
async fn batch(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Path(id): Path<i64>,
    axum::extract::Query(q): axum::extract::Query<BatchQuery>,
) -> Result<Response, HtmlError> {
    may(&who)?;
    let mut id = id;
    if id == 0 {
        let state = s
            .imports
            .running
            .lock()
            .expect("lock")
            .get(&q.token)
            // Another's import is not found here (its batch page is checked as any other).
            .filter(|r| r.staff_id == who.id)
            .map(|r| r.state.clone());
        match state {
            Some(Running::Going { done, total }) => {
                let body = progress_page(
                    lang,
                    &q.token,
                    html! { (tr_args(lang, "import-running-rows", &[("done", Arg::Str(&count(done as i64))), ("total", Arg::Str(&count(total as i64)))])) },
                    html! { progress max=(total.max(1)) value=(done) aria-label=(tr(lang, "import-running")) {} },
                );
                return Ok(layout::page(lang, &who, tr(lang, "import-title"), body).into_response());
            }
            Some(Running::Checking { read }) => {
                let body = progress_page(
                    lang,
                    &q.token,
                    html! { (tr_args(lang, "import-checking-rows", &[("rows", Arg::Str(&count(read as i64)))])) },
                    html! { progress aria-label=(tr(lang, "import-checking")) {} },
                );
                return Ok(
                    layout::page(lang, &who, tr(lang, "import-dry-run"), body).into_response()
                );
            }
            Some(Running::Checked) => {
                return Ok(Redirect::to(&format!("/imports/pending/{}", q.token)).into_response());
            }
            Some(Running::Refused(f)) => return form_again(lang, &who, &s, f),
            Some(Running::Superseded) => return Ok(superseded_page(lang, &who)),
            Some(Running::Done(b)) => id = b,
            Some(Running::Failed(why)) => {
                return Ok(layout::page(lang, &who, tr(lang, "import-title"), html! { div class="errors" role="alert" { p { (tr(lang, "import-failed")) } p { (why) } } }).into_response());
            }
            None => return Err(Error::NotFound("import").into()),
        }
        return Ok(Redirect::to(&format!("/imports/{id}")).into_response());
    }
    let r = imports::outcomes(&s.db, &who.viewer(), id).await?;
    let undone = r.undone > 0;
    Ok(layout::page(lang, &who, &format!("{} #{id}", tr(lang, "import-title")), html! {
        (summary(lang, &r))
        p class="actions" {
            a class="button" href=(format!("/imports/{id}/report.csv")) { (tr(lang, "import-download-report")) }
        }
        (problem_rows(lang, &r))
        @if who.role == Role::AuthOfficer && !undone {
            form method="post" action=(format!("/imports/{id}/undo")) class="card" {
                input type="hidden" name="csrf" value=(who.csrf);
                p { (tr(lang, "import-undo-help")) }
                button type="submit" class="secondary" { (tr(lang, "import-undo")) }
            }
        }
    }).into_response())
}

async fn report_csv(
    State(s): State<AppState>,
    who: CurrentStaff,
    Path(id): Path<i64>,
) -> Result<Response, HtmlError> {
    may(&who)?;
    // The first page is read before answering, so a refusal is an error page, not a file;
    // then a page at a time (a batch of 500,000 rows is not held in memory).
    const PAGE: i64 = 2_000;
    let v = who.viewer();
    let first = imports::outcome_page(&s.db, &v, id, -1, PAGE).await?;
    let db = s.db.clone();
    let body = futures::stream::unfold(
        (Some(first), imports::ReportCsv::new()),
        move |(page, mut w)| {
            let db = db.clone();
            async move {
                let rows = page?;
                w.rows(&rows);
                let chunk = w.take();
                let next = match rows.last() {
                    Some(last) if rows.len() as i64 == PAGE => {
                        match imports::outcome_page(&db, &v, id, last.line as i64, PAGE).await {
                            Ok(next) => Some(next),
                            Err(e) => {
                                tracing::error!(error = %e, batch_id = id, "import report failed");
                                return Some((
                                    Err(std::io::Error::other("report failed")),
                                    (None, w),
                                ));
                            }
                        }
                    }
                    _ => None,
                };
                Some((Ok::<_, std::io::Error>(chunk), (next, w)))
            }
        },
    );
    Ok(csv_stream(
        axum::body::Body::from_stream(body),
        &format!("import-{id}-report.csv"),
    ))
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn undo(
    State(s): State<AppState>,
    who: CurrentStaff,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Result<Redirect, HtmlError> {
    who.check_csrf(&f.csrf)?;
    imports::undo(&s.db, &who.viewer(), id).await?;
    Ok(Redirect::to(&format!("/imports/{id}")))
}

/// Kept on the application state.
pub type Imports = Arc<Pending>;
