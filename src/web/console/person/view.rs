//! The person page drawn from what was read: header, tabs, the open tab's records.
use super::*;
use mimamori_core::access::Viewer;

/// Everything the person page shows, read before it is drawn ([`render`] does no I/O).
pub(super) struct View<'a> {
    pub lang: Lang,
    /// The viewer's session (its CSRF token is a placeholder on a page to be kept).
    pub who: &'a CurrentStaff,
    pub viewer: Viewer,
    pub tab: &'a str,
    pub retry: Option<&'a Retry>,
    pub ho_allowed: bool,
    pub ho: bool,
    pub rs: bool,
    pub hc: bool,
    pub admin: bool,
    pub p: persons::Person,
    pub obs: Vec<Observation>,
    pub cks: Vec<checkins::Checkin>,
    pub attempts: Vec<checkins::Attempt>,
    pub calls: Vec<followups::Followup>,
    pub moves: Vec<residences::Residence>,
    pub tests: Vec<registry::TestRecord>,
    pub severities: Vec<registry::Severity>,
    pub behaviours: Vec<registry::Behaviour>,
    pub infection: Option<registry::Infection>,
    pub prefecture: Option<String>,
    pub contacts: Vec<persons::Person>,
    pub sections: Vec<sections::Stored>,
    pub centres: Vec<staff::HealthCentre>,
    pub orgs: Vec<(i64, String, String)>,
    pub open: Vec<esc_store::Escalation>,
    pub timeline: Vec<esc_store::Event>,
    pub flow: &'a Flow,
    pub times: String,
    /// Readings whose median is the SpO2 baseline (the centre's rules; 0 = none drawn).
    pub baseline_readings: u32,
}

