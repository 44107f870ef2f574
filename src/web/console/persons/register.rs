//! Registering a person or a close contact from the console (through
//! `mimamori_core::registration`, as the API).
use super::*;

pub(super) fn form_markup(
    lang: Lang,
    who: &CurrentStaff,
    v: &persons::PersonInput,
    errors: &[mimamori_core::FieldError],
    dups: &[persons::DuplicateCandidate],
) -> Markup {
    let action = match v.source_person_id {
        Some(src) => format!("/persons/{src}/contacts"),
        None => "/persons".to_string(),
    };
    let err = |f: &str| {
        errors
            .iter()
            .find(|e| e.field == f)
            .map(|e| e.message(lang))
    };
    let field = |name: &'static str,
                 label: &'static str,
                 kind: &'static str,
                 value: &str,
                 hint: &'static str| {
        let e = err(name);
        html! {
            label for=(name) { (label) }
            @if !hint.is_empty() { div class="muted" id=(format!("{name}-hint")) { (hint) } }
            input id=(name) name=(name) type=(kind) value=(value)
                aria-invalid=[e.as_ref().map(|_| "true")]
                aria-describedby=(format!("{name}-hint {name}-err"));
            @if let Some(e) = e { div class="err" id=(format!("{name}-err")) { (e) } }
        }
    };
    let today = crate::web::japan_today();
    let start = if v.observation_start.is_empty() {
        today.to_string()
    } else {
        v.observation_start.clone()
    };
    let end = v.observation_end.clone();
    let checkin_time = if v.checkin_time.is_empty() {
        "09:00".to_string()
    } else {
        v.checkin_time.clone()
    };
    let channel = if v.channel.is_empty() {
        "sms"
    } else {
        v.channel.as_str()
    };
    html! {
        (crate::web::console::forms::error_summary(lang, errors, REGISTRATION_FIELDS))
        form method="post" action=(action) novalidate {
            input type="hidden" name="csrf" value=(who.csrf);
            @if !dups.is_empty() {
                (duplicates_panel(lang, dups))
                label style="font-weight:400" { input type="checkbox" name="not_duplicate" value="true" style="width:auto"; " " (tr(lang, "register-as-a-different-person")) }
            }
            p class="muted" { (tr(lang, "marks-required-fields-a-phone-number-is")) }
            (field("name", tr(lang, "name--console-persons"), "text", &v.name, ""))
            (field("phone", tr(lang, "phone--console-persons"), "tel", &v.phone, tr(lang, "e-g-090-1234-5678")))
            (field("email", tr(lang, "e-mail--console-persons"), "email", &v.email, ""))
            label for="channel" { (tr(lang, "daily-contact-by")) }
            select id="channel" name="channel" {
                option value="sms" selected[channel == "sms"] { (tr(lang, "sms-with-link")) }
                option value="email" selected[channel == "email"] { (tr(lang, "e-mail--console-person")) }
                option value="voice" selected[channel == "voice"] { (tr(lang, "automated-voice-call")) }
            }
            label for="fallback_channel" { (tr(lang, "if-unanswered-also-try-optional")) }
            select id="fallback_channel" name="fallback_channel" {
                option value="" selected[v.fallback_channel.is_empty()] { (tr(lang, "none--console-persons")) }
                option value="voice" selected[v.fallback_channel == "voice"] { (tr(lang, "automated-voice-call")) }
                option value="sms" selected[v.fallback_channel == "sms"] { (tr(lang, "sms-with-link")) }
                option value="email" selected[v.fallback_channel == "email"] { (tr(lang, "e-mail--console-person")) }
            }
            label style="font-weight:400" {
                input type="checkbox" name="slow_speech" value="true" checked[v.slow_speech] style="width:auto";
                " " (tr(lang, "automated-calls-read-slowly-and-wait"))
            }
            label for="language" { (tr(lang, "language")) }
            select id="language" name="language" {
                option value="ja" selected[v.language != "en"] { "日本語" }
                option value="en" selected[v.language == "en"] { "English" }
            }
            label for="monitoring_type" { (tr(lang, "type")) }
            select id="monitoring_type" name="monitoring_type" {
                option value="patient" selected[v.monitoring_type != "contact"] { (tr(lang, "patient-at-home")) }
                option value="contact" selected[v.monitoring_type == "contact"] { (tr(lang, "close-contact--console-persons")) }
            }
            (field("onset_date", tr(lang, "onset-date-symptomatic-patient"), "date", &v.onset_date, ""))
            (field("specimen_date", tr(lang, "specimen-date-asymptomatic-patient"), "date", &v.specimen_date, ""))
            (field("last_exposure_date", tr(lang, "last-exposure-close-contact"), "date", &v.last_exposure_date, ""))
            (field("observation_start", tr(lang, "observation-starts"), "date", &start, ""))
            (field("observation_end", tr(lang, "observation-ends"), "date", &end,
                tr(lang, "empty-computed-from-the-date-above-and")))
            (field("period_override_reason", tr(lang, "reason-for-an-end-date-other-than-the"), "text", &v.period_override_reason, ""))
            (field("checkin_time", tr(lang, "daily-check-in-times"), "text", &checkin_time,
                tr(lang, "japan-time-the-health-centre-s-clock-e-g")))
            (field("date_of_birth", tr(lang, "date-of-birth-identifies-callers-on-the"), "date", &v.date_of_birth, ""))
            (field("name_kana", tr(lang, "name-in-kana-used-to-find-duplicates"), "text", &v.name_kana, ""))
            details open[has_details(v)] {
                summary { (tr(lang, "more-basic-information-optional")) }
                label for="sex" { (tr(lang, "sex--console-person")) }
                select id="sex" name="sex" {
                    option value="" { "—" }
                    @for (k, key) in [("male", "male"), ("female", "female"), ("other", "other"), ("unknown", "unknown")] {
                        option value=(k) selected[v.sex == k] { (tr(lang, key)) }
                    }
                }
                (field("nationality", tr(lang, "nationality--console-persons"), "text", &v.nationality, ""))
                (field("prefecture_code", tr(lang, "address-prefecture-code"), "text", &v.prefecture_code, tr(lang, "e-g-13-tokyo")))
                (field("municipality", tr(lang, "address-municipality"), "text", &v.municipality, ""))
                (field("address", tr(lang, "address-the-rest"), "text", &v.address, ""))
                (field("occupation", tr(lang, "occupation--console-persons"), "text", &v.occupation, ""))
                (field("workplace", tr(lang, "workplace-or-school"), "text", &v.workplace, ""))
                (field("emergency_contact", tr(lang, "emergency-contact--console-person"), "text", &v.emergency_contact, ""))
                (field("reception_date", tr(lang, "reception-date-empty-today"), "date", &v.reception_date, ""))
            }
            @if let Some(src) = v.source_person_id { input type="hidden" name="source_person_id" value=(src); }
            @if let Some(b) = v.behaviour_id { input type="hidden" name="behaviour_id" value=(b); }
            button type="submit" { (tr(lang, "register")) }
        }
    }
}

