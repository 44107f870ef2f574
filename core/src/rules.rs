//! Escalation rules: which answers and silences need a human, from thresholds that are data
//! (`flows/rules.toml`, overridable per health centre). Pure functions; the store runs them
//! inside the answer's transaction.
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::store::observations::Answer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub spo2_urgent_at_or_below: i32,
    pub spo2_high_at_or_below: i32,
    pub fever_at_or_above: f64,
    pub fever_streak_days: u32,
    pub non_reporting_streak: u32,
}

const BUILTIN: &str = include_str!("../../flows/rules.toml");

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
        if self.spo2_urgent_at_or_below > self.spo2_high_at_or_below {
            return Err("spo2_urgent_at_or_below must not be above spo2_high_at_or_below".into());
        }
        if self.fever_streak_days == 0 || self.non_reporting_streak == 0 {
            return Err("streak lengths must be at least 1".into());
        }
        Ok(())
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Urgent,
    High,
    Normal,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Urgent => "urgent",
            Priority::High => "high",
            Priority::Normal => "normal",
        }
    }
}

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
    let mut out = Vec::new();
    let urgent_signs: Vec<&str> = a.urgent_signs.iter().map(String::as_str).collect();
    if a.urgent {
        out.push(Trigger {
            reason: "urgent_sign",
            priority: Priority::Urgent,
            detail: format!(
                "urgent warning sign answered yes: {}",
                urgent_signs.join(", ")
            ),
        });
    }
    if let Some(s) = a.spo2 {
        let v = s.value();
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
/// first.
pub fn on_missed(t: &Thresholds, recent: &[String]) -> Option<Trigger> {
    let n = t.non_reporting_streak as usize;
    (recent.len() >= n && recent[..n].iter().all(|s| s == "missed")).then(|| Trigger {
        reason: "non_reporting",
        priority: Priority::High,
        detail: format!("{n} check-ins in a row without an answer"),
    })
}
