//! Escalation rules: which answers and silences need a human, from thresholds that are data
//! (`flows/rules.toml`, overridable per health centre). Pure functions; the store runs them
//! inside the answer's transaction.
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::answer::Answer;

pub mod lab;
pub mod model;
pub mod trend;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub spo2_urgent_at_or_below: i32,
    pub spo2_high_at_or_below: i32,
    pub fever_at_or_above: f64,
    pub fever_streak_days: u32,
    pub non_reporting_streak: u32,
    /// Missed check-ins in a row that escalate a person at high risk (see [`Risk`]).
    #[serde(default = "one")]
    pub non_reporting_streak_high_risk: u32,
    /// Age at which a person counts as high risk (0 = age does not count).
    #[serde(default = "sixty_five")]
    pub high_risk_age_at_or_over: u32,
    /// Underlying conditions, immunosuppression, dialysis or pregnancy (the record group
    /// 基礎疾患) count as high risk.
    #[serde(default = "yes")]
    pub high_risk_conditions: bool,
    /// A high or urgent escalation opened within this many days (or still open) counts as
    /// high risk (0 = only an open one).
    #[serde(default = "three")]
    pub high_risk_recent_escalation_days: u32,
    // Rules over the person's own history ([`trend`]); each is off at 0. Defaults apply to
    // rules files and centre overrides written before these rules existed.
    /// Readings whose median is the person's SpO2 baseline.
    #[serde(default = "three")]
    pub spo2_baseline_readings: u32,
    /// Points below the baseline that escalate while still above the fixed threshold.
    #[serde(default = "three")]
    pub spo2_baseline_drop: u32,
    /// Consecutive readings, each no higher than the one before …
    #[serde(default = "three")]
    pub spo2_falling_readings: u32,
    /// … falling by at least this many points from first to last.
    #[serde(default = "three")]
    pub spo2_falling_points: u32,
    /// Consecutive local days whose highest temperature rose each day …
    #[serde(default = "three")]
    pub temp_rising_days: u32,
    /// … by at least this much in all (°C) …
    #[serde(default = "one_degree")]
    pub temp_rising_by: f64,
    /// … ending at or above this temperature.
    #[serde(default = "low_fever")]
    pub temp_rising_to: f64,
    /// A fever (at or above this) that returns …
    #[serde(default = "low_fever")]
    pub fever_return_at_or_above: f64,
    /// … after at least this many days with readings below it.
    #[serde(default = "two")]
    pub fever_return_after_days: u32,
    /// "Worse than yesterday" answered on this many consecutive local days.
    #[serde(default = "two")]
    pub worse_days: u32,
    /// The choice question and choice that mean "worse than yesterday".
    #[serde(default = "feeling")]
    pub worse_question: String,
    #[serde(default = "worse")]
    pub worse_choice: String,
    /// A symptom answered yes for the first time on or after this day of illness (day 0 =
    /// the person's onset date, else their first reading).
    #[serde(default = "seven")]
    pub late_symptom_from_day: u32,
    /// The home early-warning score ([`trend::score`]) at or above which to escalate.
    #[serde(default = "five")]
    pub score_high_at_or_above: u32,
    /// The yes/no question that scores as breathlessness in the home score.
    #[serde(default = "breathless")]
    pub score_breathless_question: String,
}

fn two() -> u32 {
    2
}
fn five() -> u32 {
    5
}
fn seven() -> u32 {
    7
}
fn one_degree() -> f64 {
    1.0
}
fn low_fever() -> f64 {
    37.5
}
fn feeling() -> String {
    "feeling".into()
}
fn worse() -> String {
    "worse".into()
}
fn breathless() -> String {
    "breathless".into()
}

fn one() -> u32 {
    1
}
fn three() -> u32 {
    3
}
fn sixty_five() -> u32 {
    65
}
fn yes() -> bool {
    true
}

/// What the silence rule knows about a person's risk.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Risk {
    /// Age in whole years on the day, if the date of birth is known.
    pub age: Option<u32>,
    /// Any underlying condition, immunosuppression, dialysis ticked in the record group.
    pub conditions: bool,
    pub pregnant: bool,
    /// A high or urgent escalation open, or opened within `high_risk_recent_escalation_days`.
    pub recent_serious_escalation: bool,
}

impl Risk {
    /// Why this person is at high risk under `t`, in words for staff; None when not.
    pub fn high(&self, t: &Thresholds) -> Option<String> {
        let mut why = Vec::new();
        if t.high_risk_age_at_or_over > 0
            && let Some(age) = self.age.filter(|a| *a >= t.high_risk_age_at_or_over)
        {
            why.push(format!("age {age}"));
        }
        if t.high_risk_conditions && self.conditions {
            why.push("underlying conditions".into());
        }
        if t.high_risk_conditions && self.pregnant {
            why.push("pregnancy".into());
        }
        if self.recent_serious_escalation {
            why.push("a recent high or urgent escalation".into());
        }
        (!why.is_empty()).then(|| why.join(", "))
    }
}

