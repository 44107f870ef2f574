//! Which cases get a full occurrence report [発生届] and which are only counted — the
//! September 2022 reform [全数届出の見直し] as date-effective, per-prefecture rules
//! (`flows/reporting.toml`), kept like the observation periods: add a rule when the guidance
//! changes, never edit a past one.
//!
//! Under a `notifiable` rule a full report is filed only for people aged 65 or over, people
//! needing admission, pregnant people, and people at risk who need a COVID-19 drug or new
//! oxygen (deceased reports are always filed); everyone else is entered as a count by age
//! band in the daily report [日次報告] (`store::stats::daily_counts`).
use std::path::Path;

use chrono::NaiveDate;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every case gets an occurrence report.
    All,
    /// Only the notifiable groups; the rest are counted.
    Notifiable,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub effective_from: NaiveDate,
    pub mode: Mode,
    /// JIS prefecture codes the rule is for (empty: every prefecture).
    #[serde(default)]
    pub prefectures: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reporting {
    pub rules: Vec<Rule>,
}

const BUILTIN: &str = include_str!("../../../flows/reporting.toml");

impl Default for Reporting {
    fn default() -> Self {
        Reporting::parse("(built-in) flows/reporting.toml", BUILTIN)
            .expect("built-in reporting rules are valid")
    }
}

/// Why a full report was filed under the counts-only rules (stored on the report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Groups {
    pub aged_65_or_over: bool,
    pub needs_admission: bool,
    pub pregnant: bool,
    pub needs_treatment: bool,
    pub deceased: bool,
}

impl Groups {
    /// The codes of the groups, `;`-separated (None when in none).
    pub fn codes(&self) -> Option<String> {
        let v: Vec<&str> = [
            (self.aged_65_or_over, "aged_65_or_over"),
            (self.needs_admission, "needs_admission"),
            (self.pregnant, "pregnant"),
            (self.needs_treatment, "needs_treatment"),
            (self.deceased, "deceased"),
        ]
        .into_iter()
        .filter_map(|(b, c)| b.then_some(c))
        .collect();
        (!v.is_empty()).then(|| v.join(";"))
    }
}

impl Reporting {
    /// `reporting.toml` of the flows folder (the built-in rules when there is none).
    pub fn load(flows_dir: &Path) -> Result<Reporting, String> {
        let path = flows_dir.join("reporting.toml");
        match std::fs::read_to_string(&path) {
            Ok(src) => Reporting::parse(&path.display().to_string(), &src),
            Err(_) if !path.exists() => Ok(Reporting::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Parses and checks: at least one rule for every prefecture, ids unique, prefecture
    /// codes of two digits 01–47.
    pub fn parse(file: &str, src: &str) -> Result<Reporting, String> {
        let r: Reporting = toml::from_str(src).map_err(|e| {
            let line = e
                .span()
                .map(|s| src[..s.start].matches('\n').count() + 1)
                .unwrap_or(1);
            format!("{file}:{line}: {}", e.message())
        })?;
        if !r.rules.iter().any(|x| x.prefectures.is_empty()) {
            return Err(format!(
                "{file}: at least one rule must apply to every prefecture (no `prefectures`)"
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for x in &r.rules {
            if !ids.insert(x.id.as_str()) {
                return Err(format!("{file}: rule id '{}' is used twice", x.id));
            }
            if let Some(p) = x
                .prefectures
                .iter()
                .find(|p| p.len() != 2 || !matches!(p.parse::<u8>(), Ok(1..=47)))
            {
                return Err(format!(
                    "{file}: rule '{}': '{p}' is not a prefecture code (two digits, 01–47)",
                    x.id
                ));
            }
        }
        Ok(r)
    }

    /// The rule in force on `day` for a prefecture: the latest one that has begun and is
    /// for that prefecture or for all.
    pub fn rule_on(&self, day: NaiveDate, prefecture: &str) -> &Rule {
        self.rules
            .iter()
            .filter(|r| r.effective_from <= day)
            .filter(|r| r.prefectures.is_empty() || r.prefectures.iter().any(|p| p == prefecture))
            .max_by_key(|r| (r.effective_from, !r.prefectures.is_empty()))
            .or_else(|| self.rules.iter().min_by_key(|r| r.effective_from))
            .expect("at least one rule")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFORM: &str = include_str!("../../../flows/reporting-2022.toml.example");

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_built_in_rules_report_every_case() {
        let r = Reporting::default();
        assert_eq!(r.rule_on(d("2026-12-01"), "13").mode, Mode::All);
    }

    #[test]
    fn the_2022_reform_by_date_and_prefecture() {
        let r = Reporting::parse("reporting-2022.toml", REFORM).unwrap();
        // Miyagi (04) adopted it early; Tokyo (13) with the country on 26 September.
        assert_eq!(r.rule_on(d("2022-09-01"), "04").mode, Mode::All);
        assert_eq!(r.rule_on(d("2022-09-02"), "04").mode, Mode::Notifiable);
        assert_eq!(r.rule_on(d("2022-09-02"), "13").mode, Mode::All);
        assert_eq!(r.rule_on(d("2022-09-26"), "13").mode, Mode::Notifiable);
        assert_eq!(r.rule_on(d("2022-10-01"), "04").mode, Mode::Notifiable);
    }

    #[test]
    fn bad_rules_are_named() {
        let e = Reporting::parse(
            "r.toml",
            "[[rules]]\nid = \"a\"\neffective_from = \"2020-01-01\"\nmode = \"all\"\nprefectures = [\"48\"]\n",
        )
        .unwrap_err();
        assert!(e.contains("every prefecture"), "{e}");
        let e = Reporting::parse(
            "r.toml",
            "[[rules]]\nid = \"a\"\neffective_from = \"2020-01-01\"\nmode = \"some\"\n",
        )
        .unwrap_err();
        assert!(e.starts_with("r.toml:4:"), "{e}");
    }
}
