//! Page shells. Server-rendered HTML that works without JavaScript; large targets; the
//! console in Japanese with an English switch.
use axum::response::Html;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use mimamori_core::domain::Lang;

use super::{i18n::tr, who::CurrentStaff};

const CSS: &str = r#"
*{box-sizing:border-box}body{margin:0;font-family:system-ui,"Hiragino Sans","Noto Sans JP",sans-serif;line-height:1.6;color:#1b1b1b;background:#f6f7f9}
a{color:#0b57d0}header{background:#12355b;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:1rem;align-items:center}
header a{color:#fff;text-decoration:none;padding:.4rem .6rem;border-radius:4px}header a:hover,header a:focus{background:#ffffff22}
header .brand{font-weight:700;font-size:1.1rem}header nav{display:flex;flex-wrap:wrap;gap:.25rem}header .right{margin-left:auto;display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
main{max-width:1100px;margin:0 auto;padding:1rem}main.narrow{max-width:560px}
table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:.5rem;border-bottom:1px solid #dde;text-align:left;vertical-align:top}
th{background:#eef1f6}.card{background:#fff;border:1px solid #dde;border-radius:8px;padding:1rem;margin:1rem 0}
label{display:block;font-weight:600;margin-top:.8rem}input,select{font-size:1.1rem;padding:.55rem;width:100%;max-width:28rem;border:1px solid #889;border-radius:6px}
button,.button{font-size:1.1rem;padding:.7rem 1.4rem;border:0;border-radius:6px;background:#0b57d0;color:#fff;cursor:pointer;margin-top:1rem;display:inline-block;text-decoration:none}
button.link{background:none;color:#fff;padding:.4rem .6rem;margin:0;font-size:1rem}
.err{color:#b3261e;font-weight:600}.errors{border:2px solid #b3261e;background:#fdecea;padding:.5rem 1rem;border-radius:6px}
.urgent{background:#b3261e;color:#fff;padding:1rem;border-radius:8px;font-size:1.2rem}
.ok{background:#e6f4ea;border:1px solid #137333;padding:1rem;border-radius:8px}
.muted{color:#555}.tag{display:inline-block;padding:0 .4rem;border-radius:4px;background:#eef1f6;font-size:.9rem}
.tag.missed,.tag.failed{background:#fdecea;color:#b3261e}.tag.answered{background:#e6f4ea;color:#137333}
fieldset{border:1px solid #ccd;border-radius:8px;margin:1rem 0;padding:.5rem 1rem;background:#fff}legend{font-weight:700;padding:0 .3rem}
.yn{display:flex;gap:.5rem;flex-wrap:wrap;margin:.3rem 0 .8rem}.yn label{font-weight:400;margin:0;border:2px solid #889;border-radius:8px;padding:.6rem 1.2rem;min-width:6rem;background:#fff}
.yn input{width:auto;margin-right:.4rem;transform:scale(1.4)}.choices{display:flex;flex-direction:column;gap:.4rem;margin:.3rem 0 .8rem}.choices label{font-weight:400;margin:0;border:2px solid #889;border-radius:8px;padding:.6rem 1rem;background:#fff}.choices input{width:auto;margin-right:.6rem;transform:scale(1.4)}nav.tabs{display:flex;gap:.25rem;flex-wrap:wrap;margin:1rem 0;border-bottom:2px solid #ccd}nav.tabs a{padding:.5rem 1rem;text-decoration:none;border-radius:6px 6px 0 0}nav.tabs a[aria-current]{background:#1a56db;color:#fff}dl.kv{display:grid;grid-template-columns:minmax(0,max-content) minmax(3rem,1fr);gap:.2rem .8rem;margin:0}dl.kv dt{color:#555}dl.kv dd{margin:0}a.button{display:inline-block;background:#1a56db;color:#fff;padding:.5rem 1rem;border-radius:6px;text-decoration:none}h2.subhead{font-size:1.05rem;margin:1rem 0 .2rem;border-bottom:1px solid #ccd}.q{margin:.6rem 0 0;font-weight:600}
svg{max-width:100%;height:auto;background:#fff}
.scroll{overflow-x:auto;max-width:100%}.scroll>table.wide{min-width:40rem}
.error-summary{border:4px solid #b3261e;background:#fff;padding:.5rem 1rem;margin:1rem 0;border-radius:6px}.error-summary:focus{outline:3px solid #ffbf47}.error-summary h2{margin:.2rem 0;font-size:1.2rem}.error-summary a{color:#b3261e;font-weight:600}
.visually-hidden{position:absolute!important;width:1px;height:1px;margin:0;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.call{border-top:1px solid #ccd;margin-top:1.5rem;padding-top:.5rem}.call a{font-weight:700;font-size:1.2rem}
.none{margin:.6rem 0;padding:.4rem .6rem;border:2px dashed #889;border-radius:8px}.none label{display:flex;gap:.6rem;align-items:center;margin:0;font-weight:600}.none input{width:auto;transform:scale(1.4)}
.actions{display:flex;gap:.8rem;flex-wrap:wrap;align-items:center}button.secondary{background:#555}.whose{margin:.2rem 0}
ul.next{list-style:none;padding:0}
.prio{display:inline-block;min-width:3.2rem;text-align:center;padding:.1rem .5rem;border-radius:4px;font-weight:700;background:#eef1f6;color:#1b1b1b}.prio-urgent{background:#b3261e;color:#fff}.prio-high{background:#f9dedc;color:#8c1d18;border:1px solid #b3261e}
table.queue td,table.queue th{padding:.3rem .5rem;vertical-align:middle}table.queue tr.esc-urgent td:first-child{border-left:6px solid #b3261e}table.queue details summary{cursor:pointer;color:#0b57d0;font-weight:600}
.steps{display:grid;gap:.6rem;padding:.4rem 0;max-width:34rem}.steps form{border:1px solid #dde;border-radius:6px;padding:.4rem .6rem;background:#fff}.steps label{margin-top:.3rem}.steps button{margin-top:.5rem}button.resolve{background:#137333}label.confirm{display:flex;gap:.5rem;align-items:center;font-weight:600}label.confirm input{width:auto}
.filters{display:flex;flex-wrap:wrap;gap:.3rem .8rem;align-items:flex-end}.filters label{margin:0}.filters select{width:auto}.filters button{margin:0}
.done{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;background:#e6f4ea;border:1px solid #137333;border-radius:8px;padding:.3rem 1rem;margin:.5rem 0}.done p{margin:0}.done button{margin:0}
.live{background:#fff4e5;border:2px solid #b3261e;border-radius:8px;padding:.4rem 1rem}
@media print{header{display:none}}
"#;

fn head(title: &str, lang: Lang) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="referrer" content="same-origin";
        title { (title) " — mimamori" }
        style { (PreEscaped(CSS)) }
        @if lang == Lang::En { }
    }
}

/// A console page with the navigation bar.
/// The menu of a role: only the pages it may use (a link that answers 403 is a dead end for
/// someone in a hurry). The dev outbox and the phone simulator appear only where this
/// instance offers them (no provider configured).
pub fn menu(who: &CurrentStaff) -> Vec<(&'static str, &'static str)> {
    use mimamori_core::access::Role;
    let mut m = Vec::new();
    match who.role {
        Role::HealthCentreStaff => {
            m.push(("/escalations", "review-queue--layout"));
            m.push(("/persons", "people--layout"));
            m.push(("/cohort", "cohort--layout"));
            m.push(("/persons/new", "register--layout"));
            m.push(("/reports/new", "occurrence-report"));
            m.push(("/daily-report", "stats-daily-report"));
            m.push(("/stats", "stats-title"));
            m.push(("/imports", "import-title"));
            m.push(("/rules", "lab-title"));
            if who.dev_tools.outbox {
                m.push(("/outbox", "outbox"));
            }
            if who.dev_tools.simulator {
                m.push(("/simulator", "phone-simulator"));
            }
        }
        Role::MedicalInstitution => {
            m.push(("/persons", "people--layout"));
            m.push(("/reports/new", "occurrence-report"));
            m.push(("/daily-report", "stats-daily-report"));
        }
        Role::Contractor | Role::LodgingFacility => {
            m.push(("/cohort", "my-people"));
            m.push(("/persons", "find-a-person"));
        }
        Role::PrefectureStaff => {
            m.push(("/persons", "people--layout"));
            m.push(("/cohort", "cohort--layout"));
            m.push(("/stats", "stats-title"));
        }
        Role::AuthOfficer => {
            m.push(("/ids", "ids"));
            m.push(("/audit", "audit-log"));
            m.push(("/merges", "merges"));
            m.push(("/imports", "import-title"));
        }
        Role::MinistryAdmin => {
            m.push(("/ids", "ids"));
            m.push(("/stats", "stats-title"));
        }
        Role::Analyst => m.push(("/stats", "stats-title")),
    }
    m
}

/// A page's own script, served from `/static/…` (the CSP allows scripts from this origin
/// only, none inline).
pub fn javascript(body: &'static str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/javascript; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

pub fn page(lang: Lang, who: &CurrentStaff, title: &str, body: Markup) -> Html<String> {
    page_titled(lang, who, title, title, body)
}

/// A console page whose document title differs from its heading: a form with problems is
/// titled "エラー: …" (what a screen reader announces first) under its usual heading.
pub fn page_titled(
    lang: Lang,
    who: &CurrentStaff,
    doc_title: &str,
    title: &str,
    body: Markup,
) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.as_str()) {
            (head(doc_title, lang))
            body {
                header {
                    a class="brand" href="/" { "見守り mimamori" }
                    nav aria-label=(tr(lang, "menu")) {
                        @for (href, key) in menu(who) {
                            a href=(href) { (tr(lang, key)) }
                        }
                    }
                    div class="right" {
                        a href="/account" { (who.display_name) }
                        a href=(if lang == Lang::Ja { "/lang/en" } else { "/lang/ja" }) lang=(if lang == Lang::Ja { "en" } else { "ja" }) {
                            (if lang == Lang::Ja { "English" } else { "日本語" })
                        }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(who.csrf);
                            button class="link" type="submit" { (tr(lang, "log-out")) }
                        }
                        form method="post" action="/logout/all" {
                            input type="hidden" name="csrf" value=(who.csrf);
                            button class="link" type="submit" title=(tr(lang, "log-out-on-every-device")) { (tr(lang, "all-devices")) }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    Html(markup.into_string())
}

/// A page without navigation (login, patient pages, errors).
pub fn bare(title: &str, body: Markup) -> Html<String> {
    bare_lang(Lang::Ja, title, body)
}

pub fn bare_lang(lang: Lang, title: &str, body: Markup) -> Html<String> {
    Html(
        html! { (DOCTYPE) html lang=(lang.as_str()) { (head(title, lang)) body { (body) } } }
            .into_string(),
    )
}
