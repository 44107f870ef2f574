//! The record tab: basic information, tests, severity, residence and moves, close contacts,
//! and who else sees the person (assignment, sharing).
use super::*;

#[derive(Deserialize)]
pub(super) struct AssignForm {
    csrf: String,
    organisation_id: i64,
}

/// Health-centre staff assign a person to an outside body of theirs (follow-up contractor,
/// lodging facility, medical institution), which then sees them as its matrix row allows.
pub(super) async fn assign(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    Form(f): Form<AssignForm>,
) -> Result<Response, HtmlError> {
    who.require_health_centre()?;
    who.check_csrf(&f.csrf)?;
    let ip = addr.ip().to_string();
    assignments::assign(
        &s.db,
        Access::Staff(&who.viewer()),
        id,
        f.organisation_id,
        Some(&ip),
    )
    .await?;
    Ok(Redirect::to(&format!("/persons/{id}?tab=record")).into_response())
}

pub(super) fn severity_label(lang: Lang, l: &str) -> &'static str {
    codes::Severity::parse(l)
        .unwrap_or(codes::Severity::Severe)
        .label(lang)
}

pub(super) fn test_result_label(lang: Lang, r: &str) -> &'static str {
    codes::TestResult::parse(r)
        .unwrap_or(codes::TestResult::Inconclusive)
        .label(lang)
}

