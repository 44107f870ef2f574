//! Merging duplicate records from the console (health-centre staff, field by field) and
//! the officer's list of merges with undo. The API shares the store functions.
use axum::{
    Form, Router,
    extract::{ConnectInfo, Path, Query, State},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use maud::html;
use mimamori_core::{
    access::{Access, Role},
    store::{merges, persons},
};
use serde::Deserialize;

use crate::web::{
    AppState,
    auth::CurrentStaff,
    error::HtmlError,
    i18n::{UiLang, tr},
    layout,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/persons/{id}/merge", get(compare).post(merge))
        .route("/merges", get(list))
        .route("/merges/{id}/undo", post(undo))
}

#[derive(Deserialize, Default)]
struct Other {
    #[serde(default, deserialize_with = "mimamori_core::domain::lenient::opt_i64")]
    other: Option<i64>,
}

fn field_label(lang: mimamori_core::domain::Lang, f: &str) -> &'static str {
    match f {
        "name" => tr(lang, "name--console-merges"),
        "name_kana" => tr(lang, "kana"),
        "phone" => tr(lang, "phone"),
        "email" => tr(lang, "e-mail"),
        "date_of_birth" => tr(lang, "date-of-birth"),
        "sex" => tr(lang, "sex"),
        "nationality" => tr(lang, "nationality"),
        "prefecture_code" => tr(lang, "prefecture"),
        "municipality" => tr(lang, "municipality"),
        "address" => tr(lang, "address"),
        "occupation" => tr(lang, "occupation"),
        "workplace" => tr(lang, "workplace"),
        _ => tr(lang, "emergency-contact"),
    }
}

/// Both records side by side, a choice per field (differences marked).
async fn compare(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Path(id): Path<i64>,
    Query(q): Query<Other>,
) -> Result<Html<String>, HtmlError> {
    who.require_health_centre()?;
    let viewer = who.viewer();
    let keep = persons::get(&s.db, Access::Staff(&viewer), id, None).await?;
    let other = match q.other {
        Some(o) => Some(persons::get(&s.db, Access::Staff(&viewer), o, None).await?),
        None => None,
    };
    let json = |p: &persons::Person| serde_json::to_value(p).unwrap_or_default();
    Ok(layout::page(
        lang,
        &who,
        tr(lang, "merge-duplicate-records"),
        html! {
            form method="get" action=(format!("/persons/{id}/merge")) {
                label for="other" { (tr(lang, "id-of-the-record-to-merge-into-this-one")) }
                input id="other" name="other" inputmode="numeric" value=(q.other.map(|o| o.to_string()).unwrap_or_default());
                button type="submit" { (tr(lang, "compare")) }
            }
            @if let Some(o) = &other {
                @let (a, b) = (json(&keep), json(o));
                form method="post" action=(format!("/persons/{id}/merge")) {
                    input type="hidden" name="csrf" value=(who.csrf);
                    input type="hidden" name="other_id" value=(o.id);
                    table {
                        thead { tr { th { (tr(lang, "field")) } th { "ID " (keep.id) " " (tr(lang, "kept")) } th { "ID " (o.id) } } }
                        tbody {
                            @for f in merges::FIELDS {
                                @let (va, vb) = (a[*f].as_str().unwrap_or(""), b[*f].as_str().unwrap_or(""));
                                tr class=(if va != vb { "differs" } else { "" }) {
                                    th scope="row" { (field_label(lang, f)) @if va != vb { " ●" } }
                                    td { label style="font-weight:400" { input type="radio" name=(f) value="this" checked style="width:auto"; " " (va) } }
                                    td { label style="font-weight:400" { input type="radio" name=(f) value="other" style="width:auto"; " " (vb) } }
                                }
                            }
                        }
                    }
                    p class="muted" { (tr(lang, "tests-severity-residence-behaviour")) }
                    button type="submit" { (tr(lang, "merge")) }
                }
            }
        },
    ))
}

async fn merge(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, HtmlError> {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    who.check_csrf(get("csrf").unwrap_or(""))?;
    let other: i64 = get("other_id")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            mimamori_core::Error::invalid("other_id", "err-give-the-id-of-the-other-record")
        })?;
    let choices: merges::Choices = form
        .iter()
        .filter(|(k, _)| merges::FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let m = merges::merge(
        &s.db,
        &who.viewer(),
        id,
        other,
        &choices,
        Some(&addr.ip().to_string()),
    )
    .await?;
    tracing::info!(
        merge_id = m,
        kept = id,
        merged = other,
        staff_id = who.id,
        "records merged"
    );
    Ok(Redirect::to(&format!("/persons/{id}?tab=record")).into_response())
}

/// The officer's list of merges of their health centre, with undo.
async fn list(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
) -> Result<Html<String>, HtmlError> {
    if who.role != Role::AuthOfficer {
        return Err(mimamori_core::Error::Forbidden(
            "only the user-authentication officer sees merges",
        )
        .into());
    }
    let rows = merges::list(&s.db, who.health_centre_id).await?;
    Ok(layout::page(
        lang,
        &who,
        tr(lang, "merged-records"),
        html! {
            table {
                thead { tr { th { "#" } th { (tr(lang, "kept--console-merges")) } th { (tr(lang, "merged")) } th { (tr(lang, "when")) } th {} } }
                tbody { @for m in &rows { tr {
                    td { (m.id) } td { (m.kept_id) } td { (m.merged_id) }
                    td { (m.merged_at.with_timezone(&chrono_tz::Asia::Tokyo).format("%Y-%m-%d %H:%M")) }
                    td { @if m.undone_at.is_some() { (tr(lang, "undone--console-merges")) } @else {
                        form method="post" action=(format!("/merges/{}/undo", m.id)) {
                            input type="hidden" name="csrf" value=(who.csrf);
                            button type="submit" style="margin:0" { (tr(lang, "undo--console-merges")) }
                        }
                    } }
                } } }
            }
        },
    ))
}

#[derive(Deserialize)]
struct Csrf {
    csrf: String,
}

async fn undo(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    Form(f): Form<Csrf>,
) -> Result<Response, HtmlError> {
    who.check_csrf(&f.csrf)?;
    merges::undo(&s.db, &who.viewer(), id, Some(&addr.ip().to_string())).await?;
    tracing::info!(merge_id = id, staff_id = who.id, "merge undone");
    Ok(Redirect::to("/merges").into_response())
}
