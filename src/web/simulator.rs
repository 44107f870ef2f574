//! Phone simulator: place a simulated automated call to a person and answer it with an
//! on-screen keypad. It drives the same call engine and state as the Twilio webhooks, so the
//! voice flow can be tried and demonstrated with no provider account. Prompts are shown as
//! text and, where the browser can, spoken.
use axum::{
    Form, Router,
    extract::{Path, State},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use maud::{Markup, html};
use mimamori_core::{domain::Lang, with_db};
use serde::Deserialize;

use super::{
    AppState,
    auth::CurrentStaff,
    error::HtmlError,
    i18n::{UiLang, tr},
    layout, voicecall,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/simulator", get(index).post(place_call))
        .route("/simulator/{sid}", post(press))
        .route("/static/simulator.js", get(script))
}

#[derive(sqlx::FromRow)]
struct OpenCheckin {
    id: i64,
    person_id: i64,
    name: String,
    channel: String,
    status: String,
}

/// The simulator is a training tool: health-centre staff only, and only on an instance with
/// no telephone provider — with a real one, a staff member's key presses must never be
/// mistaken for calls (what they enter is stored and audited as a simulated staff entry).
fn available(who: &CurrentStaff) -> Result<(), HtmlError> {
    who.require_health_centre()?;
    if !who.dev_tools.simulator {
        return Err(mimamori_core::Error::Forbidden(
            "the phone simulator is a training tool and is off while a telephone provider is configured",
        )
        .into());
    }
    Ok(())
}

async fn index(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
) -> Result<Html<String>, HtmlError> {
    available(&who)?;
    let rows: Vec<OpenCheckin> = with_db!(&s.db, p => sqlx::query_as(
        concat!("SELECT c.id, c.person_id, p.name, p.channel, c.status FROM checkins c JOIN persons p ON p.id = c.person_id
         WHERE p.health_centre_id = $1 AND c.status IN ", mimamori_core::open_checkin_statuses!(), "
         ORDER BY CASE WHEN p.channel = 'voice' THEN 0 ELSE 1 END, c.due_at LIMIT 100"))
        .bind(who.health_centre_id).fetch_all(p).await.map_err(mimamori_core::Error::from)?);
    Ok(layout::page(
        lang,
        &who,
        tr(lang, "phone-simulator"),
        html! {
            p class="muted" { (tr(lang, "training-places-a-simulated-automated")) }
            @if rows.is_empty() { p { (tr(lang, "no-check-ins-are-waiting-for-an-answer")) } }
            table {
                thead { tr { th { (tr(lang, "person")) } th { (tr(lang, "channel--console-person")) } th { (tr(lang, "status")) } th {} } }
                tbody {
                    @for r in &rows {
                        tr {
                            td { a href=(format!("/persons/{}", r.person_id)) { (r.name) } }
                            td { (r.channel) } td { (r.status) }
                            td {
                                form method="post" action="/simulator" {
                                    input type="hidden" name="csrf" value=(who.csrf);
                                    input type="hidden" name="checkin_id" value=(r.id);
                                    button type="submit" { (tr(lang, "call--simulator")) }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
struct CallForm {
    csrf: String,
    checkin_id: i64,
}

fn sim_sid() -> String {
    let v: u64 = rand::random();
    format!("SIM{v:016x}")
}

fn call_page(lang: Lang, who: &CurrentStaff, sid: &str, step: &voicecall::Step) -> Html<String> {
    let voice_lang = if step.lang == Lang::En {
        "en-US"
    } else {
        "ja-JP"
    };
    let spoken: Vec<&str> = step.turn.says.iter().map(|u| u.text.as_str()).collect();
    let keys: Markup = html! {
        div class="keypad" style="display:grid;grid-template-columns:repeat(3,4.5rem);gap:.5rem;margin:1rem 0" {
            @for k in ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"] {
                button type="button" class="key" data-key=(k) style="font-size:1.6rem;margin:0" { (k) }
            }
        }
    };
    layout::page(
        lang,
        who,
        tr(lang, "phone-simulator"),
        html! {
            div class="card" aria-live="polite" {
                p class="muted" { (tr(lang, "on-the-call")) " · " (sid) }
                @for u in &step.turn.says { p class="prompt" data-prompt=(u.id) { "🔊 " (u.text) } }
                @if step.turn.completed.is_some() { p class="ok" { (tr(lang, "the-answer-has-been-recorded")) } }
            }
            @if step.turn.gather.is_some() {
                form method="post" action=(format!("/simulator/{sid}")) id="keys" {
                    input type="hidden" name="csrf" value=(who.csrf);
                    label for="digits" { (tr(lang, "keys-pressed-e-g-375")) }
                    input id="digits" name="digits" inputmode="numeric" autocomplete="off" autofocus;
                    (keys)
                    button type="submit" { (tr(lang, "send-keys")) } " "
                    button type="submit" name="timeout" value="1" { (tr(lang, "press-nothing-time-out")) }
                }
            } @else {
                p { (tr(lang, "the-call-has-ended")) " " a href="/simulator" { (tr(lang, "back-to-the-list")) } }
            }
            // The page's script is a file of its own (the CSP allows no inline script); what
            // it needs comes in data attributes.
            div id="sim" hidden
                data-single=(step.turn.gather.is_some_and(|g| g.num_digits == Some(1)))
                data-text=(spoken.join(" "))
                data-lang=(voice_lang) {}
            script src="/static/simulator.js" {}
        },
    )
}

async fn place_call(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Form(f): Form<CallForm>,
) -> Result<Response, HtmlError> {
    available(&who)?;
    who.check_csrf(&f.csrf)?;
    let ctx = mimamori_core::store::checkins::link_context(&s.db, f.checkin_id).await?;
    let p = mimamori_core::store::persons::get(
        &s.db,
        mimamori_core::access::Access::Staff(&who.viewer()),
        ctx.person_id,
        None,
    )
    .await?;
    let sid = sim_sid();
    let step = voicecall::engine(&s)
        .start(&sid, f.checkin_id, true, None)
        .await?;
    tracing::info!(person_id = p.id, call = %sid, "simulated call placed");
    Ok(call_page(lang, &who, &sid, &step).into_response())
}

#[derive(Deserialize)]
struct PressForm {
    csrf: String,
    #[serde(default)]
    digits: String,
    #[serde(default)]
    timeout: Option<String>,
}

async fn press(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Path(sid): Path<String>,
    Form(f): Form<PressForm>,
) -> Result<Response, HtmlError> {
    available(&who)?;
    who.check_csrf(&f.csrf)?;
    if !sid.starts_with("SIM") {
        return Ok(Redirect::to("/simulator").into_response());
    }
    let digits: String = f
        .digits
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '#' || *c == '*')
        .collect();
    let input = if f.timeout.is_some() || digits.is_empty() {
        None
    } else {
        Some(digits.as_str())
    };
    let step = voicecall::engine(&s)
        .step(&sid, input, Some(who.id))
        .await?;
    Ok(call_page(lang, &who, &sid, &step).into_response())
}

/// The phone simulator's keypad: keys add to the field, `#` (or a single-key question) sends,
/// and the prompts are spoken by the browser where it can.
const SCRIPT: &str = r#"(function () {
  var f = document.getElementById('digits');
  var sim = document.getElementById('sim');
  if (!f || !sim) return;
  var single = sim.dataset.single === 'true';
  document.querySelectorAll('.key').forEach(function (b) {
    b.addEventListener('click', function () {
      f.value += b.dataset.key;
      if (b.dataset.key === '#' || (f.value.length === 1 && single)) {
        document.getElementById('keys').submit();
      }
    });
  });
  if (window.speechSynthesis && sim.dataset.text) {
    var u = new SpeechSynthesisUtterance(sim.dataset.text);
    u.lang = sim.dataset.lang;
    speechSynthesis.speak(u);
  }
})();
"#;

async fn script() -> axum::response::Response {
    crate::web::layout::javascript(SCRIPT)
}
