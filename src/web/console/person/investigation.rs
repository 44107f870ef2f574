//! The investigation tab [積極的疫学調査]: behaviour history and the infection link.
use super::*;

pub(super) fn setting_label(lang: Lang, s: &str) -> &'static str {
    match s {
        "home" => tr(lang, "home-family"),
        "work" => tr(lang, "work"),
        "school" => tr(lang, "school-childcare"),
        "restaurant" => tr(lang, "restaurant"),
        "medical" => tr(lang, "medical"),
        "welfare" => tr(lang, "welfare-facility--console-person"),
        "transport" => tr(lang, "transport"),
        "event" => tr(lang, "event-gathering"),
        _ => tr(lang, "other"),
    }
}

/// Behaviour history with a way to register someone met there as a close contact, and the
/// infection link and route ◎ — for roles that may see them (never medical institutions).
pub(super) fn investigation_sections(
    lang: Lang,
    who: &CurrentStaff,
    viewer: &mimamori_core::access::Viewer,
    p: &persons::Person,
    behaviours: &[registry::Behaviour],
    infection: Option<&registry::Infection>,
    retry: Option<&Retry>,
) -> Markup {
    let may = |g: FieldGroup, a: Action| viewer.may(g, a);
    let bf = Refill::of(retry, "behaviours", lang);
    html! {
        @if may(FieldGroup::BehaviourHistory, Action::Read) {
        section class="card" {
            h2 { (tr(lang, "behaviour-history-investigation")) }
            @if behaviours.is_empty() { p class="muted" { (tr(lang, "none-recorded--console-person")) } }
            @else {
                table {
                    thead { tr { th { (tr(lang, "date")) } th { (tr(lang, "time--console-person")) } th { (tr(lang, "place")) } th { (tr(lang, "people-met")) } th {} } }
                    tbody { @for b in behaviours { tr {
                        td { (b.on_date) } td { (b.time_text.as_deref().unwrap_or("")) }
                        td { (b.place) " (" (setting_label(lang, &b.setting)) ")" @if let Some(ph) = &b.place_phone { div class="muted" { (ph) } } }
                        td { (b.people_met.as_deref().unwrap_or("")) }
                        td { @if may(FieldGroup::Contacts, Action::Write) {
                            a href=(format!("/persons/{}/contacts?behaviour={}", p.id, b.id)) { (tr(lang, "register-a-contact")) } } }
                    } } }
                }
            }
            @if may(FieldGroup::BehaviourHistory, Action::Write) {
            details open[bf.open()] {
                summary { (tr(lang, "add-an-entry")) }
                (bf.summary())
                form method="post" action=(format!("/persons/{}/behaviours", p.id)) {
                    input type="hidden" name="csrf" value=(who.csrf);
                    label for="b-date" { (tr(lang, "date")) }
                    input id="b-date" name="on_date" type="date" required value=[bf.v("on_date")] aria-invalid=[bf.invalid("on_date")];
                    (bf.note("on_date"))
                    label for="b-time" { (tr(lang, "time-optional")) }
                    input id="b-time" name="time_text" placeholder="12:00-13:30" value=[bf.v("time_text")] aria-invalid=[bf.invalid("time_text")];
                    (bf.note("time_text"))
                    label for="b-place" { (tr(lang, "place")) }
                    input id="b-place" name="place" required value=[bf.v("place")] aria-invalid=[bf.invalid("place")];
                    (bf.note("place"))
                    label for="b-setting" { (tr(lang, "setting")) }
                    select id="b-setting" name="setting" aria-invalid=[bf.invalid("setting")] { @for st in registry::SETTINGS { option value=(st) selected[bf.v("setting") == Some(*st)] { (setting_label(lang, st)) } } }
                    (bf.note("setting"))
                    label for="b-phone" { (tr(lang, "place-phone-optional")) }
                    input id="b-phone" name="place_phone" type="tel" value=[bf.v("place_phone")] aria-invalid=[bf.invalid("place_phone")];
                    (bf.note("place_phone"))
                    label for="b-people" { (tr(lang, "people-met-optional")) }
                    input id="b-people" name="people_met" value=[bf.v("people_met")] aria-invalid=[bf.invalid("people_met")];
                    (bf.note("people_met"))
                    button type="submit" { (tr(lang, "add")) }
                }
            }
            }
        }
        }
        @if let Some(registry::Infection { link, area, setting, place }) = infection {
        section class="card" {
            h2 { (tr(lang, "infection-link-and-route")) }
            p {
                (tr(lang, "link"))
                strong { (match link.as_deref() { Some("confirmed") => tr(lang, "confirmed"), Some("presumed") => tr(lang, "presumed"), Some(_) => tr(lang, "unknown"), None => "—" }) }
                " · " (area.as_deref().unwrap_or("—")) " · " (setting.as_deref().map(|s| setting_label(lang, s)).unwrap_or("—")) " · " (place.as_deref().unwrap_or("—"))
            }
            @if may(FieldGroup::InfectionLink, Action::Write) {
            @let inf = Refill::of(retry, "infection", lang);
            // As posted when it came back with problems, else as stored.
            @let cur = |k: &str, stored: &Option<String>| inf.v(k).map(str::to_string).or_else(|| stored.clone());
            (inf.summary())
            form method="post" action=(format!("/persons/{}/infection", p.id)) style="display:flex;gap:.5rem;align-items:flex-end;flex-wrap:wrap" {
                input type="hidden" name="csrf" value=(who.csrf);
                label { (tr(lang, "link--console-person")) " " select name="link" style="width:auto" aria-invalid=[inf.invalid("link")] {
                    @for (k, key) in [("confirmed", "confirmed"), ("presumed", "presumed"), ("unknown", "unknown")] {
                        option value=(k) selected[cur("link", link).as_deref() == Some(k)] { (tr(lang, key)) } } } }
                label { (tr(lang, "area")) " " input name="area" value=(cur("area", area).unwrap_or_default()) style="width:8rem" aria-invalid=[inf.invalid("area")]; }
                label { (tr(lang, "setting")) " " select name="setting" style="width:auto" aria-invalid=[inf.invalid("setting")] {
                    option value="" { "—" }
                    @for st in registry::SETTINGS { option value=(st) selected[cur("setting", setting).as_deref() == Some(*st)] { (setting_label(lang, st)) } } } }
                label { (tr(lang, "place")) " " input name="place" value=(cur("place", place).unwrap_or_default()) style="width:10rem" aria-invalid=[inf.invalid("place")]; }
                button type="submit" style="margin:0" { (tr(lang, "save--console-person")) }
            }
            }
        }
        }
    }
}

pub(super) async fn add_behaviour(f: Posted) -> Result<Response, HtmlError> {
    let (db, viewer, ip, id) = (&f.s.db, f.who.viewer(), f.ip.clone(), f.id);
    f.run(
        "behaviours",
        "investigation",
        move |input: registry::BehaviourInput| async move {
            let e = input.parse(japan_today())?;
            registry::add_behaviour(db, &viewer, id, &e, Some(&ip))
                .await
                .map(|_| ())
        },
    )
    .await
}

pub(super) async fn set_infection(f: Posted) -> Result<Response, HtmlError> {
    let (db, viewer, ip, id) = (&f.s.db, f.who.viewer(), f.ip.clone(), f.id);
    f.run(
        "infection",
        "investigation",
        move |input: registry::InfectionInput| async move {
            registry::set_infection(db, &viewer, id, &input, Some(&ip)).await
        },
    )
    .await
}
