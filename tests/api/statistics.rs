//! Statistics and publication over HTTP: the open-data files parse with their documented
//! headers in UTF-8 (with BOM) and CP932 and carry nothing that identifies a person; the line
//! list streams the caller's people only, each audited; a role sees only its area's figures.
use mimamori_core::{access::Role, stats::opendata};
use serde_json::json;

use crate::helpers::{person_elsewhere, spawn_app, today};

async fn wait_for_stats(app: &crate::helpers::TestApp) {
    for _ in 0..200 {
        if app.count("SELECT COUNT(*) FROM stats_dirty").await == 0
            && app.count("SELECT COUNT(*) FROM stats_sources").await > 0
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the statistics job did not catch up within 10 s");
}

fn parse(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::ReaderBuilder::new().from_reader(bytes);
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

#[tokio::test]
async fn open_data_files_parse_in_both_encodings_and_identify_no_one() {
    let app = spawn_app().await;
    app.login().await;
    mimamori_core::store::staff::set_prefecture(&app.db, app.centre, "13")
        .await
        .unwrap();
    for (i, (name, dob, sex)) in [
        ("髙橋 一郎", "1950-04-01", "male"),
        ("=HYPERLINK 花子", "1995-05-05", "female"),
        ("鈴木 次郎", "", ""),
    ]
    .into_iter()
    .enumerate()
    {
        app.register(
            &format!("090-5555-000{i}"),
            "sms",
            json!({"name": name, "date_of_birth": dob, "sex": sex, "municipality": "新宿区",
                   "address": "西新宿2-8-1", "onset_date": today(), "observation_end": ""}),
        )
        .await;
    }
    app.register(
        "090-5555-0009",
        "sms",
        json!({"monitoring_type": "contact"}),
    )
    .await;
    wait_for_stats(&app).await;

    let r = app.get("/api/v1/opendata/patients.csv").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let utf8 = r.bytes().await.unwrap();
    assert!(utf8.starts_with(b"\xEF\xBB\xBF"), "UTF-8 with a BOM");
    let (header, rows) = parse(&utf8[3..]);
    assert_eq!(header, opendata::PATIENTS_HEADER);
    assert_eq!(rows.len(), 3, "three cases, not the contact");
    let text = String::from_utf8_lossy(&utf8);
    for never in [
        "髙橋",
        "花子",
        "鈴木",
        "1950-04-01",
        "西新宿",
        "+8190",
        "5555",
    ] {
        assert!(!text.contains(never), "{never} is in the published file");
    }
    let ages: Vec<&str> = rows.iter().map(|r| r[7].as_str()).collect();
    assert_eq!(ages, vec!["70代", "30代", ""]);
    let sexes: Vec<&str> = rows.iter().map(|r| r[8].as_str()).collect();
    assert_eq!(sexes, vec!["男性", "女性", ""]);
    assert!(rows.iter().all(|r| r[1] == "130001" && r[2] == "東京都"));
    assert!(rows.iter().all(|r| r[4] == today() && r[6] == "新宿区"));
    assert_eq!(
        rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        vec!["1", "2", "3"]
    );

    let r = app
        .get("/api/v1/opendata/patients.csv?encoding=cp932")
        .await;
    assert_eq!(r.headers()["content-type"], "text/csv; charset=Shift_JIS");
    let sjis = r.bytes().await.unwrap();
    let (decoded, _, bad) = encoding_rs::SHIFT_JIS.decode(&sjis);
    assert!(!bad);
    assert_eq!(decoded.as_bytes(), &utf8[3..], "the same file in CP932");

    let r = app.get("/api/v1/opendata/tests.csv").await;
    let (header, _) = parse(&r.bytes().await.unwrap()[3..]);
    assert_eq!(header, opendata::TESTS_HEADER);
    let r = app
        .get("/api/v1/opendata/patients.csv?encoding=latin1")
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'stats.opendata_patients'")
            .await,
        2
    );
    app.finish().await;
}

#[tokio::test]
async fn the_line_list_streams_the_callers_people_each_audited() {
    let app = spawn_app().await;
    app.login().await;
    let mine = [
        app.register("090-6666-0001", "sms", json!({"name": "一人目"}))
            .await,
        app.register("090-6666-0002", "sms", json!({"name": "二人目"}))
            .await,
    ];
    let elsewhere = person_elsewhere(&app).await;
    let r = app.get("/persons.csv").await;
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    let (_, rows) = parse(&body[3..]);
    let ids: Vec<i64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(ids, mine.to_vec());
    assert!(!ids.contains(&elsewhere));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'person.export'")
            .await,
        2
    );
    // Resuming after the first id sends the rest.
    let r = app
        .get(&format!("/api/v1/persons.csv?after={}", mine[0]))
        .await;
    let (_, rows) = parse(&r.bytes().await.unwrap()[3..]);
    assert_eq!(rows.len(), 1);
    // A contractor with nobody assigned gets an empty list; an analyst is refused.
    let contractor = app.user("contractor1", Role::Contractor, None).await;
    let r = contractor
        .get(app.url("/persons.csv"))
        .send()
        .await
        .unwrap();
    let (_, rows) = parse(&r.bytes().await.unwrap()[3..]);
    assert!(rows.is_empty());
    let analyst = app.user("analyst1", Role::Analyst, None).await;
    let r = analyst.get(app.url("/persons.csv")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    app.finish().await;
}

#[tokio::test]
async fn a_role_sees_only_its_areas_figures() {
    let app = spawn_app().await;
    app.login().await;
    app.register(
        "090-7777-0001",
        "sms",
        json!({"onset_date": today(), "observation_end": ""}),
    )
    .await;
    person_elsewhere(&app).await;
    wait_for_stats(&app).await;
    let csv_total = |bytes: &[u8]| -> i64 {
        let (header, rows) = parse(&bytes[3..]);
        let col = header.iter().position(|h| h == "case_reported").unwrap();
        rows.iter().map(|r| r[col].parse::<i64>().unwrap()).sum()
    };
    let mine = csv_total(&app.get("/stats.csv").await.bytes().await.unwrap());
    assert_eq!(mine, 1, "the nurse's centre only");
    // Asking for another centre's figures is refused by name.
    let r = app.get("/stats.csv?centre=999").await;
    assert_eq!(r.status(), 422);
    for role in [
        Role::Contractor,
        Role::LodgingFacility,
        Role::MedicalInstitution,
    ] {
        let c = app.user(&format!("u-{}", role.as_str()), role, None).await;
        let r = c.get(app.url("/stats")).send().await.unwrap();
        assert_eq!(r.status(), 403, "{role:?}");
    }
    let analyst = app.user("analyst", Role::Analyst, None).await;
    let r = analyst.get(app.url("/stats.csv")).send().await.unwrap();
    assert_eq!(
        csv_total(&r.bytes().await.unwrap()),
        0,
        "nothing granted yet"
    );
    let ministry = app.user("ministry", Role::MinistryAdmin, None).await;
    let r = ministry.get(app.url("/stats.csv")).send().await.unwrap();
    assert_eq!(csv_total(&r.bytes().await.unwrap()), 2, "everything");
    // The ministry narrows to a prefecture of its area; one outside it is refused.
    mimamori_core::store::staff::set_prefecture(&app.db, app.centre, "13")
        .await
        .unwrap();
    let r = ministry
        .get(app.url("/stats.csv?prefecture=13"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv_total(&r.bytes().await.unwrap()), 1);
    let r = ministry
        .get(app.url("/stats.csv?prefecture=01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    app.finish().await;
}

/// Counts of a thousand or more are grouped by thousands where people read them — the
/// statistics page's cards, daily table and chart (its axis and its description for screen
/// readers), the press table — as official documents write
/// them; the daily CSV keeps plain digits for spreadsheets. 1,200 patients imported from
/// the console (reported today: the pages' default day and range).
#[tokio::test]
async fn counts_of_a_thousand_or_more_are_grouped_on_the_pages() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let page =
        crate::helpers::checked(&app, &csrf, crate::helpers::occurrence_csv(1_200, "K")).await;
    let token = crate::helpers::go_ahead_token(&page, "the dry run's go-ahead");
    crate::helpers::go_ahead_and_wait(&app, &csrf, &token).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM persons").await, 1_200);
    wait_for_stats(&app).await;
    let page = app.get("/stats").await.text().await.unwrap();
    assert!(
        page.contains("<dd>1,200</dd>"),
        "the new cases' card, grouped: {page}"
    );
    assert!(
        page.contains("<td>1,200</td>"),
        "the day's row, grouped: {page}"
    );
    assert!(
        !page.contains(">1200<") && !page.contains(": 1200;"),
        "no ungrouped count, the chart's axis and description included: {page}"
    );
    let press = app.get("/stats/press").await.text().await.unwrap();
    assert!(press.contains("1,200"), "the press table, grouped: {press}");
    let csv = app.get("/stats.csv").await.text().await.unwrap();
    assert!(
        csv.contains(",1200") && !csv.contains("1,200"),
        "plain digits in the CSV: {csv}"
    );
    app.finish().await;
}
