//! Observation periods from versioned, date-effective rules (`flows/periods.toml`): the end
//! date is day 0 plus the days of the rule in force on day 0.
use std::path::Path;

use chrono::{Duration, NaiveDate};
use serde::Deserialize;

/// Which day 0 a period counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// A patient with symptoms: from the onset date.
    Symptomatic,
    /// A patient without symptoms: from the specimen date.
    Asymptomatic,
    /// A close contact: from the last exposure.
    Contact,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodRule {
    pub id: String,
    pub effective_from: NaiveDate,
    pub symptomatic_days: u32,
    pub asymptomatic_days: u32,
    pub contact_days: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Periods {
    /// In order of `effective_from`.
    pub rules: Vec<PeriodRule>,
}

const BUILTIN: &str = include_str!("../../flows/periods.toml");

impl Default for Periods {
    fn default() -> Self {
        Periods::parse("(built-in) flows/periods.toml", BUILTIN)
            .expect("built-in periods are valid")
    }
}

/// A computed period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// The id of the rule applied.
    pub rule: String,
}

impl Periods {
    /// Loads `periods.toml` from the flows folder (built-in rules when the folder does not
    /// exist).
    pub fn load(flows_dir: &Path) -> Result<Periods, String> {
        let path = flows_dir.join("periods.toml");
        match std::fs::read_to_string(&path) {
            Ok(src) => Periods::parse(&path.display().to_string(), &src),
            Err(_) if !path.exists() => Ok(Periods::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Parses and checks the rules: at least one, dates strictly increasing, every period at
    /// least one day. Problems name file and line.
    pub fn parse(file: &str, src: &str) -> Result<Periods, String> {
        let p: Periods = toml::from_str(src).map_err(|e| {
            let line = e
                .span()
                .map(|s| src[..s.start].matches('\n').count() + 1)
                .unwrap_or(1);
            format!("{file}:{line}: {}", e.message())
        })?;
        if p.rules.is_empty() {
            return Err(format!("{file}: no [[rules]]"));
        }
        let mut ids = std::collections::HashSet::new();
        for r in &p.rules {
            if !ids.insert(r.id.as_str()) {
                let line = src
                    .match_indices(&format!("\"{}\"", r.id))
                    .nth(1)
                    .map(|(i, _)| src[..i].matches('\n').count() + 1)
                    .unwrap_or(1);
                return Err(format!(
                    "{file}:{line}: rule id '{}' is used twice; each rule needs its own id (people's periods record it)",
                    r.id
                ));
            }
        }
        for w in p.rules.windows(2) {
            if w[1].effective_from <= w[0].effective_from {
                return Err(format!(
                    "{file}: rule '{}' must take effect after rule '{}'",
                    w[1].id, w[0].id
                ));
            }
        }
        if let Some(r) = p
            .rules
            .iter()
            .find(|r| r.symptomatic_days == 0 || r.asymptomatic_days == 0 || r.contact_days == 0)
        {
            return Err(format!("{file}: rule '{}' has a period of 0 days", r.id));
        }
        Ok(p)
    }

    /// The rule in force on `day0` (the first rule for dates before every rule).
    pub fn rule_on(&self, day0: NaiveDate) -> &PeriodRule {
        self.rules
            .iter()
            .rev()
            .find(|r| r.effective_from <= day0)
            .unwrap_or(&self.rules[0])
    }

    /// The observation period counted from `day0`.
    pub fn compute(&self, basis: Basis, day0: NaiveDate) -> Period {
        let r = self.rule_on(day0);
        let days = match basis {
            Basis::Symptomatic => r.symptomatic_days,
            Basis::Asymptomatic => r.asymptomatic_days,
            Basis::Contact => r.contact_days,
        };
        Period {
            start: day0,
            end: day0 + Duration::days(days.into()),
            rule: r.id.clone(),
        }
    }
}

#[cfg(test)]
mod duplicate_ids {
    use super::*;

    #[test]
    fn a_rule_id_used_twice_is_refused_with_its_line() {
        let src = "[[rules]]\nid = \"a\"\neffective_from = \"2020-01-01\"\nsymptomatic_days = 10\nasymptomatic_days = 7\ncontact_days = 14\n\n[[rules]]\nid = \"a\"\neffective_from = \"2021-01-01\"\nsymptomatic_days = 10\nasymptomatic_days = 7\ncontact_days = 14\n";
        let e = Periods::parse("periods.toml", src).unwrap_err();
        assert!(
            e.starts_with("periods.toml:9: rule id 'a' is used twice"),
            "{e}"
        );
    }
}
