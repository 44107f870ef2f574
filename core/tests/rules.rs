//! Escalation rules, table-driven from the shipped `flows/rules.toml`, with the boundaries
//! (SpO2 93 / 94 / 95 / 96, 37.9 / 38.0 °C) and fever streaks across midnight and time zones.
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use mimamori_core::{
    domain::{Spo2, Temperature},
    rules::{self, Priority, Thresholds},
    store::observations::Answer,
};

fn shipped() -> Thresholds {
    Thresholds::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows")).unwrap()
}

fn answer(temp: Option<f64>, spo2: Option<i32>, urgent: bool) -> Answer {
    Answer {
        temperature: temp.map(|t| Temperature::new("t", t).unwrap()),
        spo2: spo2.map(|s| Spo2::new("s", s).unwrap()),
        urgent,
        urgent_signs: if urgent {
            vec!["urgent_breathing".into()]
        } else {
            vec![]
        },
        ..Default::default()
    }
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[test]
fn shipped_rules_are_the_documented_defaults() {
    let t = shipped();
    assert_eq!(t, Thresholds::default());
    assert_eq!(
        (
            t.spo2_urgent_at_or_below,
            t.spo2_high_at_or_below,
            t.fever_at_or_above,
            t.fever_streak_days,
            t.non_reporting_streak
        ),
        (93, 95, 38.0, 3, 2)
    );
}

/// (temperature, SpO2, urgent sign, expected (reason, priority) list)
type Case = (
    Option<f64>,
    Option<i32>,
    bool,
    &'static [(&'static str, Priority)],
);

#[test]
fn single_answer_table() {
    let t = shipped();
    let today = d("2026-11-24");
    // (temperature, SpO2, urgent sign, expected (reason, priority) list)
    let cases: &[Case] = &[
        (Some(36.5), Some(98), false, &[]),
        (Some(36.5), Some(96), false, &[]),
        (Some(36.5), Some(95), false, &[("spo2_low", Priority::High)]),
        (Some(36.5), Some(94), false, &[("spo2_low", Priority::High)]),
        (
            Some(36.5),
            Some(93),
            false,
            &[("spo2_low", Priority::Urgent)],
        ),
        (
            Some(36.5),
            Some(85),
            false,
            &[("spo2_low", Priority::Urgent)],
        ),
        (Some(36.5), None, false, &[]),
        (None, None, true, &[("urgent_sign", Priority::Urgent)]),
        (
            Some(36.5),
            Some(92),
            true,
            &[
                ("urgent_sign", Priority::Urgent),
                ("spo2_low", Priority::Urgent),
            ],
        ),
        // One feverish day is not a streak.
        (Some(39.5), Some(97), false, &[]),
    ];
    for (temp, spo2, urgent, want) in cases {
        let a = answer(*temp, *spo2, *urgent);
        let daily: Vec<(NaiveDate, f64)> = temp.map(|v| (today, v)).into_iter().collect();
        let got: Vec<(&str, Priority)> = rules::on_answer(&t, &a, today, &daily)
            .into_iter()
            .map(|tr| (tr.reason, tr.priority))
            .collect();
        assert_eq!(&got, want, "temp {temp:?} spo2 {spo2:?} urgent {urgent}");
    }
}

#[test]
fn fever_streak_boundaries() {
    let t = shipped();
    let today = d("2026-11-24");
    let streak = |temps: &[(i64, f64)]| -> bool {
        let daily: Vec<(NaiveDate, f64)> = temps
            .iter()
            .map(|(ago, v)| (today - Duration::days(*ago), *v))
            .collect();
        rules::on_answer(&t, &answer(Some(daily[0].1), None, false), today, &daily)
            .iter()
            .any(|tr| tr.reason == "fever_streak")
    };
    assert!(streak(&[(0, 38.0), (1, 38.0), (2, 38.0)]), "38.0 counts");
    assert!(
        !streak(&[(0, 38.0), (1, 37.9), (2, 38.0)]),
        "37.9 breaks the streak"
    );
    assert!(
        !streak(&[(0, 38.5), (1, 38.5), (3, 38.5)]),
        "a gap day breaks the streak"
    );
    assert!(
        !streak(&[(1, 38.5), (2, 38.5), (3, 38.5)]),
        "the streak must reach today"
    );
    assert!(streak(&[(0, 38.2), (1, 39.0), (2, 38.1), (3, 36.5)]));
}