const BUILTIN: &str = include_str!("../../../flows/rules.toml");

impl Default for Thresholds {
    fn default() -> Self {
        toml::from_str(BUILTIN).expect("built-in rules are valid")
    }
}

impl Thresholds {
    /// Loads `rules.toml` from the flows folder (built-in defaults when it is absent).
    pub fn load(flows_dir: &Path) -> Result<Thresholds, String> {
        let path = flows_dir.join("rules.toml");
        let src = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(_) if !flows_dir.is_dir() => return Ok(Thresholds::default()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let t: Thresholds = toml::from_str(&src).map_err(|e| {
            let line = e
                .span()
                .map(|s| src[..s.start].matches('\n').count() + 1)
                .unwrap_or(1);
            format!("{}:{line}: {}", path.display(), e.message())
        })?;
        t.validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(t)
    }

    fn validate(&self) -> Result<(), String> {
        if !(35.0..=42.0).contains(&self.fever_at_or_above) {
            return Err(format!(
                "fever_at_or_above = {} is not a body temperature; use 35.0–42.0 °C (37.5 or 38.0)",
                self.fever_at_or_above
            ));
        }
        for (key, v) in [
            ("spo2_urgent_at_or_below", self.spo2_urgent_at_or_below),
            ("spo2_high_at_or_below", self.spo2_high_at_or_below),
        ] {
            if !(50..=100).contains(&v) {
                return Err(format!("{key} = {v} is not an SpO2; use 50–100 %"));
            }
        }
        if self.spo2_urgent_at_or_below > self.spo2_high_at_or_below {
            return Err("spo2_urgent_at_or_below must not be above spo2_high_at_or_below".into());
        }
        if self.fever_streak_days == 0
            || self.non_reporting_streak == 0
            || self.non_reporting_streak_high_risk == 0
        {
            return Err("streak lengths must be at least 1".into());
        }
        trend::validate(self)?;
        if self.non_reporting_streak_high_risk > self.non_reporting_streak {
            return Err(
                "non_reporting_streak_high_risk must not be above non_reporting_streak (people at high risk are escalated sooner, never later)"
                    .into(),
            );
        }
        Ok(())
    }

    /// What in these rules does not fit the flows: a rule that reads a question no flow asks
    /// could never fire. Each problem names the key, why and how to fix it.
    pub fn problems_with(&self, flows: &crate::flows::Flows) -> Vec<String> {
        use crate::flows::QuestionKind;
        let mut out = Vec::new();
        let asked = |id: &str, kind: QuestionKind| {
            flows.all().any(|f| {
                f.questions
                    .iter()
                    .any(|q| q.id.get_ref() == id && q.kind == kind)
            })
        };
        if self.worse_days > 0 {
            let found = flows.all().any(|f| {
                f.questions.iter().any(|q| {
                    q.id.get_ref() == &self.worse_question
                        && q.kind == QuestionKind::Choice
                        && q.choices.iter().any(|c| c.id == self.worse_choice)
                })
            });
            if !found {
                out.push(format!(
                    "rules.toml: worse_question = \"{}\" with worse_choice = \"{}\" is not a choice question and choice of any flow, so \"worse day after day\" could never fire; name one (patient-daily.toml asks \"feeling\" with \"worse\") or set worse_days = 0",
                    self.worse_question, self.worse_choice
                ));
            }
        }
        if self.score_high_at_or_above > 0
            && !asked(&self.score_breathless_question, QuestionKind::YesNo)
        {
            out.push(format!(
                "rules.toml: score_breathless_question = \"{}\" is not a yes/no question of any flow, so breathlessness would never count in the early-warning score; name one (patient-daily.toml asks \"breathless\")",
                self.score_breathless_question
            ));
        }
        out
    }

    /// These thresholds with a health centre's overrides (a JSON object of the same keys).
    pub fn with_overrides(&self, json: &str) -> Result<Thresholds, String> {
        let mut base = serde_json::to_value(self).map_err(|e| e.to_string())?;
        let over: serde_json::Value =
            serde_json::from_str(if json.trim().is_empty() { "{}" } else { json })
                .map_err(|e| format!("rules override: {e}"))?;
        if let (Some(b), Some(o)) = (base.as_object_mut(), over.as_object()) {
            for (k, v) in o {
                b.insert(k.clone(), v.clone());
            }
        }
        let t: Thresholds =
            serde_json::from_value(base).map_err(|e| format!("rules override: {e}"))?;
        t.validate()?;
        Ok(t)
    }
}

/// How soon a rule's escalation needs a human (stored as `escalations.priority`).
pub use crate::codes::Priority;

/// A rule that fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trigger {
    pub reason: &'static str,
    pub priority: Priority,
    /// What fired, for staff (values, not names).
    pub detail: String,
}

