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
    access::Role,
    store::{merges, persons},
};
use serde::Deserialize;

use crate::web::{
    AppState,
    auth::CurrentStaff,
    error::HtmlError,
    i18n::{UiLang, t},
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
        "name" => t(lang, "氏名", "name"),
        "name_kana" => t(lang, "フリガナ", "kana"),
        "phone" => t(lang, "電話", "phone"),
        "email" => t(lang, "メール", "e-mail"),
        "date_of_birth" => t(lang, "生年月日", "date of birth"),
        "sex" => t(lang, "性別", "sex"),
        "nationality" => t(lang, "国籍", "nationality"),
        "prefecture_code" => t(lang, "都道府県", "prefecture"),
        "municipality" => t(lang, "市区町村", "municipality"),
        "address" => t(lang, "住所", "address"),
        "occupation" => t(lang, "職業", "occupation"),
        "workplace" => t(lang, "勤務先", "workplace"),
        _ => t(lang, "緊急連絡先", "emergency contact"),
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
    let keep = persons::get(&s.db, Some(&viewer), id, None).await?;
    let other = match q.other {
        Some(o) => Some(persons::get(&s.db, Some(&viewer), o, None).await?),
        None => None,
    };
    let json = |p: &persons::Person| serde_json::to_value(p).unwrap_or_default();
    Ok(layout::page(
        lang,
        &who,
        t(lang, "重複した記録の統合", "Merge duplicate records"),
        html! {
            form method="get" action=(format!("/persons/{id}/merge")) {
                label for="other" { (t(lang, "この記録に統合する記録のID", "ID of the record to merge into this one")) }
                input id="other" name="other" inputmode="numeric" value=(q.other.map(|o| o.to_string()).unwrap_or_default());
                button type="submit" { (t(lang, "比べる", "Compare")) }
            }
            @if let Some(o) = &other {
                @let (a, b) = (json(&keep), json(o));
                form method="post" action=(format!("/persons/{id}/merge")) {
                    input type="hidden" name="csrf" value=(who.csrf);
                    input type="hidden" name="other_id" value=(o.id);
                    table {
                        thead { tr { th { (t(lang, "項目", "Field")) } th { "ID " (keep.id) " " (t(lang, "（残す）", "(kept)")) } th { "ID " (o.id) } } }
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
                    p class="muted" { (t(lang, "検査・重症度・居所・行動歴・発生届・健康観察・接触者は残す記録に移り、もう一方の記録は終了します。利用者認証実施者が取り消せます。",
                        "Tests, severity, residence, behaviour history, reports, observations and contacts move to the kept record; the other record ends. The ID officer can undo this.")) }
                    button type="submit" { (t(lang, "統合する", "Merge")) }
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
            mimamori_core::Error::invalid("other_id", "give the id of the other record")
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
        t(lang, "記録の統合", "Merged records"),
        html! {
            table {
                thead { tr { th { "#" } th { (t(lang, "残した記録", "Kept")) } th { (t(lang, "統合された記録", "Merged")) } th { (t(lang, "日時", "When")) } th {} } }
                tbody { @for m in &rows { tr {
                    td { (m.id) } td { (m.kept_id) } td { (m.merged_id) }
                    td { (m.merged_at.with_timezone(&chrono_tz::Asia::Tokyo).format("%Y-%m-%d %H:%M")) }
                    td { @if m.undone_at.is_some() { (t(lang, "取り消し済み", "undone")) } @else {
                        form method="post" action=(format!("/merges/{}/undo", m.id)) {
                            input type="hidden" name="csrf" value=(who.csrf);
                            button type="submit" style="margin:0" { (t(lang, "取り消す", "Undo")) }
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
