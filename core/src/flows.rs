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
    /// One of the question's `choices` (keypad: 1 for the first, 2 for the second, …).
    Choice,
}

/// An option of a `choice` question.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// Stored as the answer.
    pub id: String,
    pub text: BTreeMap<String, String>,
}

/// Several yes/no questions the voice call asks as one ("do you have any of …?"): a
/// keypad-friendly call while the web form asks each question on its own. The answer is
/// stored under the group's id; "no" also records "no" for every member.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceGroup {
    /// Heading over the members on the web form.
    pub text: BTreeMap<String, String>,
    /// Voice prompt id; default `q.<group id>`.
    #[serde(default)]
    pub voice: Option<String>,
}

/// One question of the voice call: a flow question, or a voice group standing for its
/// members.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceItem {
    /// The question id, or the voice group id.
    pub id: String,
    pub kind: QuestionKind,
    pub skippable: bool,
    /// A yes is an urgent warning sign.
    pub urgent: bool,
    pub prompt: String,
    /// Question ids a group stands for (empty for a single question).
    pub members: Vec<String>,
    /// Choice ids in keypad order (key 1 = first).
    pub choices: Vec<String>,
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
    /// The voice group the call asks this yes/no question in (`[voice_groups.<id>]`).
    #[serde(default)]
    pub voice_group: Option<String>,
    /// Options of a `choice` question, in keypad order.
    #[serde(default)]
    pub choices: Vec<Choice>,
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
    #[serde(default)]
    pub voice_groups: BTreeMap<String, VoiceGroup>,
    /// What the voice call asks, in order (derived at load).
    #[serde(skip)]
    pub voice_items: Vec<VoiceItem>,
}

/// The groups the link form has a screen for (`web::patient`), in their order.
pub const SCREEN_GROUPS: &[&str] = &["vitals", "symptoms", "urgent"];

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

/// The text in `lang`, else Japanese, else empty.
fn localised(texts: &BTreeMap<String, String>, lang: Lang) -> &str {
    texts
        .get(lang.as_str())
        .or_else(|| texts.get("ja"))
        .map(String::as_str)
        .unwrap_or("")
}

