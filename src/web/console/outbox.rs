//! The dev outbox: the SMS and e-mail the `outbox` provider "sent", newest first, with the
//! links clickable so the whole loop can be tried without a provider account. A member of
//! staff sees the messages to the people of their own centre and their own login codes and
//! alerts — never another centre's or another colleague's; each view is audited.
use axum::{Router, extract::State, response::Html, routing::get};
use maud::html;
use mimamori_core::store::outbox;

use crate::web::{
    AppState,
    auth::CurrentStaff,
    error::HtmlError,
    i18n::{UiLang, tr},
    layout,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/outbox", get(list))
}

/// Wraps URLs in a message body as links.
fn linkify(body: &str) -> maud::Markup {
    html! {
        @for (i, line) in body.lines().enumerate() {
            @if i > 0 { br; }
            @for (j, word) in line.split(' ').enumerate() {
                @if j > 0 { " " }
                @if word.starts_with("http://") || word.starts_with("https://") {
                    a href=(word) { (word) }
                } @else { (word) }
            }
        }
    }
}

async fn list(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
) -> Result<Html<String>, HtmlError> {
    who.require_health_centre()?;
    let msgs = outbox::list_for(&s.db, &who.viewer(), 200).await?;
    Ok(layout::page(
        lang,
        &who,
        tr(lang, "outbox-development-provider"),
        html! {
            p class="muted" {
                (tr(lang, "no-sms-or-e-mail-provider-is-configured"))
            }
            @if msgs.is_empty() {
                p { (tr(lang, "nothing-sent-yet")) }
            } @else {
                table {
                    thead { tr {
                        th { "#" } th { (tr(lang, "time")) } th { (tr(lang, "channel")) }
                        th { (tr(lang, "to")) } th { (tr(lang, "message")) }
                    } }
                    tbody {
                        @for m in &msgs {
                            tr class="outbox-message" {
                                td { (m.id) }
                                td { (m.created_at.with_timezone(&chrono_tz::Asia::Tokyo).format("%Y-%m-%d %H:%M")) }
                                td { (match m.channel.as_str() { "sms" => "SMS", "email" => tr(lang, "e-mail"), "voice" => tr(lang, "call"), _ => "—" }) }
                                td { (mimamori_core::domain::national_phone(&m.to_addr)) }
                                td {
                                    @if let Some(sub) = &m.subject { strong { (sub) } br; }
                                    (linkify(&m.body))
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}