/// The fields on the registration form (an error about any other is named in words).
pub(super) const REGISTRATION_FIELDS: &[&str] = &[
    "name",
    "phone",
    "email",
    "channel",
    "fallback_channel",
    "language",
    "monitoring_type",
    "onset_date",
    "specimen_date",
    "last_exposure_date",
    "observation_start",
    "observation_end",
    "period_override_reason",
    "checkin_time",
    "date_of_birth",
    "name_kana",
    "sex",
    "nationality",
    "prefecture_code",
    "municipality",
    "address",
    "occupation",
    "workplace",
    "emergency_contact",
    "reception_date",
];

pub(super) fn has_details(v: &persons::PersonInput) -> bool {
    [
        &v.sex,
        &v.nationality,
        &v.prefecture_code,
        &v.municipality,
        &v.address,
        &v.occupation,
        &v.workplace,
        &v.emergency_contact,
        &v.reception_date,
    ]
    .iter()
    .any(|f| !f.is_empty())
}

/// The "possible duplicate" panel: who matched and on what, with a way to register anyway.
pub(super) fn duplicates_panel(lang: Lang, dups: &[persons::DuplicateCandidate]) -> Markup {
    html! {
        div class="errors" role="alert" id="duplicates" {
            p { strong { (tr(lang, "this-may-be-a-person-already-registered")) } }
            ul {
                @for d in dups {
                    li {
                        a href=(format!("/persons/{}", d.id)) { (d.name) } " (ID " (d.id) ") — "
                        (tr(lang, "matched"))
                        (d.matched.iter().map(|m| match *m {
                            "name_kana" => tr(lang, "kana-name"),
                            "date_of_birth" => tr(lang, "date-of-birth"),
                            "phone" => tr(lang, "phone--console-persons-2"),
                            "sex" => tr(lang, "sex"),
                            _ => tr(lang, "address"),
                        }).collect::<Vec<_>>().join("、"))
                    }
                }
            }
            p { (tr(lang, "if-this-is-someone-else-tick-register-as")) }
        }
    }
}

