//! The counts-only daily report [日次報告] of medical institutions (and of health centres
//! for a faxed report).
use super::*;

#[derive(Deserialize, Default)]
pub(super) struct DailyQuery {
    #[serde(default)]
    day: String,
    #[serde(default)]
    saved: String,
}

pub(super) fn daily_markup(
    lang: Lang,
    who: &CurrentStaff,
    day: &str,
    values: &std::collections::BTreeMap<String, String>,
    errors: &[mimamori_core::FieldError],
    saved: Option<&str>,
) -> Markup {
    html! {
        @if !errors.is_empty() {
            div class="error-summary" role="alert" tabindex="-1" {
                h2 { (tr(lang, "stats-fix-these")) }
                ul { @for e in errors { li { a href=(format!("#{}", e.field)) { (e.message(lang)) } } } }
            }
        }
        @if let Some(n) = saved {
            div class="done" role="status" { p { (tr(lang, "stats-daily-saved")) " " strong { (n) } } }
        }
        p { (tr(lang, "stats-daily-lead")) }
        form method="post" action="/daily-report" class="card" novalidate {
            input type="hidden" name="csrf" value=(who.csrf);
            label for="day" { (tr(lang, "stats-day")) }
            input type="date" id="day" name="day" value=(day) required;
            fieldset {
                legend { (tr(lang, "stats-positives-by-age")) }
                div style="display:grid;grid-template-columns:repeat(auto-fill,minmax(9rem,1fr));gap:.3rem 1rem" {
                    @for b in AGE_BANDS {
                        @let field = stats::field_of(b);
                        div {
                            label for=(field) { (label(lang, "age", b)) }
                            input type="number" min="0" inputmode="numeric" id=(field) name=(field)
                                value=(values.get(b).cloned().unwrap_or_default())
                                aria-invalid=[errors.iter().any(|e| e.field == field).then_some("true")];
                        }
                    }
                }
            }
            button type="submit" { (tr(lang, "stats-daily-save")) }
        }
    }
}

pub(super) fn may_report(who: &CurrentStaff) -> Result<(), HtmlError> {
    match who.role {
        Role::MedicalInstitution | Role::HealthCentreStaff => Ok(()),
        _ => Err(Error::Forbidden(
            "daily reports are entered by medical institutions and health centres",
        )
        .into()),
    }
}

pub(super) async fn daily_form(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Query(q): Query<DailyQuery>,
) -> Result<Html<String>, HtmlError> {
    may_report(&who)?;
    let day = q.day.parse::<NaiveDate>().unwrap_or_else(|_| japan_today());
    let have = stats::daily_counts(&s.db, &who.viewer(), who.health_centre_id, day).await?;
    let values = have.into_iter().map(|(b, n)| (b, n.to_string())).collect();
    let saved = (!q.saved.is_empty()).then_some(q.saved.as_str());
    Ok(layout::page(
        lang,
        &who,
        tr(lang, "stats-daily-report"),
        daily_markup(lang, &who, &day.to_string(), &values, &[], saved),
    ))
}

pub(super) async fn daily_save(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Result<Response, HtmlError> {
    may_report(&who)?;
    who.check_csrf(form.get("csrf").map(String::as_str).unwrap_or(""))?;
    let day = form.get("day").cloned().unwrap_or_default();
    let counts: std::collections::BTreeMap<String, String> = AGE_BANDS
        .iter()
        .map(|b| {
            (
                b.to_string(),
                form.get(stats::field_of(b)).cloned().unwrap_or_default(),
            )
        })
        .collect();
    let input = stats::DailyCountInput {
        day: day.clone(),
        counts: counts.clone(),
        health_centre_id: None,
    };
    match stats::put_daily_counts(&s.db, &who.viewer(), &input, japan_today()).await {
        Ok(total) => {
            Ok(Redirect::to(&format!("/daily-report?day={day}&saved={total}")).into_response())
        }
        Err(Error::Invalid(errors)) => {
            let title = format!(
                "{}: {}",
                tr(lang, "stats-error"),
                tr(lang, "stats-daily-report")
            );
            let mut r = layout::page_titled(
                lang,
                &who,
                &title,
                tr(lang, "stats-daily-report"),
                daily_markup(lang, &who, &day, &counts, &errors, None),
            )
            .into_response();
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}
