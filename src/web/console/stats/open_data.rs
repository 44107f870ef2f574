//! The open-data files (自治体標準オープンデータセット): 陽性患者属性 streamed page by page, 検査実施人数.
use super::*;

/// 陽性患者属性, streamed page by page.
pub(super) async fn opendata_patients(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Query(f): Query<Filter>,
) -> Result<Response, HtmlError> {
    let a = asked(&s, &who.viewer(), &f, 28).await?;
    let enc = f.encoding()?;
    let prefectures = prefecture_names(&s).await?;
    let centres: std::collections::HashMap<i64, Centre> =
        a.centres.iter().map(|c| (c.id, c.clone())).collect();
    let ip = addr.ip().to_string();
    stats::audit_export(&s.db, &who.viewer(), "stats.opendata_patients", Some(&ip)).await?;
    let today = japan_today();
    type Page = mimamori_core::Result<(Vec<stats::PublishedCase>, Option<i64>)>;
    struct St {
        s: AppState,
        a: Asked,
        after: i64,
        n: u64,
        w: CsvChunks,
        done: bool,
        /// The next page, already asked for while this one is written (the database and the
        /// CSV writing overlap).
        next: Option<tokio::task::JoinHandle<Page>>,
    }
    let fetch = move |s: &AppState, a: &Asked, after: i64| {
        let (db, area, from, to) = (s.db.clone(), a.area.clone(), a.from, a.to);
        tokio::spawn(async move {
            stats::published_cases(&db, &area, after, PAGE, from, to, today).await
        })
    };
    let mut w = CsvChunks::new(enc);
    w.row(opendata::PATIENTS_HEADER);
    let start = St {
        s: s.clone(),
        a,
        after: 0,
        n: 0,
        w,
        done: false,
        next: None,
    };
    let body = futures::stream::unfold(start, move |mut st| {
        let prefectures = prefectures.clone();
        let centres = centres.clone();
        async move {
            if st.done {
                return None;
            }
            let handle = match st.next.take() {
                Some(h) => h,
                None => fetch(&st.s, &st.a, st.after),
            };
            let page = handle
                .await
                .unwrap_or_else(|e| Err(mimamori_core::Error::Internal(e.to_string())));
            if let Ok((_, Some(last))) = &page {
                st.next = Some(fetch(&st.s, &st.a, *last));
            }
            let (cases, last) = match page {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "open-data export failed");
                    st.done = true;
                    return Some((Err(std::io::Error::other("export failed")), st));
                }
            };
            for c in &cases {
                st.n += 1;
                let centre = centres.get(&c.centre);
                let pref = centre.map(|x| x.prefecture.as_str()).unwrap_or("");
                let code = centre
                    .and_then(|x| opendata::lg_code(&x.lg_code))
                    .unwrap_or_else(|| opendata::prefecture_code(pref));
                let residence = format!(
                    "{}{}",
                    c.residence_prefecture
                        .as_deref()
                        .and_then(|p| prefectures.get(p))
                        .map(String::as_str)
                        .unwrap_or(""),
                    c.residence_municipality.as_deref().unwrap_or("")
                );
                st.w.row([
                    st.n.to_string(),
                    code,
                    prefectures.get(pref).cloned().unwrap_or_default(),
                    centre.map(|x| x.municipality.clone()).unwrap_or_default(),
                    c.report_day.to_string(),
                    c.onset_date.map(|d| d.to_string()).unwrap_or_default(),
                    residence,
                    opendata::age_label(c.age_band).to_string(),
                    opendata::sex_label(&c.sex).to_string(),
                    String::new(),
                    opendata::state_label(&c.state).to_string(),
                    String::new(),
                    String::new(),
                    if c.released { "1" } else { "0" }.to_string(),
                    if c.repositive {
                        "再陽性".to_string()
                    } else {
                        String::new()
                    },
                ]);
            }
            match last {
                Some(id) => st.after = id,
                None => st.done = true,
            }
            Some((Ok::<_, std::io::Error>(st.w.take()), st))
        }
    });
    Ok(csv_response(
        enc,
        "positive_patients.csv",
        Body::from_stream(body),
    ))
}

pub(super) async fn prefecture_names(
    s: &AppState,
) -> Result<std::sync::Arc<std::collections::HashMap<String, String>>, AppError> {
    Ok(std::sync::Arc::new(
        mimamori_core::store::staff::prefectures(&s.db)
            .await?
            .into_iter()
            .collect(),
    ))
}

/// 検査実施人数: people tested per day and centre.
pub(super) async fn opendata_tests(
    State(s): State<AppState>,
    who: CurrentStaff,
    Query(f): Query<Filter>,
) -> Result<Response, HtmlError> {
    let a = asked(&s, &who.viewer(), &f, 28).await?;
    let enc = f.encoding()?;
    let prefectures = prefecture_names(&s).await?;
    let rows = stats::tested_per_day(&s.db, &a.area, a.from, a.to).await?;
    let mut w = CsvChunks::new(enc);
    w.row(opendata::TESTS_HEADER);
    for (day, centre, n) in rows {
        let c = a.centres.iter().find(|c| c.id == centre);
        let pref = c.map(|x| x.prefecture.as_str()).unwrap_or("");
        w.row([
            day.to_string(),
            c.and_then(|x| opendata::lg_code(&x.lg_code))
                .unwrap_or_else(|| opendata::prefecture_code(pref)),
            prefectures.get(pref).cloned().unwrap_or_default(),
            c.map(|x| x.municipality.clone()).unwrap_or_default(),
            n.to_string(),
            String::new(),
        ]);
    }
    Ok(csv_response(enc, "test_people.csv", Body::from(w.take())))
}