impl Flow {
    pub fn text<'a>(&self, q: &'a Question, lang: Lang) -> &'a str {
        localised(&q.text, lang)
    }
    pub fn choice_text<'a>(&self, c: &'a Choice, lang: Lang) -> &'a str {
        localised(&c.text, lang)
    }
    pub fn group_text(&self, group: &str, lang: Lang) -> &str {
        self.voice_groups
            .get(group)
            .map(|g| localised(&g.text, lang))
            .unwrap_or("")
    }
    /// A complete web answer in which nothing is wrong — 36.5 °C, SpO2 97, every yes/no
    /// "no", the first option of every choice — as form fields, for demos, tests and
    /// benchmarks.
    pub fn healthy_form(&self) -> Vec<(String, String)> {
        self.questions
            .iter()
            .map(|q| {
                let v = match q.kind {
                    QuestionKind::Temperature => "36.5".to_string(),
                    QuestionKind::Spo2 => "97".to_string(),
                    QuestionKind::YesNo => "no".to_string(),
                    QuestionKind::Choice => q.choices[0].id.clone(),
                };
                (q.id.get_ref().clone(), v)
            })
            .collect()
    }
    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id.get_ref() == id)
    }
    /// The voice call's questions: each flow question in order, except that the members of
    /// a voice group are asked once, as the group, where the first of them stands.
    fn derive_voice_items(&self) -> Vec<VoiceItem> {
        let mut out: Vec<VoiceItem> = Vec::new();
        for q in &self.questions {
            let item = match &q.voice_group {
                Some(g) => {
                    if let Some(existing) = out.iter_mut().find(|i| &i.id == g) {
                        existing.members.push(q.id.get_ref().clone());
                        existing.urgent |= q.urgent;
                        continue;
                    }
                    VoiceItem {
                        id: g.clone(),
                        kind: QuestionKind::YesNo,
                        skippable: false,
                        urgent: q.urgent,
                        prompt: self
                            .voice_groups
                            .get(g)
                            .and_then(|vg| vg.voice.clone())
                            .unwrap_or_else(|| format!("q.{g}")),
                        members: vec![q.id.get_ref().clone()],
                        choices: Vec::new(),
                    }
                }
                None => VoiceItem {
                    id: q.id.get_ref().clone(),
                    kind: q.kind,
                    skippable: q.skippable,
                    urgent: q.urgent,
                    prompt: q.voice_prompt(),
                    members: Vec::new(),
                    choices: q.choices.iter().map(|c| c.id.clone()).collect(),
                },
            };
            out.push(item);
        }
        out
    }
    pub fn title(&self, lang: Lang) -> &str {
        localised(&self.title, lang)
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
                // rules.toml, periods.toml, reporting.toml and the import mappings
                // (`*.mapping.toml`) sit beside the flows but are loaded elsewhere.
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        !matches!(n, "rules.toml" | "periods.toml" | "reporting.toml")
                            && !n.ends_with(".mapping.toml")
                    })
                })
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
            let mut flow: Flow = match toml::from_str(src) {
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
                problems.extend(
                    check_choices(q)
                        .into_iter()
                        .map(|m| format!("{file}:{at}: question '{}' {m}", q.id.get_ref())),
                );
                if let Some(g) = &q.voice_group {
                    if !flow.voice_groups.contains_key(g) {
                        problems.push(format!(
                            "{file}:{at}: question '{}' names voice_group '{g}', which has no [voice_groups.{g}] table",
                            q.id.get_ref()
                        ));
                    }
                    if q.kind != QuestionKind::YesNo {
                        problems.push(format!(
                            "{file}:{at}: question '{}' is in a voice group but is not a yes_no question",
                            q.id.get_ref()
                        ));
                    }
                }
            }
            // Meaning, not only syntax: a flow that parses can still break the product.
            for q in &flow.questions {
                let at = line(q.id.span().start);
                let id = q.id.get_ref();
                if !SCREEN_GROUPS.contains(&q.group.as_str()) {
                    problems.push(format!(
                        "{file}:{at}: question '{id}' is in group '{}', which no screen shows (no patient could finish the form); use one of {}",
                        q.group,
                        SCREEN_GROUPS.join(", ")
                    ));
                }
                let expected = match id.as_str() {
                    "temperature" => Some(QuestionKind::Temperature),
                    "spo2" => Some(QuestionKind::Spo2),
                    _ => None,
                };
                if expected.is_some_and(|k| k != q.kind) {
                    problems.push(format!(
                        "{file}:{at}: question '{id}' must be of kind '{id}' (its answer is stored as the {id} reading)"
                    ));
                }
                if matches!(q.kind, QuestionKind::Temperature | QuestionKind::Spo2)
                    && expected != Some(q.kind)
                {
                    problems.push(format!(
                        "{file}:{at}: question '{id}' has a reading kind; only the question with that id ('temperature' / 'spo2') may"
                    ));
                }
            }
            if flow.policy.reminder_after_minutes.is_some_and(|m| m < 0) {
                problems.push(format!(
                    "{file}:1: policy.reminder_after_minutes must be 0 (no reminders) or more, not negative"
                ));
            }
            if flow.policy.max_reminders.is_some_and(|m| m < 0) {
                problems.push(format!(
                    "{file}:1: policy.max_reminders must be 0 or more, not negative"
                ));
            }
            for (g, vg) in &flow.voice_groups {
                if seen.contains(g) {
                    problems.push(format!(
                        "{file}:1: voice group '{g}' has the id of a question; give it its own id"
                    ));
                }
                if !flow
                    .questions
                    .iter()
                    .any(|q| q.voice_group.as_ref() == Some(g))
                {
                    problems.push(format!(
                        "{file}:1: voice group '{g}' is defined but no question names it"
                    ));
                }
                for lang in ["ja", "en"] {
                    if vg.text.get(lang).is_none_or(|t| t.trim().is_empty()) {
                        problems.push(format!("{file}:1: voice group '{g}' has no text.{lang}"));
                    }
                }
            }
            flow.voice_items = flow.derive_voice_items();
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

