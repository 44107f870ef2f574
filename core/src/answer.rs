//! **An answer, built once**: the one place that turns what a person gave — the fields of the
//! link form ([`from_form`], validated: every question answered except skippable ones,
//! numbers in range, one urgent "yes" enough) or the keys of a call ([`from_keys`], already
//! read back and confirmed by the call engine) — into the [`Answer`] the answer writer records.
use std::collections::BTreeMap;

use crate::{
    FieldError,
    domain::{Spo2, Temperature},
    error::Collect,
    flows::{Flow, QuestionKind},
};

/// A validated answer to a check-in's questions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    pub temperature: Option<Temperature>,
    pub spo2: Option<Spo2>,
    /// Question id → yes.
    pub symptoms: BTreeMap<String, bool>,
    /// Any urgent warning sign answered yes.
    pub urgent: bool,
    /// Which urgent warning signs were answered yes (question ids).
    pub urgent_signs: Vec<String>,
    /// Question id → choice id, for `choice` questions.
    pub choices: BTreeMap<String, String>,
}

impl Answer {
    /// Records a yes/no answer; a yes to an urgent warning sign makes the answer urgent.
    pub fn yes_no(&mut self, id: &str, yes: bool, urgent: bool) {
        self.symptoms.insert(id.to_string(), yes);
        if yes && urgent {
            self.urgent = true;
            self.urgent_signs.push(id.to_string());
        }
    }

    /// The `symptoms` column: yes/no answers as booleans and choices as strings, in one
    /// JSON object keyed by question id.
    pub fn symptoms_json(&self) -> String {
        let mut m: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
        for (k, v) in &self.symptoms {
            m.insert(k, (*v).into());
        }
        for (k, v) in &self.choices {
            m.insert(k, v.as_str().into());
        }
        serde_json::to_string(&m).expect("a map of strings serialises")
    }
}

/// The link form's fields, validated against the flow: every question answered except
/// skippable ones; numbers in range.
pub fn from_form(flow: &Flow, form: &BTreeMap<String, String>) -> Result<Answer, Vec<FieldError>> {
    let mut c = Collect::default();
    let mut a = Answer::default();
    // One urgent sign answered "yes" is enough to act on: the others are not required then,
    // so a person in trouble is not held back by twelve more questions.
    let urgent_yes = flow
        .questions
        .iter()
        .any(|q| q.urgent && form.get(q.id.get_ref().as_str()).map(|v| v.trim()) == Some("yes"));
    for q in &flow.questions {
        let id = q.id.get_ref().as_str();
        let field = id.to_string();
        let v = form.get(id).map(|s| s.trim()).unwrap_or("");
        match q.kind {
            QuestionKind::Temperature if v.is_empty() && !q.skippable => {
                c.push(field, "err-enter-your-temperature")
            }
            QuestionKind::Temperature if !v.is_empty() => {
                a.temperature = c.take(
                    Temperature::parse("temperature", v)
                        .map_err(|_| crate::Error::invalid(field, "err-temperature-number")),
                );
            }
            QuestionKind::Spo2 if v.is_empty() && !q.skippable => {
                c.push(field, "err-enter-your-spo2")
            }
            QuestionKind::Spo2 if !v.is_empty() => {
                a.spo2 = c.take(
                    Spo2::parse("spo2", v)
                        .map_err(|_| crate::Error::invalid(field, "err-spo2-number")),
                );
            }
            QuestionKind::YesNo => match v {
                "yes" | "no" => a.yes_no(id, v == "yes", q.urgent),
                "" if q.urgent && urgent_yes => {}
                _ => c.push(field, "err-choose-yes-or-no"),
            },
            QuestionKind::Choice => match q.choices.iter().find(|c| c.id == v) {
                Some(choice) => {
                    a.choices.insert(id.to_string(), choice.id.clone());
                }
                None => c.push(field, "err-choose-one-of-the-options"),
            },
            _ => {}
        }
    }
    match c.finish() {
        Ok(()) => Ok(a),
        Err(crate::Error::Invalid(f)) => Err(f),
        Err(_) => Err(Vec::new()),
    }
}

/// The answer collected on a call so far (values as the call engine read them back), as
/// an observation. A "no" to a grouped question ("none of these") answers each member.
pub fn from_keys(flow: &Flow, answers: &BTreeMap<String, String>) -> Answer {
    let mut a = Answer::default();
    for q in &flow.voice_items {
        let Some(v) = answers.get(&q.id) else {
            continue;
        };
        match q.kind {
            QuestionKind::Temperature => {
                a.temperature = v
                    .parse()
                    .ok()
                    .and_then(|t| Temperature::new("temperature", t).ok())
            }
            QuestionKind::Spo2 => a.spo2 = v.parse().ok().and_then(|s| Spo2::new("spo2", s).ok()),
            QuestionKind::YesNo => {
                let yes = v == "yes";
                a.yes_no(&q.id, yes, q.urgent);
                // "None of these" answers each member; a yes leaves open which one.
                if !yes {
                    for m in &q.members {
                        a.symptoms.insert(m.clone(), false);
                    }
                }
            }
            QuestionKind::Choice => {
                a.choices.insert(q.id.clone(), v.clone());
            }
        }
    }
    a
}
