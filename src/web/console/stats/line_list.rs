//! The line list, streamed.
use super::*;

/// The viewer's line list as CSV, streamed in keyset pages (`?after=ID` resumes after the last
/// id received). Every person sent is audited.
pub(super) async fn line_list(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Query(f): Query<Filter>,
) -> Result<Response, HtmlError> {
    let v = who.viewer();
    let enc = f.encoding()?;
    let after: i64 = f.after.trim().parse().unwrap_or(0);
    // The first page is read before answering, so a refusal is an error page, not a file.
    let ip = addr.ip().to_string();
    let first = persons::export_page(&s.db, &v, after, PAGE, Some(&ip)).await?;
    let mut w = CsvChunks::new(enc);
    w.row([
        "id",
        "name",
        "name_kana",
        "sex",
        "date_of_birth",
        "phone",
        "email",
        "municipality",
        "monitoring_type",
        "status",
        "residence_kind",
        "channel",
        "observation_start",
        "observation_end",
        "health_centre_id",
    ]);
    let db = s.db.clone();
    let body = futures::stream::unfold((Some(first), w, false), move |(page, mut w, done)| {
        let db = db.clone();
        let ip = ip.clone();
        async move {
            if done {
                return None;
            }
            let rows = match page {
                Some(r) => r,
                None => unreachable!(),
            };
            let last = rows.last().map(|r| r.id);
            let full = rows.len() as i64 == PAGE;
            for r in &rows {
                w.row([
                    r.id.to_string(),
                    r.name.clone(),
                    r.name_kana.clone().unwrap_or_default(),
                    r.sex.clone().unwrap_or_default(),
                    r.date_of_birth.map(|d| d.to_string()).unwrap_or_default(),
                    r.phone.clone().unwrap_or_default(),
                    r.email.clone().unwrap_or_default(),
                    r.municipality.clone().unwrap_or_default(),
                    r.monitoring_type.clone(),
                    r.status.clone(),
                    r.residence_kind.clone(),
                    r.channel.clone(),
                    r.observation_start.to_string(),
                    r.observation_end.to_string(),
                    r.health_centre_id.to_string(),
                ]);
            }
            let chunk = w.take();
            if !full {
                return Some((Ok::<_, std::io::Error>(chunk), (None, w, true)));
            }
            match persons::export_page(&db, &v, last.unwrap_or(0), PAGE, Some(&ip)).await {
                Ok(next) => Some((Ok(chunk), (Some(next), w, false))),
                Err(e) => {
                    tracing::error!(error = %e, "line-list export failed");
                    Some((Err(std::io::Error::other("export failed")), (None, w, true)))
                }
            }
        }
    });
    Ok(csv_response(enc, "line-list.csv", Body::from_stream(body)))
}
