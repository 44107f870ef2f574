//! Questionnaires as data (`flows/*.toml`), loaded and validated at start-up and by
//! `mimamori check`. Every problem names the file and line.
use std::{collections::BTreeMap, collections::HashSet, path::Path};

use serde::Deserialize;
use toml::Spanned;

use crate::domain::Lang;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// °C with one decimal.
    Temperature,
    /// Oxygen saturation, %.
    Spo2,
    YesNo,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: Spanned<String>,
    pub kind: QuestionKind,
    /// Text per language code (`ja`, `en`).
    pub text: BTreeMap<String, String>,
    /// May be left empty (e.g. SpO2 when no oximeter was delivered).
    #[serde(default)]
    pub skippable: bool,
    /// Any "yes" is an urgent warning sign [緊急性の高い症状].
    #[serde(default)]
    pub urgent: bool,
    /// Screen / group the question is shown in.
    #[serde(default = "default_group")]
    pub group: String,
    /// Voice prompt id (`voice-prompts/<lang>.toml`); default `q.<id>`. The keypad grammar
    /// follows the kind: temperature and SpO2 as digits ended by `#` (`3 7 5 #` = 37.5 °C,
    /// `#` alone skips a skippable question), yes/no as one key (1 = yes, 2 = no); 0 on any
    /// question asks for a call back.
    #[serde(default)]
    pub voice: Option<String>,
}

impl Question {
    pub fn voice_prompt(&self) -> String {
        self.voice
            .clone()
            .unwrap_or_else(|| format!("q.{}", self.id.get_ref()))
    }
}

fn default_group() -> String {
    "symptoms".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub id: Spanned<String>,
    pub title: BTreeMap<String, String>,
    /// What happens when nobody answers; unset keys fall back to `[checkin]` configuration.
    #[serde(default)]
    pub policy: Policy,
    pub questions: Vec<Question>,
}

/// A flow's retry policy: reminders after the first message, the last one through the
/// person's fallback channel (e.g. a voice call).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub reminder_after_minutes: Option<i64>,
    pub max_reminders: Option<i32>,
}

/// The monitoring type a flow serves (`patient-daily` → `patient`).
pub fn monitoring_type_of(flow_id: &str) -> &'static str {
    if flow_id == "contact-daily" {
        "contact"
    } else {
        "patient"
    }
}

