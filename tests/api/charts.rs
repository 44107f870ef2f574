//! What staff see: the SVG chart of a fixed person (snapshot), and the person page rendered
//! by headless Chromium with the chart visible (screenshot kept in target/).
use chrono::{NaiveDate, TimeZone, Utc};
use mimamori::web::chart::{ChartInput, render};
use mimamori_core::{domain::Lang, store::observations::Observation};

fn obs(id: i64, day: u32, hour: u32, temp: f64, spo2: Option<i32>, urgent: bool) -> Observation {
    Observation {
        id,
        person_id: 1,
        checkin_id: None,
        source: "web".into(),
        reporter: "self".into(),
        // hour in JST
        observed_at: Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
            - chrono::Duration::hours(9),
        temperature_c: Some(temp),
        spo2,
        symptoms: "{}".into(),
        urgent,
        note: None,
    }
}

#[test]
fn chart_svg_snapshot_for_a_fixed_person() {
    // 14 days, two check-ins a day for the first three days, then worsening.
    let o = vec![
        obs(1, 10, 9, 36.8, Some(98), false),
        obs(2, 10, 17, 37.1, Some(97), false),
        obs(3, 11, 9, 37.6, Some(97), false),
        obs(4, 11, 17, 38.2, Some(96), false),
        obs(5, 12, 9, 38.4, Some(95), false),
        obs(6, 13, 9, 38.9, Some(93), true),
        obs(7, 15, 9, 37.4, None, false),
    ];
    let d = |x: u32| NaiveDate::from_ymd_opt(2026, 11, x).unwrap();
    for lang in [Lang::Ja, Lang::En] {
        let svg = render(&ChartInput {
            lang,
            tz: chrono_tz::Asia::Tokyo,
            start: d(10),
            end: d(23),
            observations: &o,
            missed: &[d(14)],
            baseline: mimamori_core::rules::trend::baseline(
                &o.iter().filter_map(|x| x.spo2).collect::<Vec<_>>(),
                3,
            ),
        })
        .into_string();
        assert_eq!(svg.matches("<path").count(), 2, "one path per series");
        // The person's own baseline (median of 98, 97, 97) is drawn and named.
        assert_eq!(svg.matches("class=\"baseline\"").count(), 1);
        assert!(svg.contains(if lang == Lang::Ja {
            "本人の基準値 97 %"
        } else {
            "own baseline 97 %"
        }));
        assert_eq!(svg.matches("class=\"missed\"").count(), 1);
        assert_eq!(
            svg.matches("class=\"urgent\"").count(),
            1,
            "the urgent answer is marked"
        );
        insta::assert_snapshot!(
            format!("chart_{}", lang.as_str()),
            svg.replace("><", ">\n<")
        );
    }
}

/// The person page in a real browser: it renders, the chart is visible and has its series.
#[tokio::test]
async fn person_page_renders_in_headless_chromium() {
    let app = crate::helpers::spawn_app().await;
    app.login().await;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive();
    let r = app.post_json("/api/v1/persons", &serde_json::json!({
        "name": "山本 太郎", "email": "y@example.jp", "channel": "email",
        "observation_start": (today - chrono::Duration::days(3)).to_string(), "observation_end": (today + chrono::Duration::days(4)).to_string()
    })).await;
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    for (days_ago, t, s) in [(3, 37.0, 97), (2, 37.8, 96), (1, 38.3, 94)] {
        let a = mimamori_core::store::observations::Answer {
            temperature: Some(mimamori_core::domain::Temperature::new("t", t).unwrap()),
            spo2: Some(mimamori_core::domain::Spo2::new("s", s).unwrap()),
            ..Default::default()
        };
        let at = chrono::Utc::now() - chrono::Duration::days(days_ago);
        mimamori_core::store::observations::record_by_staff(
            &app.db,
            mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
            id,
            "self",
            "web",
            at,
            &a,
            None,
            &Default::default(),
        )
        .await
        .unwrap();
    }
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("person-page.png");
    let base = app.base.clone();
    let path = format!("/persons/{id}");
    let out2 = out.clone();
    let v = tokio::task::spawn_blocking(move || {
        crate::peers::screenshot(
            &base,
            "nurse",
            crate::helpers::PASSWORD,
            &crate::helpers::totp_now(),
            &path,
            &out2,
        )
    })
    .await
    .unwrap();
    assert_eq!(v["status"], 200, "{v}");
    assert!(
        v["width"].as_f64().unwrap() > 300.0 && v["height"].as_f64().unwrap() > 200.0,
        "chart visible: {v}"
    );
    assert_eq!(v["paths"], 2, "{v}");
    assert!(v["title"].as_str().unwrap().contains("山本 太郎"));
    assert!(
        std::fs::metadata(&out).unwrap().len() > 20_000,
        "a real screenshot"
    );
    app.finish().await;
}
