//! The "more" tab: the remaining sections of the record as forms of their own.
use super::*;

pub(super) fn section_title(lang: Lang, s: sections::Section) -> &'static str {
    use sections::Section as S;
    match s {
        S::Welfare => tr(lang, "welfare-liaison"),
        S::Household => tr(lang, "household"),
        S::Memo => tr(lang, "memo"),
        S::Interview => tr(lang, "interview"),
        S::UnderlyingConditions => tr(lang, "underlying-conditions-medication"),
        S::Admission => tr(lang, "admission"),
        S::CareContacts => tr(lang, "contacts-for-care"),
        S::ReleaseDate => tr(lang, "release-communicated"),
        S::InvestigationContacts => tr(lang, "people-found-by-the-investigation"),
    }
}

/// The label of a section field, Japanese first.
pub(super) fn field_label(lang: Lang, k: &str) -> &'static str {
    let key = match k {
        "disability" => "disability",
        "public_assistance" => "public-assistance",
        "childcare_needed" => "childcare-needed",
        "carer_needed" => "carer-needed",
        "other" => "other",
        "lives_with_elderly" => "lives-with-elderly-people",
        "lives_with_underlying_disease" => "lives-with-someone-with-an-underlying",
        "lives_with_immunosuppressed" => "lives-with-someone-immunosuppressed",
        "lives_with_pregnant" => "lives-with-someone-pregnant",
        "lives_with_healthcare_worker" => "lives-with-a-healthcare-worker",
        "members" => "members",
        "text" => "memo--console-person",
        "date" => "date--console-person",
        "institution" => "diagnosing-institution",
        "insurance_number" => "insurance-number",
        "symptoms" => "symptoms--console-person",
        "referred_by_institution" => "referred-by-institution",
        "referred_by_doctor" => "referred-by-doctor",
        "previous_admissions" => "previous-admissions",
        "remarks" => "remarks",
        "copd" => "copd-or-other-chronic-lung-disease",
        "diabetes" => "diabetes",
        "hypertension" => "hypertension",
        "dyslipidaemia" => "dyslipidaemia",
        "cerebrovascular" => "cerebrovascular-disease",
        "dementia" => "dementia",
        "medication" => "current-medication",
        "immunosuppressants" => "immunosuppressants",
        "anticancer_drugs" => "anti-cancer-drugs",
        "dialysis" => "dialysis",
        "pregnancy_weeks" => "weeks-of-pregnancy",
        "smoking_start_age" => "age-started-smoking",
        "cigarettes_per_day" => "cigarettes-a-day",
        "admitted_on" => "admitted-on",
        "discharged_on" => "discharged-on",
        "hospital" => "hospital--console-person",
        "doctor" => "doctor",
        "ards" => "ards",
        "xray_ct_findings" => "chest-x-ray-ct-findings",
        "icu" => "icu",
        "ventilator" => "ventilator",
        "ecmo" => "ecmo",
        "outcome" => "outcome-discharged-died-transferred-in",
        "died_on" => "died-on",
        "cause_of_death" => "cause-of-death",
        "emergency_hospital" => "emergency-hospital",
        "family_doctor" => "family-doctor",
        "follow_up_body" => "follow-up-body",
        "communicated_on" => "release-communicated-on",
        "contacts" => "people-one-per-line-name-phone-reached",
        _ => return "",
    };
    tr(lang, key)
}

/// Number fields of the sections (the rest are text, dates or yes/no).
pub(super) const NUMBER_FIELDS: &[&str] =
    &["pregnancy_weeks", "smoking_start_age", "cigarettes_per_day"];

pub(super) fn is_date_field(k: &str) -> bool {
    k.ends_with("_on") || k == "date"
}

