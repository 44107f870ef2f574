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
    i18n::{UiLang, t},
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
        t(
            lang,
            "送信箱（開発用プロバイダー）",
            "Outbox (development provider)",
        ),
        html! {
            p class="muted" {
                (t(lang,
                   "SMS・メールのプロバイダーが設定されていないため、送信内容はここに保存されます。リンクを開くと対象者の回答画面になります。表示されるのは、この保健所の対象者あてのものと、ご自身あての確認コード・通知だけです。",
                   "No SMS or e-mail provider is configured, so messages are kept here. Open a link to see the person's form. Only messages to this centre's people and your own login codes and alerts are shown."))
            }
            @if msgs.is_empty() {
                p { (t(lang, "まだ送信はありません。", "Nothing sent yet.")) }
            } @else {
                table {
                    thead { tr {
                        th { "#" } th { (t(lang, "日時", "Time")) } th { (t(lang, "経路", "Channel")) }
                        th { (t(lang, "宛先", "To")) } th { (t(lang, "内容", "Message")) }
                    } }
                    tbody {
                        @for m in &msgs {
                            tr class="outbox-message" {
                                td { (m.id) }
                                td { (m.created_at.with_timezone(&chrono_tz::Asia::Tokyo).format("%Y-%m-%d %H:%M")) }
                                td { (match m.channel.as_str() { "sms" => "SMS", "email" => t(lang, "メール", "e-mail"), "voice" => t(lang, "電話", "call"), _ => "—" }) }
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