#[test]
fn streak_days_are_local_days_of_the_health_centre() {
    // Three evening readings in Tokyo (22:30 JST) fall on three local dates, but on three
    // UTC dates only because 22:30 JST = 13:30 UTC; readings at 08:30 JST on three days fall
    // on the previous UTC dates — the rule must count Tokyo dates, not UTC ones.
    let tz = chrono_tz::Asia::Tokyo;
    let readings = [
        Utc.with_ymd_and_hms(2026, 11, 21, 23, 30, 0).unwrap(), // 11-22 08:30 JST
        Utc.with_ymd_and_hms(2026, 11, 22, 23, 30, 0).unwrap(), // 11-23 08:30 JST
        Utc.with_ymd_and_hms(2026, 11, 23, 23, 30, 0).unwrap(), // 11-24 08:30 JST
    ];
    let daily: Vec<(NaiveDate, f64)> = readings
        .iter()
        .map(|r| (r.with_timezone(&tz).date_naive(), 38.3))
        .collect();
    let today = readings[2].with_timezone(&tz).date_naive();
    assert_eq!(today, d("2026-11-24"));
    let fired = rules::on_answer(&shipped(), &answer(Some(38.3), None, false), today, &daily);
    assert_eq!(
        fired.iter().map(|t| t.reason).collect::<Vec<_>>(),
        ["fever_streak"]
    );
    // Two readings on one Tokyo day (morning and just before midnight) are one day.
    let same_day = [
        Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap(), // 11-23 09:00 JST
        Utc.with_ymd_and_hms(2026, 11, 23, 14, 59, 0).unwrap(), // 11-23 23:59 JST
        Utc.with_ymd_and_hms(2026, 11, 23, 15, 1, 0).unwrap(), // 11-24 00:01 JST
    ];
    let mut daily: Vec<(NaiveDate, f64)> = Vec::new();
    for r in same_day {
        let day = r.with_timezone(&tz).date_naive();
        if !daily.iter().any(|(x, _)| *x == day) {
            daily.push((day, 38.5));
        }
    }
    assert_eq!(daily.len(), 2);
    assert!(
        rules::on_answer(
            &shipped(),
            &answer(Some(38.5), None, false),
            d("2026-11-24"),
            &daily
        )
        .is_empty()
    );
}

#[test]
fn non_reporting_streak() {
    let t = shipped();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let low = rules::Risk::default();
    assert!(rules::on_missed(&t, &s(&["missed", "missed"]), &low).is_some());
    assert!(rules::on_missed(&t, &s(&["missed", "missed", "answered"]), &low).is_some());
    assert!(rules::on_missed(&t, &s(&["missed", "answered", "missed"]), &low).is_none());
    assert!(rules::on_missed(&t, &s(&["missed"]), &low).is_none());
    assert!(
        rules::on_missed(&t, &s(&["failed", "missed"]), &low).is_none(),
        "a failed send is 'unreachable', not silence"
    );
}

/// A person at high risk is escalated after the first miss; the detail says why. Each
/// factor on its own is enough; age counts from the threshold on.
#[test]
fn non_reporting_is_risk_aware() {
    let t = shipped();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let one = s(&["missed", "answered"]);
    let cases = [
        (
            rules::Risk {
                age: Some(64),
                ..Default::default()
            },
            None,
        ),
        (
            rules::Risk {
                age: Some(65),
                ..Default::default()
            },
            Some("age 65"),
        ),
        (
            rules::Risk {
                conditions: true,
                ..Default::default()
            },
            Some("underlying conditions"),
        ),
        (
            rules::Risk {
                pregnant: true,
                ..Default::default()
            },
            Some("pregnancy"),
        ),
        (
            rules::Risk {
                recent_serious_escalation: true,
                ..Default::default()
            },
            Some("recent high or urgent escalation"),
        ),
    ];
    for (risk, why) in cases {
        let got = rules::on_missed(&t, &one, &risk);
        match why {
            None => assert!(got.is_none(), "{risk:?}"),
            Some(w) => assert!(got.unwrap().detail.contains(w), "{risk:?}"),
        }
    }
    // Configurable: age off, conditions off, or a longer streak for high risk.
    let off = t
        .with_overrides(r#"{"high_risk_age_at_or_over": 0, "high_risk_conditions": false}"#)
        .unwrap();
    let old_and_ill = rules::Risk {
        age: Some(90),
        conditions: true,
        ..Default::default()
    };
    assert!(rules::on_missed(&off, &one, &old_and_ill).is_none());
    assert!(
        t.with_overrides(r#"{"non_reporting_streak_high_risk": 3}"#)
            .is_err(),
        "high risk never waits longer than everyone else"
    );
}

#[test]
fn health_centre_overrides() {
    let t = shipped();
    let o = t
        .with_overrides(r#"{"spo2_urgent_at_or_below": 94, "fever_streak_days": 2}"#)
        .unwrap();
    assert_eq!(
        (
            o.spo2_urgent_at_or_below,
            o.spo2_high_at_or_below,
            o.fever_streak_days
        ),
        (94, 95, 2)
    );
    assert_eq!(t.with_overrides("{}").unwrap(), t);
    assert!(
        t.with_overrides(r#"{"spo2_urgent_at_or_below": 97}"#)
            .is_err(),
        "urgent above high is refused"
    );
    assert!(
        t.with_overrides(r#"{"typo": 1}"#).is_err(),
        "unknown keys are refused"
    );
    let fired = rules::on_answer(&o, &answer(None, Some(94), false), d("2026-11-24"), &[]);
    assert_eq!(fired[0].priority, Priority::Urgent);
}