/// Rules evaluated on an answer. `daily_max_temps` are the person's highest temperatures per
/// local date in the health centre's time zone, including this answer's date `today`.
pub fn on_answer(
    t: &Thresholds,
    a: &Answer,
    today: NaiveDate,
    daily_max_temps: &[(NaiveDate, f64)],
) -> Vec<Trigger> {
    on_reading(
        t,
        &reading_of(a, chrono::Utc::now()),
        today,
        daily_max_temps,
    )
}

/// An answer as the rules read it.
pub fn reading_of(a: &Answer, at: chrono::DateTime<chrono::Utc>) -> trend::Reading<'_> {
    trend::Reading {
        at,
        temperature: a.temperature.map(|v| v.value()),
        spo2: a.spo2.map(|v| v.value()),
        urgent: a.urgent,
        urgent_signs: &a.urgent_signs,
        symptoms: &a.symptoms,
        choices: &a.choices,
    }
}

/// The fixed-threshold rules on one reading ([`on_answer`]).
pub fn on_reading(
    t: &Thresholds,
    a: &trend::Reading,
    today: NaiveDate,
    daily_max_temps: &[(NaiveDate, f64)],
) -> Vec<Trigger> {
    let mut out = Vec::new();
    if a.urgent {
        out.push(Trigger {
            reason: "urgent_sign",
            priority: Priority::Urgent,
            detail: if a.urgent_signs.is_empty() {
                "urgent warning sign answered yes".to_string()
            } else {
                format!(
                    "urgent warning sign answered yes: {}",
                    a.urgent_signs.join(", ")
                )
            },
        });
    }
    if let Some(v) = a.spo2 {
        if v <= t.spo2_urgent_at_or_below {
            out.push(Trigger {
                reason: "spo2_low",
                priority: Priority::Urgent,
                detail: format!("SpO2 {v} % ≤ {}", t.spo2_urgent_at_or_below),
            });
        } else if v <= t.spo2_high_at_or_below {
            out.push(Trigger {
                reason: "spo2_low",
                priority: Priority::High,
                detail: format!("SpO2 {v} % ≤ {}", t.spo2_high_at_or_below),
            });
        }
    }
    let n = t.fever_streak_days as i64;
    let fever_on = |d: NaiveDate| {
        daily_max_temps
            .iter()
            .any(|(day, v)| *day == d && *v >= t.fever_at_or_above)
    };
    if (0..n).all(|i| fever_on(today - chrono::Duration::days(i))) {
        out.push(Trigger {
            reason: "fever_streak",
            priority: Priority::High,
            detail: format!("≥ {:.1} °C on {n} consecutive days", t.fever_at_or_above),
        });
    }
    out
}

/// The rule on silence: `recent` are the person's latest final check-in outcomes, newest
/// first. A person at high risk ([`Risk::high`]) is escalated after
/// `non_reporting_streak_high_risk` misses (default: the first), everyone else after
/// `non_reporting_streak`.
pub fn on_missed(t: &Thresholds, recent: &[String], risk: &Risk) -> Option<Trigger> {
    let high = risk.high(t);
    let n = if high.is_some() {
        t.non_reporting_streak_high_risk
    } else {
        t.non_reporting_streak
    } as usize;
    (recent.len() >= n && recent[..n].iter().all(|s| s == "missed")).then(|| Trigger {
        reason: "non_reporting",
        priority: Priority::High,
        detail: match high {
            Some(why) if n == 1 => format!("no answer to the last check-in; high risk: {why}"),
            Some(why) => format!("{n} check-ins in a row without an answer; high risk: {why}"),
            None => format!("{n} check-ins in a row without an answer"),
        },
    })
}

#[cfg(test)]
mod meaning {
    use super::*;

    #[test]
    fn thresholds_that_are_not_readings_are_refused() {
        let t = Thresholds::default();
        for (key, value, want) in [
            (
                "fever_at_or_above",
                "-1",
                "fever_at_or_above = -1 is not a body temperature",
            ),
            (
                "spo2_urgent_at_or_below",
                "930",
                "spo2_urgent_at_or_below = 930 is not an SpO2",
            ),
        ] {
            let e = t
                .with_overrides(&format!("{{\"{key}\": {value}}}"))
                .unwrap_err();
            assert!(e.starts_with(want), "{e}");
        }
        assert!(t.with_overrides("{\"fever_at_or_above\": 37.5}").is_ok());
    }
}
