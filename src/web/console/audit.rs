//! The audit log of the officer's body [利用者認証実施者]: who touched which record, when and
//! from where — filterable and exportable as CSV. Reading it is itself audited.
use axum::{
    Router,
    extract::{Query, State},
    http::header,
    response::{Html, IntoResponse, Response},
    routing::get,
};
use maud::html;
use mimamori_core::{
    access::Role,
    store::audit::{self, AuditFilter, AuditRow},
};

use crate::web::{
    AppState,
    auth::CurrentStaff,
    error::HtmlError,
    i18n::{UiLang, tr},
    layout,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit", get(page))
        .route("/audit.csv", get(csv))
}

fn officer_only(who: &CurrentStaff) -> Result<(), HtmlError> {
    if who.role == Role::AuthOfficer {
        Ok(())
    } else {
        Err(mimamori_core::Error::Forbidden(
            "only the user-authentication officer can read the audit log",
        )
        .into())
    }
}

async fn rows(
    s: &AppState,
    who: &CurrentStaff,
    f: &AuditFilter,
    limit: i64,
) -> Result<Vec<AuditRow>, HtmlError> {
    officer_only(who)?;
    Ok(audit::search(&s.db, who.id, who.health_centre_id, f, limit).await?)
}

async fn page(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Query(f): Query<AuditFilter>,
) -> Result<Html<String>, HtmlError> {
    let list = rows(&s, &who, &f, 500).await?;
    let tz = chrono_tz::Asia::Tokyo;
    let qs = serde_urlencoded::to_string([
        ("action", f.action.clone()),
        (
            "actor_id",
            f.actor_id.map(|v| v.to_string()).unwrap_or_default(),
        ),
        (
            "person_id",
            f.person_id.map(|v| v.to_string()).unwrap_or_default(),
        ),
    ])
    .unwrap_or_default();
    Ok(layout::page(
        lang,
        &who,
        tr(lang, "audit-log"),
        html! {
            form method="get" action="/audit" style="display:flex;gap:1rem;flex-wrap:wrap;align-items:flex-end" {
                label { (tr(lang, "action-prefix")) input name="action" value=(f.action) placeholder="person." style="width:10rem"; }
                label { (tr(lang, "staff-id")) input name="actor_id" inputmode="numeric" value=[f.actor_id] style="width:7rem"; }
                label { (tr(lang, "person-id")) input name="person_id" inputmode="numeric" value=[f.person_id] style="width:7rem"; }
                button type="submit" style="margin:0" { (tr(lang, "search")) }
                a class="button" style="margin:0" href=(format!("/audit.csv?{qs}")) { "CSV" }
            }
            table {
                thead { tr {
                    th { (tr(lang, "time")) } th { (tr(lang, "actor")) } th { (tr(lang, "action")) }
                    th { (tr(lang, "record")) } th { (tr(lang, "from")) }
                } }
                tbody {
                    @for r in &list {
                        tr {
                            td { (r.at.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S")) }
                            td { (r.actor_kind) @if let Some(id) = r.actor_id { " #" (id) } @if let Some(n) = &r.actor_name { " " (n) } }
                            td { code { (r.action) } }
                            td { (r.target_kind) @if let Some(id) = r.target_id { " #" (id) } }
                            td { (r.ip.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        },
    ))
}

/// One CSV cell. A cell a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return) is neutralised with a leading `'` (OWASP CSV injection).
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

async fn csv(
    State(s): State<AppState>,
    who: CurrentStaff,
    Query(f): Query<AuditFilter>,
) -> Result<Response, HtmlError> {
    let list = rows(&s, &who, &f, 100_000).await?;
    // BOM so that spreadsheet software opens the Japanese text as UTF-8.
    let mut out = String::from(
        "\u{feff}id,at,actor_kind,actor_id,actor_name,action,target_kind,target_id,ip\r\n",
    );
    for r in &list {
        let line = [
            r.id.to_string(),
            r.at.to_rfc3339(),
            r.actor_kind.clone(),
            r.actor_id.map(|v| v.to_string()).unwrap_or_default(),
            r.actor_name.clone().unwrap_or_default(),
            r.action.clone(),
            r.target_kind.clone(),
            r.target_id.map(|v| v.to_string()).unwrap_or_default(),
            r.ip.clone().unwrap_or_default(),
        ]
        .iter()
        .map(|v| csv_field(v))
        .collect::<Vec<_>>()
        .join(",");
        out.push_str(&line);
        out.push_str("\r\n");
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"mimamori-audit.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(
            super::csv_field("=HYPERLINK(\"x\")"),
            "\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert_eq!(super::csv_field("+81 3"), "'+81 3");
        assert_eq!(super::csv_field("-1"), "'-1");
        assert_eq!(super::csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(super::csv_field("a,b"), "\"a,b\"");
        assert_eq!(super::csv_field("person.read"), "person.read");
    }
}