pub(super) async fn new_form(
    who: CurrentStaff,
    UiLang(lang): UiLang,
) -> Result<Html<String>, HtmlError> {
    who.require_health_centre()?;
    Ok(layout::page(
        lang,
        &who,
        tr(lang, "register-a-person--console-persons"),
        form_markup(lang, &who, &persons::PersonInput::default(), &[], &[]),
    ))
}

pub(super) async fn create(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Form(f): Form<RegisterForm>,
) -> Result<Response, HtmlError> {
    who.require_health_centre()?;
    who.check_csrf(&f.csrf)?;
    register(&s, &who, lang, &addr, f).await
}

pub(super) async fn new_contact_form(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Query(q): Query<ContactQuery>,
) -> Result<Html<String>, HtmlError> {
    let mut v = persons::PersonInput {
        behaviour_id: q.behaviour,
        name: q.name,
        phone: q.phone,
        ..Default::default()
    };
    mimamori_core::store::registry::as_contact_of(&s.db, Access::Staff(&who.viewer()), id, &mut v)
        .await?;
    Ok(layout::page(
        lang,
        &who,
        tr(lang, "register-a-close-contact--console-persons"),
        form_markup(lang, &who, &v, &[], &[]),
    ))
}

pub(super) async fn create_contact(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Form(mut f): Form<RegisterForm>,
) -> Result<Response, HtmlError> {
    who.require_health_centre()?;
    who.check_csrf(&f.csrf)?;
    mimamori_core::store::registry::as_contact_of(
        &s.db,
        Access::Staff(&who.viewer()),
        id,
        &mut f.person,
    )
    .await?;
    register(&s, &who, lang, &addr, f).await
}

/// Registers from the console form: validation errors and possible duplicates re-show the
/// form with what was typed.
pub(super) async fn register(
    s: &AppState,
    who: &CurrentStaff,
    lang: Lang,
    addr: &std::net::SocketAddr,
    f: RegisterForm,
) -> Result<Response, HtmlError> {
    let title = if f.person.source_person_id.is_some() {
        tr(lang, "register-a-close-contact--console-persons")
    } else {
        tr(lang, "register-a-person--console-persons")
    };
    let ip = addr.ip().to_string();
    match registration::register(&s.db, &who.viewer(), &f.person, s.registration(Some(&ip))).await {
        Ok(Registration::Done(id)) => Ok(Redirect::to(&format!("/persons/{id}")).into_response()),
        Ok(Registration::PossibleDuplicates(dups)) => Ok((
            axum::http::StatusCode::CONFLICT,
            layout::page(
                lang,
                who,
                title,
                form_markup(lang, who, &f.person, &[], &dups),
            ),
        )
            .into_response()),
        Err(Error::Invalid(errors)) => Ok((
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            crate::web::console::forms::page(
                lang,
                who,
                title,
                &errors,
                form_markup(lang, who, &f.person, &errors, &[]),
            ),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}
