//! The staff console.
pub mod outbox;
pub mod persons;

use axum::{Router, extract::State, routing::get};
use maud::html;
use mimamori_core::store::{persons as person_store, staff};

use super::{
    AppState,
    auth::CurrentStaff,
    error::HtmlError,
    i18n::{UiLang, t},
    layout,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .merge(persons::router())
        .merge(outbox::router())
}

async fn home(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
) -> Result<axum::response::Html<String>, HtmlError> {
    let centre = staff::health_centre(&s.db, who.health_centre_id).await?;
    let people = person_store::count(&s.db, who.health_centre_id).await?;
    Ok(layout::page(
        lang,
        &who,
        &centre.name,
        html! {
            div class="card" {
                p { (t(lang, "登録されている対象者", "People registered")) ": " strong { (people) } }
                p {
                    a class="button" href="/persons" { (t(lang, "対象者一覧", "People list")) } " "
                    a class="button" href="/persons/new" { (t(lang, "対象者を登録", "Register a person")) } " "
                    a class="button" href="/outbox" { (t(lang, "送信箱（開発用）", "Outbox (development)")) }
                }
            }
        },
    ))
}