impl Flow {
    pub fn text<'a>(&self, q: &'a Question, lang: Lang) -> &'a str {
        q.text
            .get(lang.as_str())
            .or_else(|| q.text.get("ja"))
            .map(String::as_str)
            .unwrap_or("")
    }
    pub fn title(&self, lang: Lang) -> &str {
        self.title
            .get(lang.as_str())
            .or_else(|| self.title.get("ja"))
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// All loaded flows, by id.
#[derive(Debug, Clone, Default)]
pub struct Flows {
    by_id: BTreeMap<String, Flow>,
}

/// Flows shipped with mimamori, used when the configured folder does not exist.
const BUILTIN: &[(&str, &str)] = &[
    (
        "patient-daily.toml",
        include_str!("../../flows/patient-daily.toml"),
    ),
    (
        "contact-daily.toml",
        include_str!("../../flows/contact-daily.toml"),
    ),
];

/// The flows every deployment needs: one per monitoring type.
pub const REQUIRED: &[&str] = &["patient-daily", "contact-daily"];

impl Flows {
    /// Loads every `*.toml` in `dir` (or the built-in flows if `dir` does not exist).
    /// On failure returns every problem found, each as `file:line: message`.
    pub fn load(dir: &Path) -> Result<Flows, Vec<String>> {
        let mut sources = Vec::new();
        if dir.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| vec![format!("{}: cannot read folder: {e}", dir.display())])?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                // rules.toml sits beside the flows but is loaded by `rules::Thresholds`.
                .filter(|p| p.file_name().is_some_and(|n| n != "rules.toml"))
                .collect();
            entries.sort();
            for p in entries {
                match std::fs::read_to_string(&p) {
                    Ok(s) => sources.push((p.display().to_string(), s)),
                    Err(e) => return Err(vec![format!("{}: cannot read: {e}", p.display())]),
                }
            }
        } else {
            for (name, s) in BUILTIN {
                sources.push((format!("(built-in) flows/{name}"), s.to_string()));
            }
        }
        Self::from_sources(&sources)
    }

    pub fn from_sources(sources: &[(String, String)]) -> Result<Flows, Vec<String>> {
        let mut problems = Vec::new();
        let mut by_id = BTreeMap::new();
        for (file, src) in sources {
            let line = |offset: usize| src[..offset.min(src.len())].matches('\n').count() + 1;
            let flow: Flow = match toml::from_str(src) {
                Ok(f) => f,
                Err(e) => {
                    let at = e.span().map(|s| line(s.start)).unwrap_or(1);
                    problems.push(format!("{file}:{at}: {}", e.message()));
                    continue;
                }
            };
            let mut seen = HashSet::new();
            for q in &flow.questions {
                let at = line(q.id.span().start);
                if !seen.insert(q.id.get_ref().clone()) {
                    problems.push(format!(
                        "{file}:{at}: question id '{}' is used twice",
                        q.id.get_ref()
                    ));
                }
                for lang in ["ja", "en"] {
                    if q.text.get(lang).is_none_or(|t| t.trim().is_empty()) {
                        problems.push(format!(
                            "{file}:{at}: question '{}' has no text.{lang}",
                            q.id.get_ref()
                        ));
                    }
                }
                if q.urgent && q.kind != QuestionKind::YesNo {
                    problems.push(format!(
                        "{file}:{at}: question '{}' is marked urgent but is not a yes_no question",
                        q.id.get_ref()
                    ));
                }
            }
            if flow.questions.is_empty() {
                problems.push(format!("{file}:1: flow has no questions"));
            }
            let id = flow.id.get_ref().clone();
            if by_id.contains_key(&id) {
                problems.push(format!(
                    "{file}:{}: flow id '{id}' is defined twice",
                    line(flow.id.span().start)
                ));
            }
            by_id.insert(id, flow);
        }
        for req in REQUIRED {
            if !by_id.contains_key(*req) {
                problems.push(format!("flows: the required flow '{req}' is missing"));
            }
        }
        if problems.is_empty() {
            Ok(Flows { by_id })
        } else {
            Err(problems)
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Flow> {
        self.by_id.values()
    }

    pub fn get(&self, id: &str) -> Option<&Flow> {
        self.by_id.get(id)
    }

    /// The flow for a monitoring type (`patient` → `patient-daily`).
    pub fn for_monitoring(&self, monitoring_type: &str) -> &Flow {
        let id = if monitoring_type == "contact" {
            "contact-daily"
        } else {
            "patient-daily"
        };
        self.by_id
            .get(id)
            .expect("required flows are checked at load")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_flows_load() {
        let f = Flows::load(Path::new("/nonexistent")).unwrap();
        assert!(f.get("patient-daily").unwrap().questions.len() >= 5);
    }

    #[test]
    fn problems_name_file_and_line() {
        let bad = "id = \"patient-daily\"\ntitle = { ja = \"x\", en = \"x\" }\n\n[[questions]]\nid = \"t\"\nkind = \"thermometer\"\ntext = { ja = \"a\", en = \"b\" }\n";
        let errs = Flows::from_sources(&[("p.toml".into(), bad.into())]).unwrap_err();
        assert!(errs[0].starts_with("p.toml:6:"), "{errs:?}");
        let dup = "id = \"patient-daily\"\ntitle = { ja = \"x\" }\n[[questions]]\nid = \"t\"\nkind = \"yes_no\"\ntext = { ja = \"a\" }\n[[questions]]\nid = \"t\"\nkind = \"yes_no\"\ntext = { ja = \"a\", en = \"b\" }\n";
        let errs = Flows::from_sources(&[("d.toml".into(), dup.into())]).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e == "d.toml:4: question 't' has no text.en"),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e == "d.toml:8: question id 't' is used twice"),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("'contact-daily' is missing")),
            "{errs:?}"
        );
    }
}