/// Basic information, test records, severity and close contacts — each only for roles that
/// may read its field group, with its form only for those who may write it.
#[allow(clippy::too_many_arguments)]
pub(super) fn registry_sections(
    lang: Lang,
    who: &CurrentStaff,
    viewer: &mimamori_core::access::Viewer,
    p: &persons::Person,
    tests: &[registry::TestRecord],
    severities: &[registry::Severity],
    contacts: &[persons::Person],
    retry: Option<&Retry>,
    prefecture: Option<&str>,
) -> Markup {
    let may = |g: FieldGroup, a: Action| viewer.may(g, a);
    let tf = Refill::of(retry, "tests", lang);
    let sf = Refill::of(retry, "severities", lang);
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    html! {
        @if may(FieldGroup::Basic, Action::Read) {
        section class="card" {
            h2 { (tr(lang, "basic-information")) }
            @if may(FieldGroup::Basic, Action::Write) { p { a href=(format!("/persons/{}/edit", p.id)) { (tr(lang, "edit-basic-information")) } } }
            dl class="kv" {
                dt { (tr(lang, "kana--console-person")) } dd { (opt(&p.name_kana)) }
                dt { (tr(lang, "date-of-birth--console-person")) } dd { (p.date_of_birth.map(|d| d.to_string()).unwrap_or_else(|| "—".into()))
                    @if let Some(b) = p.age_band(japan_today()) { " (" (b) ")" } }
                dt { (tr(lang, "sex--console-person")) } dd { (p.sex.as_deref().map(|s| crate::web::console::forms::sex_label(lang, s)).unwrap_or("—")) }
                dt { (tr(lang, "address--console-person")) } dd {
                    (prefecture.or(p.prefecture_code.as_deref()).unwrap_or("—")) " "
                    (p.municipality.as_deref().unwrap_or("")) " " (p.address.as_deref().unwrap_or(""))
                }
                dt { (tr(lang, "occupation-workplace")) } dd { (opt(&p.occupation)) " / " (opt(&p.workplace)) }
                dt { (tr(lang, "emergency-contact--console-person")) } dd { (opt(&p.emergency_contact)) }
                dt { (tr(lang, "onset-specimen-last-exposure")) }
                dd { (p.onset_date.map(|d| d.to_string()).unwrap_or_else(|| "—".into())) " / "
                     (p.specimen_date.map(|d| d.to_string()).unwrap_or_else(|| "—".into())) " / "
                     (p.last_exposure_date.map(|d| d.to_string()).unwrap_or_else(|| "—".into())) }
                dt { (tr(lang, "period-from")) }
                dd { @if let Some(r) = &p.period_rule { (tr(lang, "rule")) (r) } @else if let Some(r) = &p.period_override_reason { (tr(lang, "override")) (r) } @else { "—" } }
                @if let Some(src) = p.source_person_id {
                    dt { (tr(lang, "source-case")) } dd { a href=(format!("/persons/{src}")) { "ID " (src) } }
                }
            }
        }
        }
        @if may(FieldGroup::Tests, Action::Read) {
        section class="card" {
            h2 { (tr(lang, "tests")) }
            @if tests.is_empty() { p class="muted" { (tr(lang, "none-recorded--console-person")) } }
            @else {
                table {
                    thead { tr { th { (tr(lang, "specimen")) } th { (tr(lang, "method")) } th { (tr(lang, "result")) } th { (tr(lang, "result-date")) } th { (tr(lang, "laboratory")) } } }
                    tbody { @for r in tests { tr {
                        td { (r.specimen_date) } td { (r.method.as_deref().unwrap_or("—")) }
                        td { strong class=(if r.result == "positive" { "err" } else { "" }) { (test_result_label(lang, &r.result)) } }
                        td { (r.result_date.map(|d| d.to_string()).unwrap_or_else(|| "—".into())) }
                        td { (r.laboratory.as_deref().unwrap_or("—")) }
                    } } }
                }
            }
            @if may(FieldGroup::Tests, Action::Write) {
            details open[tf.open()] {
                summary { (tr(lang, "add-a-test")) }
                (tf.summary())
                form method="post" action=(format!("/persons/{}/tests", p.id)) {
                    input type="hidden" name="csrf" value=(who.csrf);
                    label for="t-specimen" { (tr(lang, "specimen-date")) }
                    input id="t-specimen" name="specimen_date" type="date" required value=[tf.v("specimen_date")] aria-invalid=[tf.invalid("specimen_date")];
                    (tf.note("specimen_date"))
                    label for="t-method" { (tr(lang, "method")) }
                    select id="t-method" name="method" aria-invalid=[tf.invalid("method")] { @for m in registry::TEST_METHODS { option value=(m) selected[tf.v("method") == Some(*m)] { (m) } } }
                    (tf.note("method"))
                    label for="t-result" { (tr(lang, "result")) }
                    select id="t-result" name="result" aria-invalid=[tf.invalid("result")] { @for r in registry::TEST_RESULTS { option value=(r) selected[tf.v("result").map_or(*r == "pending", |v| v == *r)] { (test_result_label(lang, r)) } } }
                    (tf.note("result"))
                    label for="t-contact" { (tr(lang, "planned-contact-date-optional")) }
                    input id="t-contact" name="planned_contact_date" type="date" value=[tf.v("planned_contact_date")] aria-invalid=[tf.invalid("planned_contact_date")];
                    (tf.note("planned_contact_date"))
                    label for="t-rdate" { (tr(lang, "result-date-optional")) }
                    input id="t-rdate" name="result_date" type="date" value=[tf.v("result_date")] aria-invalid=[tf.invalid("result_date")];
                    (tf.note("result_date"))
                    label for="t-lab" { (tr(lang, "laboratory-optional")) }
                    input id="t-lab" name="laboratory" value=[tf.v("laboratory")] aria-invalid=[tf.invalid("laboratory")];
                    (tf.note("laboratory"))
                    button type="submit" { (tr(lang, "add")) }
                }
            }
            }
        }
        }
        @if may(FieldGroup::Severity, Action::Read) {
        section class="card" {
            h2 { (tr(lang, "severity")) }
            ul { @for v in severities { li { (v.from_date) " " strong { (severity_label(lang, &v.level)) } } }
                 @if severities.is_empty() { li class="muted" { (tr(lang, "none-recorded--console-person")) } } }
            @if may(FieldGroup::Severity, Action::Write) {
            (sf.summary())
            form method="post" action=(format!("/persons/{}/severities", p.id)) style="display:flex;gap:.5rem;align-items:flex-end;flex-wrap:wrap" {
                input type="hidden" name="csrf" value=(who.csrf);
                label { (tr(lang, "severity")) " "
                    select name="level" style="width:auto" aria-invalid=[sf.invalid("level")] { @for l in registry::SEVERITY_LEVELS { option value=(l) selected[sf.v("level") == Some(*l)] { (severity_label(lang, l)) } } } }
                label { (tr(lang, "from-empty-today--console-person")) " " input name="from_date" type="date" style="width:auto" value=[sf.v("from_date")] aria-invalid=[sf.invalid("from_date")]; }
                button type="submit" style="margin:0" { (tr(lang, "record--console-person-2")) }
            }
            }
        }
        }
        @if may(FieldGroup::Contacts, Action::Read) && p.monitoring_type == "patient" {
        section class="card" {
            h2 { (tr(lang, "close-contacts")) }
            ul { @for c in contacts { li { a href=(format!("/persons/{}", c.id)) { (c.name) } " · " (c.observation_start) " – " (c.observation_end) } }
                 @if contacts.is_empty() { li class="muted" { (tr(lang, "none-registered")) } } }
            @if may(FieldGroup::Contacts, Action::Write) {
                a class="button" href=(format!("/persons/{}/contacts", p.id)) { (tr(lang, "register-a-close-contact")) }
            }
        }
        }
    }
}