/// The smaller record groups, each a form built from its document: yes/no as checkboxes,
/// dates as date inputs, household members one per line ("name, relation, phone") with a
/// link to register each as a close contact.
pub(super) fn details_sections(
    lang: Lang,
    who: &CurrentStaff,
    viewer: &mimamori_core::access::Viewer,
    p: &persons::Person,
    stored: &[sections::Stored],
    retry: Option<&SectionRetry>,
) -> Markup {
    html! {
        @for st in stored {
            @let writable = viewer.may(st.section.group(), Action::Write);
            @let retry = retry.filter(|r| r.section == st.section);
            @let data = retry.map_or(&st.data, |r| &r.doc);
            @let err = |k: &str| retry.and_then(|r| r.errors.iter().find(|e| e.field == k)).map(|e| e.message(lang));
            section class="card" id=(format!("section-{}", st.section.key())) {
                h2 { (section_title(lang, st.section)) }
                @if let Some(r) = retry { (not_saved(lang, &r.errors, Some(st.section.key()))) }
                @if let Some(at) = st.updated_at { p class="muted" { (tr(lang, "updated")) (at.with_timezone(&chrono_tz::Asia::Tokyo).format("%Y-%m-%d %H:%M")) } }
                form method="post" action=(format!("/persons/{}/sections/{}", p.id, st.section.key())) {
                    input type="hidden" name="csrf" value=(who.csrf);
                    @if let Some(obj) = data.as_object() {
                        @for (k, v) in obj {
                            @let id = format!("{}-{k}", st.section.key());
                            @let e = err(k);
                            @match v {
                                serde_json::Value::Bool(b) => {
                                    label style="font-weight:400" { input type="checkbox" id=(id) name=(k) value="true" checked[*b] disabled[!writable] style="width:auto"; " " (field_label(lang, k)) }
                                }
                                serde_json::Value::Array(members) => {
                                    label for=(id) { @if k == "contacts" { (field_label(lang, k)) } @else { (tr(lang, "members-one-per-line-name-relation-phone")) } }
                                    textarea id=(id) name=(k) rows="4" disabled[!writable] aria-invalid=[e.as_ref().map(|_| "true")] {
                                        @for m in members { (list_line(m)) "\n" }
                                    }
                                    @if let Some(e) = &e { div class="err" { (e) } }
                                    @if viewer.may(FieldGroup::Contacts, Action::Write) && p.monitoring_type == "patient" {
                                        ul { @for m in members { @if m["person_id"].is_null() && (k != "contacts" || m["close_contact"] == true) {
                                            li { (m["name"].as_str().unwrap_or("")) " — "
                                                a href=(format!("/persons/{}/contacts?{}", p.id, serde_urlencoded::to_string([("name", m["name"].as_str().unwrap_or("")), ("phone", m["phone"].as_str().unwrap_or(""))]).unwrap_or_default())) {
                                                    (tr(lang, "register-as-a-close-contact")) } }
                                        } } }
                                    }
                                }
                                _ => {
                                    label for=(id) { (field_label(lang, k)) }
                                    input id=(id) name=(k) disabled[!writable] aria-invalid=[e.as_ref().map(|_| "true")]
                                        type=(if is_date_field(k) { "date" } else if NUMBER_FIELDS.contains(&k.as_str()) && e.is_none() { "number" } else { "text" })
                                        value=(match v { serde_json::Value::String(x) => x.clone(), serde_json::Value::Number(n) => n.to_string(), _ => String::new() });
                                    @if let Some(e) = &e { div class="err" { (e) } }
                                }
                            }
                        }
                    }
                    @if writable { button type="submit" { (tr(lang, "save--console-person-2")) } }
                }
            }
        }
    }
}

/// One person of a list field as a line of its textarea.
pub(super) fn list_line(m: &serde_json::Value) -> String {
    let s = |k: &str| m[k].as_str().unwrap_or("").to_string();
    let yn = |k: &str| if m[k] == true { "はい" } else { "いいえ" }.to_string();
    if m.get("relation").is_some() {
        [s("name"), s("relation"), s("phone")].join(", ")
    } else {
        [s("name"), s("phone"), yn("reached"), yn("close_contact")].join(", ")
    }
}

/// A section's document from its form: the fields of the section's empty document, each
/// read back by its kind.
pub(super) fn section_from_form(
    section: sections::Section,
    form: &[(String, String)],
    today: NaiveDate,
) -> serde_json::Value {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim());
    let template = section
        .validate(&serde_json::json!({}), today)
        .unwrap_or_default();
    let mut out = serde_json::Map::new();
    if let Some(obj) = template.as_object() {
        for (k, v) in obj {
            let value = match v {
                serde_json::Value::Bool(_) => serde_json::Value::Bool(get(k).is_some()),
                serde_json::Value::Array(_) => serde_json::Value::Array(
                    get(k)
                        .unwrap_or("")
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(|l| {
                            let mut parts = l.split(',').map(str::trim);
                            let name = parts.next().unwrap_or("");
                            let second = parts.next().filter(|x| !x.is_empty());
                            let third = parts.next().filter(|x| !x.is_empty());
                            if k == "contacts" {
                                let yes = |x: Option<&str>| matches!(x, Some("はい" | "yes" | "y" | "1" | "○"));
                                let close = parts.next();
                                serde_json::json!({"name": name, "phone": second, "reached": yes(third), "close_contact": yes(close)})
                            } else {
                                serde_json::json!({"name": name, "relation": second, "phone": third})
                            }
                        })
                        .collect(),
                ),
                _ => match get(k) {
                    None | Some("") => serde_json::Value::Null,
                    Some(x) if NUMBER_FIELDS.contains(&k.as_str()) => x
                        .parse::<u64>()
                        .map(serde_json::Value::from)
                        .unwrap_or_else(|_| serde_json::Value::String(x.to_string())),
                    Some(x) => serde_json::Value::String(x.to_string()),
                },
            };
            out.insert(k.clone(), value);
        }
    }
    serde_json::Value::Object(out)
}

pub(super) async fn save_section(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path((id, key)): Path<(i64, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, HtmlError> {
    let csrf = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    who.check_csrf(csrf)?;
    let section =
        sections::Section::parse(&key).ok_or(mimamori_core::Error::NotFound("section"))?;
    let doc = section_from_form(section, &form, japan_today());
    let ip = addr.ip().to_string();
    match sections::put(
        &s.db,
        &who.viewer(),
        id,
        section,
        &doc,
        japan_today(),
        Some(&ip),
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/persons/{id}?tab=details")).into_response()),
        // Shown again as typed, with the problems beside their fields.
        Err(mimamori_core::Error::Invalid(errors)) => {
            let retry = Retry::Section(SectionRetry {
                section,
                doc,
                errors,
            });
            let html = page(&s, &who, lang, &ip, id, "details", Some(&retry)).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
