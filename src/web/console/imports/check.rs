//! The dry run of an uploaded file, as a task of its own: answered at once when it ends
//! within a few seconds, else behind the progress page; its report waits for the go-ahead.
use super::*;

/// How long the upload's request waits for its dry run before it answers with the progress
/// page instead (at most a fifth of `http.request_timeout_secs`).
pub(super) const DRY_RUN_INLINE: std::time::Duration = std::time::Duration::from_secs(3);

/// A dry run of an uploaded file, for [`upload`]: its report is kept under `token` for the
/// go-ahead, and the run's progress and end in `running` (for the progress page).
pub(super) struct Check {
    pub(super) s: AppState,
    pub(super) viewer: mimamori_core::access::Viewer,
    pub(super) staff_id: i64,
    pub(super) lang: Lang,
    pub(super) token: String,
    pub(super) file_name: String,
    pub(super) bytes: Vec<u8>,
    /// The file's share of `http.import_files_mb`, passed on to the waiting upload.
    pub(super) held: Held,
    pub(super) mapping: Mapping,
    pub(super) contacts_of: Option<i64>,
}

impl Check {
    pub(super) async fn run(self) -> Result<bool, Error> {
        let pending = self.s.imports.clone();
        let token = self.token.clone();
        let r = self.check().await;
        let state = match &r {
            Ok(true) => Running::Checked,
            Ok(false) => Running::Superseded,
            Err(Error::Invalid(f)) => Running::Refused(f.clone()),
            Err(e) => {
                tracing::error!(error = %e, "console dry run failed");
                Running::Failed(e.to_string())
            }
        };
        if let Some(run) = pending.running.lock().expect("lock").get_mut(&token) {
            (run.state, run.at) = (state, std::time::Instant::now());
        }
        r
    }

    /// Whether the report was kept: false when the member uploaded a newer file while this
    /// one was being checked (the newer one's report is the one that waits).
    async fn check(self) -> Result<bool, Error> {
        let s = &self.s;
        let pending = s.imports.clone();
        let periods = s.periods.clone();
        let report_csv = std::sync::Mutex::new(Vec::new());
        let to_report = |b: &[u8]| {
            report_csv.lock().expect("report").extend_from_slice(b);
            Ok(())
        };
        let progress = |read: usize, total: usize| {
            if total == 0
                && let Some(r) = pending.running.lock().expect("lock").get_mut(&self.token)
            {
                r.state = Running::Checking { read };
            }
        };
        let opt = imports::Options {
            periods: &periods,
            today: japan_today(),
            file_name: &self.file_name,
            progress: &progress,
            lang: self.lang,
            report_csv: Some(&to_report),
        };
        let window = chrono::Duration::minutes(s.config.checkin.answer_window_minutes);
        let report = match self.contacts_of {
            Some(case) => {
                let sheet = import::read(&self.bytes, &self.mapping.encoding)?;
                imports::contacts(&s.db, &self.viewer, case, &sheet, true, window, opt).await?
            }
            None => imports::dry_run(&s.db, &self.viewer, &self.mapping, &self.bytes, opt).await?,
        };
        let mut report_csv = report_csv.into_inner().expect("report");
        let mut ups = pending.uploads.lock().expect("lock");
        // Under the uploads' lock, as the newer upload's `let_go` is: whichever check ends
        // last, the member's latest file is the one kept.
        if pending.latest.lock().expect("lock").get(&self.staff_id) != Some(&self.token) {
            return Ok(false);
        }
        let_go(&mut ups, self.staff_id);
        ups.insert(
            self.token,
            Upload {
                staff_id: self.staff_id,
                contacts_of: self.contacts_of,
                at: std::time::Instant::now(),
                file_name: self.file_name,
                mapping: self.mapping,
                bytes: self.bytes,
                report_csv: if report_csv.is_empty() {
                    report.csv()
                } else {
                    std::mem::take(&mut report_csv)
                },
                report,
                _held: self.held,
            },
        );
        Ok(true)
    }
}

/// A dry run's report, with the button that starts the import (the upload's answer, or the
/// page its progress page leads to).
pub(super) fn dry_run_page(
    lang: Lang,
    who: &CurrentStaff,
    s: &AppState,
    token: &str,
) -> Result<Response, HtmlError> {
    let ups = s.imports.uploads.lock().expect("lock");
    let up = ups
        .get(token)
        .filter(|u| u.staff_id == who.id)
        .ok_or(AppError::Core(Error::NotFound("dry run")))?;
    let body = html! {
        p { (tr(lang, "import-dry-run-lead")) " " strong { (up.file_name) } }
        (summary(lang, &up.report))
        p class="actions" {
            a class="button" href=(format!("/imports/pending/{token}/report.csv")) { (tr(lang, "import-download-report")) }
        }
        (problem_rows(lang, &up.report))
        @if up.report.created + up.report.linked + up.report.repositive == 0 {
            // Nothing would be written: no go-ahead to press, and the way back to the form.
            div class="card" {
                p { (tr(lang, "import-nothing-to-import")) }
                p { a class="button" href="/imports" { (tr(lang, "import-check-another")) } }
            }
        } @else {
            form method="post" action="/imports" enctype="multipart/form-data" class="card" {
                input type="hidden" name="csrf" value=(who.csrf);
                input type="hidden" name="token" value=(token);
                p { (tr(lang, "import-go-ahead-help")) }
                button type="submit" { (tr(lang, "import-run")) }
            }
        }
    };
    Ok(layout::page(lang, who, tr(lang, "import-dry-run"), body).into_response())
}

/// `GET /imports/pending/{token}`: a dry run's report, once its progress page has seen it end.
pub(super) async fn pending_page(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Path(token): Path<String>,
) -> Result<Response, HtmlError> {
    may(&who)?;
    dry_run_page(lang, &who, &s, &token)
}

pub(super) async fn pending_csv(
    State(s): State<AppState>,
    who: CurrentStaff,
    Path(token): Path<String>,
) -> Result<Response, HtmlError> {
    may(&who)?;
    let ups = s.imports.uploads.lock().expect("lock");
    let up = ups
        .get(&token)
        .filter(|u| u.staff_id == who.id)
        .ok_or(AppError::Core(Error::NotFound("dry run")))?;
    Ok(csv(up.report_csv.clone(), "dry-run-report.csv"))
}