/// Records a move (a hospital stay stops the check-ins at once).
pub(super) async fn residence(f: Posted) -> Result<Response, HtmlError> {
    let (s, who, ip, id) = (&f.s, &f.who, f.ip.clone(), f.id);
    f.run(
        "residence",
        "record",
        move |input: residences::ResidenceInput| async move {
            add_residence(s, who, id, &input, &ip).await.map(|_| ())
        },
    )
    .await
}

/// Validates a move against the health centre's local date and records it; shared by the
/// console and the API.
pub async fn add_residence(
    s: &AppState,
    who: &CurrentStaff,
    id: i64,
    input: &residences::ResidenceInput,
    ip: &str,
) -> mimamori_core::Result<i64> {
    let p = persons::get(&s.db, Access::Staff(&who.viewer()), id, None).await?;
    let tz: chrono_tz::Tz = p.time_zone.parse().unwrap_or(chrono_tz::Asia::Tokyo);
    let r = input.parse(checkins::local_date(tz, mimamori_core::db::now()))?;
    let window = chrono::Duration::minutes(s.config.checkin.answer_window_minutes);
    let rid = residences::add(&s.db, &who.viewer(), id, &r, window, Some(ip)).await?;
    tracing::info!(
        person_id = id,
        staff_id = who.id,
        kind = r.kind,
        "residence recorded"
    );
    Ok(rid)
}

pub(super) async fn add_test(f: Posted) -> Result<Response, HtmlError> {
    let (db, viewer, ip, id) = (&f.s.db, f.who.viewer(), f.ip.clone(), f.id);
    f.run(
        "tests",
        "record",
        move |input: registry::TestInput| async move {
            let t = input.parse(japan_today())?;
            registry::add_test(db, &viewer, id, &t, Some(&ip))
                .await
                .map(|_| ())
        },
    )
    .await
}

pub(super) async fn add_severity(f: Posted) -> Result<Response, HtmlError> {
    let (db, viewer, ip, id) = (&f.s.db, f.who.viewer(), f.ip.clone(), f.id);
    f.run(
        "severities",
        "record",
        move |input: registry::SeverityInput| async move {
            let sv = input.parse(japan_today())?;
            registry::add_severity(db, &viewer, id, sv, Some(&ip))
                .await
                .map(|_| ())
        },
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct ShareForm {
    csrf: String,
    health_centre_id: i64,
}

/// Shares the record with a related health centre, which sees it at once.
pub(super) async fn share(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    Form(f): Form<ShareForm>,
) -> Result<Response, HtmlError> {
    who.require_health_centre()?;
    who.check_csrf(&f.csrf)?;
    let ip = addr.ip().to_string();
    assignments::share(
        &s.db,
        Access::Staff(&who.viewer()),
        id,
        f.health_centre_id,
        Some(&ip),
    )
    .await?;
    Ok(Redirect::to(&format!("/persons/{id}?tab=record")).into_response())
}