/// Draws the person page from what [`View`] holds.
pub(super) fn render(v: View<'_>) -> Markup {
    let View {
        lang,
        who,
        viewer,
        tab,
        retry,
        ho_allowed,
        ho,
        rs,
        hc,
        admin,
        p,
        obs,
        cks,
        attempts,
        calls,
        moves,
        tests,
        severities,
        behaviours,
        infection,
        prefecture,
        contacts,
        sections,
        centres,
        orgs,
        open,
        timeline,
        flow,
        times,
        baseline_readings,
    } = v;
    let observation_tab = if tab == "observation" {
        observation::tab(
            lang,
            who,
            viewer,
            hc,
            ho,
            &p,
            &obs,
            &cks,
            &attempts,
            &calls,
            &open,
            &timeline,
            flow,
            &times,
            retry,
            baseline_readings,
        )
    } else {
        html! {}
    };
    html! {
            div class="card" {
                p {
                    (tr(lang, "type")) ": " (if p.monitoring_type == "contact" { tr(lang, "close-contact") } else { tr(lang, "patient") })
                    " · " (tr(lang, "observation")) ": " (p.observation_start) " – " (p.observation_end)
                    " · " (tr(lang, "channel--console-person")) ": " (codes::ChannelCode::label_of(&p.channel, lang))
                    @if let Some(f) = &p.fallback_channel { " (" (tr(lang, "fallback")) ": " (codes::ChannelCode::label_of(f, lang)) ")" }
                    " · " (tr(lang, "status")) ": " (status_label(lang, &p.status))
                    @if rs { " · " (tr(lang, "residence")) ": " (residence_label(lang, &p.residence_kind)) }
                }
                @if rs && tab == "record" {
                @let rf = Refill::of(retry, "residence", lang);
                details open[rf.open()] {
                    summary { (tr(lang, "residence-history-and-moves-admission")) }
                    ul {
                        @for m in &moves {
                            li { (m.from_date) " " (residence_label(lang, &m.kind)) @if let Some(pl) = &m.place { " · " (pl) } }
                        }
                        @if moves.is_empty() { li class="muted" { (tr(lang, "none-recorded-home")) } }
                    }
                    @if viewer.may(FieldGroup::Residence, Action::Write) {
                    (rf.summary())
                    form method="post" action=(format!("/persons/{}/residences", p.id)) {
                        input type="hidden" name="csrf" value=(who.csrf);
                        label for="res-kind" { (tr(lang, "residence")) }
                        select id="res-kind" name="kind" aria-invalid=[rf.invalid("kind")] {
                            @for k in residences::KINDS { option value=(k) selected[rf.v("kind") == Some(*k)] { (residence_label(lang, k)) } }
                        }
                        (rf.note("kind"))
                        label for="res-place" { (tr(lang, "hospital-or-facility-optional")) }
                        input id="res-place" name="place" autocomplete="off" value=[rf.v("place")] aria-invalid=[rf.invalid("place")];
                        (rf.note("place"))
                        label for="res-date" { (tr(lang, "from-empty-today")) }
                        input id="res-date" name="from_date" type="date" value=[rf.v("from_date")] aria-invalid=[rf.invalid("from_date")];
                        (rf.note("from_date"))
                        button type="submit" { (tr(lang, "record--console-person")) }
                    }
                    }
                }
                }
                p class="muted" {
                    (tr(lang, "phone--console-person")) ": " (p.phone.as_deref().unwrap_or("—")) " · "
                    (tr(lang, "e-mail--console-person")) ": " (p.email.as_deref().unwrap_or("—"))
                }
                @if admin && centres.len() > 1 {
                    form method="post" action=(format!("/persons/{}/share", p.id)) style="display:flex;gap:.5rem;align-items:flex-end" {
                        input type="hidden" name="csrf" value=(who.csrf);
                        label { (tr(lang, "share-with-a-related-health-centre")) " "
                            select name="health_centre_id" style="width:auto" {
                                @for c in centres.iter().filter(|c| c.id != p.health_centre_id) { option value=(c.id) { (c.name) } }
                            }
                        }
                        button type="submit" style="margin:0" { (tr(lang, "share")) }
                    }
                }
                @if admin && !orgs.is_empty() {
                    form method="post" action=(format!("/persons/{}/assign", p.id)) style="display:flex;gap:.5rem;align-items:flex-end" {
                        input type="hidden" name="csrf" value=(who.csrf);
                        label { (tr(lang, "assign-to-an-outside-body")) " "
                            select name="organisation_id" style="width:auto" {
                                @for (id, kind, name) in &orgs { option value=(id) { (name) " (" (kind) ")" } }
                            }
                        }
                        button type="submit" style="margin:0" { (tr(lang, "assign")) }
                    }
                }
            }
            nav class="tabs" aria-label=(tr(lang, "record-groups")) {
                @for (tab_key, label) in [("observation", "observation--console-person"), ("record", "record--console-person-3"), ("investigation", "investigation"), ("details", "more")] {
                    @if tab_key != "observation" || ho_allowed {
                        a href=(format!("/persons/{}?tab={tab_key}", p.id)) aria-current=[(tab == tab_key).then_some("page")] { (tr(lang, label)) }
                    }
                }
            }
            @if tab == "record" {
                (registry_sections(lang, who, &viewer, &p, &tests, &severities, &contacts, retry, prefecture.as_deref()))
                @if let Some(m) = p.merged_into {
                    p class="errors" { (tr(lang, "this-record-was-merged-into")) a href=(format!("/persons/{m}")) { "ID " (m) } }
                } @else if hc {
                    p { a href=(format!("/persons/{}/merge", p.id)) { (tr(lang, "merge-a-duplicate-record-into-this-one")) } }
                }
            }
            @if tab == "investigation" { (investigation_sections(lang, who, &viewer, &p, &behaviours, infection.as_ref(), retry)) }
            @if tab == "details" { (details_sections(lang, who, &viewer, &p, &sections, match retry { Some(Retry::Section(r)) => Some(r), _ => None })) }
            (observation_tab)
    }
}