/// Problems with a question's `choices`: a `choice` question needs 2 to 9 (one keypad key
/// each) with unique ids and text in both languages; other kinds take none.
fn check_choices(q: &Question) -> Vec<String> {
    let mut out = Vec::new();
    if q.kind != QuestionKind::Choice {
        if !q.choices.is_empty() {
            out.push("has choices but is not a choice question".to_string());
        }
        return out;
    }
    if !(2..=9).contains(&q.choices.len()) {
        out.push(format!(
            "needs 2 to 9 choices (one keypad key each), has {}",
            q.choices.len()
        ));
    }
    let mut ids = HashSet::new();
    for c in &q.choices {
        if c.id.trim().is_empty() || !ids.insert(c.id.as_str()) {
            out.push(format!("has an empty or repeated choice id '{}'", c.id));
        }
        for lang in ["ja", "en"] {
            if c.text.get(lang).is_none_or(|t| t.trim().is_empty()) {
                out.push(format!("choice '{}' has no text.{lang}", c.id));
            }
        }
    }
    out
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
    fn voice_groups_and_choices_are_checked() {
        let head = "id = \"patient-daily\"\ntitle = { ja = \"x\", en = \"x\" }\n";
        let q = |extra: &str| {
            format!(
                "[[questions]]\nid = \"q{}\"\nkind = \"yes_no\"\n{extra}\ntext = {{ ja = \"a\", en = \"b\" }}\n",
                extra.len()
            )
        };
        let src = format!(
            "{head}{}{}[[questions]]\nid = \"c\"\nkind = \"choice\"\ntext = {{ ja = \"a\", en = \"b\" }}\nchoices = [{{ id = \"x\", text = {{ ja = \"x\" }} }}]\n[voice_groups.unused]\ntext = {{ ja = \"u\", en = \"u\" }}\n",
            q("voice_group = \"nowhere\""),
            q("choices = [{ id = \"a\", text = { ja = \"a\", en = \"a\" } }]"),
        );
        let errs = Flows::from_sources(&[("g.toml".into(), src)]).unwrap_err();
        for expected in [
            "names voice_group 'nowhere', which has no [voice_groups.nowhere] table",
            "has choices but is not a choice question",
            "question 'c' needs 2 to 9 choices (one keypad key each), has 1",
            "question 'c' choice 'x' has no text.en",
            "voice group 'unused' is defined but no question names it",
        ] {
            assert!(
                errs.iter().any(|e| e.contains(expected)),
                "{expected}: {errs:?}"
            );
        }
    }

    #[test]
    fn a_voice_group_is_asked_once_where_its_first_member_stands() {
        let f = Flows::load(Path::new("/nonexistent")).unwrap();
        let flow = f.get("patient-daily").unwrap();
        let urgent: Vec<_> = flow.questions.iter().filter(|q| q.urgent).collect();
        assert_eq!(urgent.len(), 13, "the 13 urgent warning signs, one by one");
        let items: Vec<(&str, usize)> = flow
            .voice_items
            .iter()
            .map(|i| (i.id.as_str(), i.members.len()))
            .collect();
        assert_eq!(
            items,
            [
                ("temperature", 0),
                ("spo2", 0),
                ("cough", 0),
                ("sore_throat", 0),
                ("cold_symptoms", 3),
                ("fatigue", 0),
                ("breathless", 0),
                ("taste_smell", 0),
                ("feeling", 0),
                ("urgent_appearance", 3),
                ("urgent_breathing", 7),
                ("urgent_consciousness", 3),
            ]
        );
        assert!(flow.voice_items[9..].iter().all(|i| i.urgent));
        assert!(!flow.voice_items[4].urgent);
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

    /// Flows that parse but would break the product are refused, each with file, line and why.
    #[test]
    fn flows_that_break_the_product_are_refused() {
        let head = "id = \"patient-daily\"\ntitle = { ja = \"x\", en = \"x\" }\n";
        let q = |id: &str, kind: &str, group: &str| {
            format!(
                "[[questions]]\nid = \"{id}\"\nkind = \"{kind}\"\ngroup = \"{group}\"\ntext = {{ ja = \"a\", en = \"b\" }}\n"
            )
        };
        let cases = [
            (
                format!("{head}{}", q("temperature", "temperature", "vitalz")),
                "p.toml:4: question 'temperature' is in group 'vitalz', which no screen shows",
            ),
            (
                format!("{head}{}", q("temperature", "spo2", "vitals")),
                "p.toml:4: question 'temperature' must be of kind 'temperature'",
            ),
            (
                format!("{head}{}", q("fever", "temperature", "vitals")),
                "p.toml:4: question 'fever' has a reading kind",
            ),
            (
                format!(
                    "{head}[policy]\nreminder_after_minutes = -5\n{}",
                    q("temperature", "temperature", "vitals")
                ),
                "p.toml:1: policy.reminder_after_minutes must be 0 (no reminders) or more",
            ),
        ];
        for (src, want) in cases {
            let errs = Flows::from_sources(&[("p.toml".into(), src.clone())]).unwrap_err();
            assert!(
                errs.iter().any(|e| e.starts_with(want)),
                "{want}\n{errs:?}\n{src}"
            );
        }
    }
}
