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

// ---------------------------------------------------------------------------------------
// Rules over the person's own history (rules::trend), table-driven: each case is a course
// of readings (days ago, temperature, SpO2, "worse", yes-symptoms) and the reasons the
// *last* reading fires.

mod trend_rules {
    use super::*;
    use mimamori_core::rules::trend::{self, History, Reading};
    use std::collections::BTreeMap;

    type R = (i64, Option<f64>, Option<i32>, bool, &'static [&'static str]);

    /// Folds the readings (at 09:00 JST on each day) and returns the last one's reasons.
    fn last_fires(t: &Thresholds, onset: Option<NaiveDate>, course: &[R]) -> Vec<&'static str> {
        let tz = chrono_tz::Asia::Tokyo;
        let today = d("2026-11-24");
        let mut h = History::default();
        let mut out = Vec::new();
        for (ago, temp, spo2, worse, yes) in course {
            let day = today - Duration::days(*ago);
            let at = tz
                .from_local_datetime(&day.and_hms_opt(9, 0, 0).unwrap())
                .unwrap()
                .with_timezone(&Utc);
            let symptoms: BTreeMap<String, bool> =
                yes.iter().map(|s| (s.to_string(), true)).collect();
            let mut choices = BTreeMap::new();
            choices.insert(
                "feeling".to_string(),
                if *worse { "worse" } else { "same" }.to_string(),
            );
            let r = Reading {
                at,
                temperature: *temp,
                spo2: *spo2,
                urgent: false,
                urgent_signs: &[],
                symptoms: &symptoms,
                choices: &choices,
            };
            out = trend::step(t, &mut h, &r, at.with_timezone(&tz).date_naive(), onset);
        }
        let mut v: Vec<&'static str> = out.into_iter().map(|t| t.reason).collect();
        v.sort_unstable();
        v
    }

    fn spo2s(v: &[i32]) -> Vec<R> {
        let n = v.len() as i64;
        v.iter()
            .enumerate()
            .map(|(i, s)| (n - 1 - i as i64, Some(36.6), Some(*s), false, &[][..]))
            .collect()
    }

    #[test]
    fn spo2_against_the_persons_own_baseline() {
        let t = shipped();
        let cases: &[(&[i32], &[&str])] = &[
            // Baseline 98 (median of 98, 97, 99): 96 is 2 below — nothing; 95 is the fixed
            // threshold — the fixed rule, not the baseline one.
            (&[98, 97, 99, 96], &[]),
            (&[98, 97, 99, 95], &["spo2_low"]),
            // Baseline 99: 96 is 3 below and above the fixed threshold.
            (&[99, 98, 99, 96], &["spo2_baseline"]),
            // Too few readings for a baseline: nothing but the fixed rules.
            (&[99, 96], &[]),
            // … though a steady fall over three readings needs none.
            (&[99, 99, 96], &["spo2_falling"]),
            // A person whose baseline is low (95, e.g. with COPD): the fixed rule fires on
            // their normal readings; the baseline rule never adds to it below the threshold.
            (&[95, 95, 96, 95], &["spo2_low"]),
            // 98, 97, 96 falls by 2 only; 3 below the baseline 99 still fires.
            (&[99, 99, 98, 97, 96], &["spo2_baseline"]),
            // Falling over three readings by 3 while still above the threshold (and 3 below
            // the baseline 99: both say so).
            (&[99, 99, 99, 98, 96], &["spo2_baseline", "spo2_falling"]),
            (&[97, 97, 98, 97, 96, 95 + 1], &[]),
            (&[97, 98, 97, 98, 97, 96], &[]),
            // A rise in between breaks the fall.
            (&[99, 99, 98, 99, 96], &["spo2_baseline"]),
        ];
        for (course, want) in cases {
            assert_eq!(&last_fires(&t, None, &spo2s(course)), want, "{course:?}");
        }
        // Off at 0.
        let off = t
            .with_overrides(r#"{"spo2_baseline_drop": 0, "spo2_falling_readings": 0}"#)
            .unwrap();
        assert!(last_fires(&off, None, &spo2s(&[99, 99, 99, 98, 96])).is_empty());
        assert_eq!(
            trend::baseline(&[97, 99], 2),
            Some(97),
            "even count: the lower middle"
        );
        assert_eq!(trend::baseline(&[97, 99], 3), None);
    }

    #[test]
    fn temperature_rising_and_fever_returning() {
        let t = shipped();
        let temps = |v: &[(i64, f64)]| -> Vec<R> {
            v.iter()
                .map(|(ago, c)| (*ago, Some(*c), Some(98), false, &[][..]))
                .collect()
        };
        type Course<'a> = &'a [(i64, f64)];
        let cases: &[(Course, &[&str])] = &[
            // Rising on three consecutive days by 1.0 to 37.5: fires at the boundary.
            (&[(2, 36.5), (1, 37.0), (0, 37.5)], &["temp_rising"]),
            (&[(2, 36.6), (1, 37.0), (0, 37.5)], &[]),
            // A missing day breaks the run.
            (&[(3, 36.5), (1, 37.0), (0, 37.6)], &[]),
            // Fever, two afebrile days, fever again: returned.
            (
                &[(4, 38.2), (3, 37.4), (2, 36.8), (1, 36.7), (0, 37.8)],
                &["fever_returned"],
            ),
            // Only one afebrile day between: not yet "returned".
            (&[(2, 38.2), (1, 36.8), (0, 37.8)], &[]),
            // Missing days do not count as afebrile: the two days before must have readings.
            (&[(6, 38.2), (2, 36.8), (0, 37.8)], &[]),
            // No earlier fever: a first fever is not a return.
            (&[(3, 36.5), (2, 36.6), (1, 36.6), (0, 37.9)], &[]),
        ];
        for (course, want) in cases {
            assert_eq!(&last_fires(&t, None, &temps(course)), want, "{course:?}");
        }
    }

    #[test]
    fn readings_on_one_tokyo_day_are_one_day() {
        // Three readings on two local days (two on the evening of 11-23 JST and at 00:30 on
        // 11-24) are not three days of rising temperature.
        let t = shipped();
        let tz = chrono_tz::Asia::Tokyo;
        let mut h = History::default();
        let empty = BTreeMap::new();
        let choices = BTreeMap::new();
        let mut last = Vec::new();
        for (local, c) in [
            ("2026-11-23 08:00", 36.5),
            ("2026-11-23 22:00", 37.0),
            ("2026-11-24 00:30", 37.6),
        ] {
            let at = tz
                .from_local_datetime(
                    &chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap(),
                )
                .unwrap()
                .with_timezone(&Utc);
            let r = Reading {
                at,
                temperature: Some(c),
                spo2: None,
                urgent: false,
                urgent_signs: &[],
                symptoms: &empty,
                choices: &choices,
            };
            last = trend::step(&t, &mut h, &r, at.with_timezone(&tz).date_naive(), None);
        }
        assert!(last.is_empty(), "{last:?}");
        assert_eq!(h.days.len(), 2);
        assert_eq!(h.days[0].max_temp, Some(37.0));
    }

    #[test]
    fn worse_day_after_day_and_late_symptoms() {
        let t = shipped();
        let onset = Some(d("2026-11-16")); // 11-24 is day 8
        let worse = |v: &[(i64, bool)]| -> Vec<R> {
            v.iter()
                .map(|(ago, w)| (*ago, Some(36.6), Some(98), *w, &[][..]))
                .collect()
        };
        assert_eq!(
            last_fires(&t, None, &worse(&[(1, true), (0, true)])),
            ["worse_repeated"]
        );
        assert!(
            last_fires(&t, None, &worse(&[(2, true), (0, true)])).is_empty(),
            "a gap day"
        );
        assert!(last_fires(&t, None, &worse(&[(1, true), (0, false)])).is_empty());
        let sym = |yes_today: &'static [&'static str]| -> Vec<R> {
            vec![
                (3, Some(36.6), Some(98), false, &["cough"][..]),
                (2, Some(36.6), Some(98), false, &["cough"][..]),
                (0, Some(36.6), Some(98), false, yes_today),
            ]
        };
        assert_eq!(
            last_fires(&t, onset, &sym(&["cough", "breathless"])),
            ["late_symptoms"]
        );
        assert!(
            last_fires(&t, onset, &sym(&["cough"])).is_empty(),
            "not new"
        );
        // Day 6: too early to count as the late deterioration.
        assert!(last_fires(&t, Some(d("2026-11-18")), &sym(&["fatigue"])).is_empty());
        // Without an onset date, day 0 is the first reading (11-21): day 3.
        assert!(last_fires(&t, None, &sym(&["fatigue"])).is_empty());
        // Fewer than two earlier readings: every symptom is "new"; nothing fires.
        assert!(
            last_fires(
                &t,
                onset,
                &[(0, Some(36.6), Some(98), false, &["fatigue"][..])]
            )
            .is_empty()
        );
    }

    #[test]
    fn home_early_warning_score() {
        let t = shipped();
        let cases: &[(Option<i32>, Option<f64>, bool, u32)] = &[
            (Some(96), Some(36.5), false, 0),
            (Some(95), Some(38.1), false, 2),
            (Some(96), Some(39.1), true, 4),
            (Some(95), Some(39.1), true, 5),
            (Some(91), Some(35.0), false, 6),
            (None, Some(35.1), false, 1),
        ];
        for (s, c, b, want) in cases {
            assert_eq!(trend::score(*s, *c, *b).0, *want, "{s:?} {c:?} {b}");
        }
        let one = |s: i32, c: f64, b: bool| -> Vec<&'static str> {
            let yes: &'static [&'static str] = if b { &["breathless"] } else { &[] };
            last_fires(&t, None, &[(0, Some(c), Some(s), false, yes)])
        };
        assert_eq!(one(96, 39.1, true), Vec::<&str>::new(), "4 is below 5");
        assert_eq!(one(95, 39.1, true), ["score", "spo2_low"]);
    }

    #[test]
    fn trend_thresholds_that_cannot_work_are_refused() {
        let t = shipped();
        for (json, want) in [
            (
                r#"{"spo2_baseline_readings": 11}"#,
                "spo2_baseline_readings = 11 is too large",
            ),
            (
                r#"{"temp_rising_days": 1}"#,
                "temp_rising_days = 1 compares nothing",
            ),
            (
                r#"{"fever_return_at_or_above": 3.75}"#,
                "is not a body temperature",
            ),
            (r#"{"temp_rising_by": -1}"#, "is not a rise"),
            (
                r#"{"score_high_at_or_above": 9}"#,
                "score_high_at_or_above = 9 is too large",
            ),
        ] {
            let e = t.with_overrides(json).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
        // Overrides written before the trend rules existed still load, with the defaults.
        let old = t
            .with_overrides(r#"{"spo2_urgent_at_or_below": 92}"#)
            .unwrap();
        assert_eq!(old.spo2_baseline_drop, 3);
    }
}

#[test]
fn shipped_rules_fit_the_shipped_flows() {
    let flows = mimamori_core::flows::Flows::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows"),
    )
    .unwrap();
    let t = shipped();
    assert_eq!(t.problems_with(&flows), Vec::<String>::new());
    let wrong = t.with_overrides(r#"{"worse_question": "mood"}"#).unwrap();
    let p = wrong.problems_with(&flows);
    assert_eq!(p.len(), 1);
    assert!(p[0].contains("worse_question = \"mood\""), "{p:?}");
    let off = t
        .with_overrides(r#"{"worse_question": "mood", "worse_days": 0}"#)
        .unwrap();
    assert!(
        off.problems_with(&flows).is_empty(),
        "a rule turned off reads nothing"
    );
}
