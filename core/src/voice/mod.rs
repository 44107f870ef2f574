//! Automated calls: prompt texts per language (`voice-prompts/`), the keypad (DTMF) flow
//! engine that walks a questionnaire, and TwiML rendering. Pure logic: the web layer keeps
//! the [`CallState`] in `call_sessions` and records the answer.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use serde::{Deserialize, Serialize};

use crate::{
    domain::{Lang, Spo2, Temperature},
    flows::{Flow, Flows, QuestionKind, VoiceItem},
    store::observations::Answer,
};

mod prompts;
mod twiml;

pub use prompts::*;
pub use twiml::*;

/// Invalid or empty answers to one question before the call gives up.
pub const MAX_TRIES: u32 = 3;

#[derive(Debug, Clone, Deserialize)]
struct PromptFile {
    voice: String,
    language: String,
    prompts: BTreeMap<String, String>,
}

/// One thing said in a turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Utterance {
    pub id: String,
    pub text: String,
}

/// How the keypad is read for the current question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GatherSpec {
    /// Digits end with `#` (numbers) or after one key (yes/no, menus).
    pub finish_on_hash: bool,
    pub num_digits: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    #[default]
    Questions,
    Readback,
    Done,
}

/// Where a call is in its flow; kept in `call_sessions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallState {
    /// Turns taken so far; part of every step's URL, so a repeated webhook delivery is
    /// recognised.
    #[serde(default)]
    pub seq: u32,
    pub question: usize,
    pub tries: u32,
    pub answers: BTreeMap<String, String>,
    pub stage: Stage,
    /// The person phoned in (identified by caller id and date of birth); their answers are
    /// recorded with source `inbound_call` instead of `voice`.
    #[serde(default)]
    pub inbound: bool,
}

/// What to do next on the call.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub says: Vec<Utterance>,
    /// `None`: hang up after speaking.
    pub gather: Option<GatherSpec>,
    /// The caller pressed 0: open a callback escalation.
    pub callback: bool,
    /// The questionnaire is complete and confirmed.
    pub completed: Option<Answer>,
    /// The call ends without a confirmed answer (too many invalid or empty inputs).
    pub gave_up: bool,
}

impl Turn {
    fn new() -> Turn {
        Turn {
            says: Vec::new(),
            gather: None,
            callback: false,
            completed: None,
            gave_up: false,
        }
    }
}

/// Values filled into prompts.
pub struct CallContext<'a> {
    pub centre: &'a str,
    pub phone: &'a str,
}

struct Speaker<'a> {
    p: &'a LangPrompts,
    ctx: &'a CallContext<'a>,
}

impl Speaker<'_> {
    fn say(&self, turn: &mut Turn, id: &str, extra: &[(&str, String)]) {
        let mut vars = vec![
            ("centre", self.ctx.centre.to_string()),
            ("phone", self.ctx.phone.to_string()),
        ];
        vars.extend(extra.iter().cloned());
        turn.says.push(Utterance {
            id: id.to_string(),
            text: self.p.text(id, &vars),
        });
    }
}

fn ask(sp: &Speaker, flow: &Flow, state: &CallState, turn: &mut Turn) {
    let q = &flow.voice_items[state.question];
    sp.say(turn, &q.prompt, &[]);
    match q.kind {
        QuestionKind::Temperature => {
            sp.say(turn, "howto_temperature", &[]);
            turn.gather = Some(GatherSpec {
                finish_on_hash: true,
                num_digits: None,
            });
        }
        QuestionKind::Spo2 => {
            sp.say(turn, "howto_spo2", &[]);
            turn.gather = Some(GatherSpec {
                finish_on_hash: true,
                num_digits: None,
            });
        }
        QuestionKind::YesNo => {
            sp.say(turn, "howto_yes_no", &[]);
            turn.gather = Some(GatherSpec {
                finish_on_hash: false,
                num_digits: Some(1),
            });
        }
        // The question's prompt names the keys of its choices.
        QuestionKind::Choice => {
            turn.gather = Some(GatherSpec {
                finish_on_hash: false,
                num_digits: Some(1),
            });
        }
    }
}

/// `3 7 5` → 37.5 °C; `3 7` → 37.0 °C.
pub fn parse_temperature_digits(d: &str) -> Option<Temperature> {
    if !d.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let v = match d.len() {
        2 => d.parse::<f64>().ok()?,
        3 => d.parse::<f64>().ok()? / 10.0,
        _ => return None,
    };
    Temperature::new("temperature", v).ok()
}

/// A raw keypad answer is valid for the question (the value stored is the normalised text).
fn accept(q: &VoiceItem, digits: &str) -> Option<String> {
    let (kind, skippable) = (q.kind, q.skippable);
    match kind {
        QuestionKind::Temperature => {
            parse_temperature_digits(digits).map(|t| format!("{:.1}", t.value()))
        }
        QuestionKind::Spo2 if digits.is_empty() && skippable => Some(String::new()),
        QuestionKind::Spo2 => digits
            .parse::<i32>()
            .ok()
            .and_then(|v| Spo2::new("spo2", v).ok())
            .map(|s| s.value().to_string()),
        QuestionKind::YesNo => match digits {
            "1" => Some("yes".into()),
            "2" => Some("no".into()),
            _ => None,
        },
        QuestionKind::Choice => digits
            .parse::<usize>()
            .ok()
            .filter(|k| *k >= 1)
            .and_then(|k| q.choices.get(k - 1).cloned()),
    }
}

/// The first turn of a call: greeting and the first question.
pub fn start(
    flow: &Flow,
    p: &LangPrompts,
    ctx: &CallContext,
    state: &mut CallState,
    greet: bool,
) -> Turn {
    *state = CallState {
        seq: state.seq + 1,
        inbound: state.inbound,
        ..CallState::default()
    };
    let sp = Speaker { p, ctx };
    let mut turn = Turn::new();
    sp.say(
        &mut turn,
        if greet { "greeting" } else { "member_next" },
        &[],
    );
    ask(&sp, flow, state, &mut turn);
    turn
}

/// Advances the call with the keys pressed (`None` or empty: nothing before the timeout).
pub fn step(
    flow: &Flow,
    p: &LangPrompts,
    ctx: &CallContext,
    state: &mut CallState,
    digits: Option<&str>,
) -> Turn {
    let sp = Speaker { p, ctx };
    let mut turn = Turn::new();
    state.seq += 1;
    let raw = digits.unwrap_or("").trim();
    let pressed = raw.trim_end_matches('#');
    let timed_out = digits.is_none();
    // `*` repeats what was asked, without counting as a wrong answer.
    if raw.trim_end_matches('#') == "*" && state.stage != Stage::Done {
        match state.stage {
            Stage::Questions => ask(&sp, flow, state, &mut turn),
            _ => readback(&sp, flow, state, &mut turn),
        }
        return turn;
    }
    if pressed == "0" && state.stage != Stage::Done {
        turn.callback = true;
        sp.say(&mut turn, "callback", &[]);
        match state.stage {
            Stage::Questions => ask(&sp, flow, state, &mut turn),
            _ => readback(&sp, flow, state, &mut turn),
        }
        return turn;
    }
    match state.stage {
        Stage::Questions => {
            let q = &flow.voice_items[state.question];
            match (!timed_out).then(|| accept(q, pressed)).flatten() {
                Some(v) => {
                    state.answers.insert(q.id.clone(), v);
                    state.question += 1;
                    state.tries = 0;
                    if state.question == flow.voice_items.len() {
                        state.stage = Stage::Readback;
                        readback(&sp, flow, state, &mut turn);
                    } else {
                        ask(&sp, flow, state, &mut turn);
                    }
                }
                None => retry(&sp, flow, state, &mut turn),
            }
        }
        Stage::Readback => match pressed {
            "1" if !timed_out => {
                state.stage = Stage::Done;
                let answer = crate::answer::from_keys(flow, &state.answers);
                if answer.urgent {
                    sp.say(&mut turn, "urgent", &[]);
                }
                sp.say(&mut turn, "thanks", &[]);
                turn.completed = Some(answer);
            }
            "2" if !timed_out => {
                *state = CallState {
                    seq: state.seq,
                    ..CallState::default()
                };
                ask(&sp, flow, state, &mut turn);
            }
            _ => retry(&sp, flow, state, &mut turn),
        },
        Stage::Done => sp.say(&mut turn, "thanks", &[]),
    }
    turn
}

fn retry(sp: &Speaker, flow: &Flow, state: &mut CallState, turn: &mut Turn) {
    state.tries += 1;
    if state.tries >= MAX_TRIES {
        state.stage = Stage::Done;
        sp.say(turn, "no_input", &[]);
        turn.gave_up = true;
        return;
    }
    sp.say(turn, "invalid", &[]);
    match state.stage {
        Stage::Readback => readback(sp, flow, state, turn),
        _ => ask(sp, flow, state, turn),
    }
}

fn readback(sp: &Speaker, flow: &Flow, state: &CallState, turn: &mut Turn) {
    let a = crate::answer::from_keys(flow, &state.answers);
    let mut parts = Vec::new();
    if let Some(t) = a.temperature {
        parts.push(sp.p.text(
            "summary_temperature",
            &[("value", format!("{:.1}", t.value()))],
        ));
    }
    if flow.questions.iter().any(|q| q.kind == QuestionKind::Spo2) {
        parts.push(match a.spo2 {
            Some(s) => {
                sp.p.text("summary_spo2", &[("value", s.value().to_string())])
            }
            None => sp.p.text("summary_spo2_none", &[]),
        });
    }
    let lang = if sp.p.language.starts_with("ja") {
        crate::domain::Lang::Ja
    } else {
        crate::domain::Lang::En
    };
    for (qid, cid) in &a.choices {
        if let Some(c) = flow
            .question(qid)
            .and_then(|q| q.choices.iter().find(|c| &c.id == cid))
        {
            parts.push(flow.choice_text(c, lang).to_string());
        }
    }
    let yes = a.symptoms.values().filter(|v| **v).count();
    parts.push(if yes == 0 {
        sp.p.text("summary_no_symptoms", &[])
    } else {
        sp.p.text("summary_yes", &[("count", yes.to_string())])
    });
    let sep = if sp.p.language.starts_with("ja") {
        "、"
    } else {
        ", "
    };
    sp.say(turn, "readback", &[("summary", parts.join(sep))]);
    turn.gather = Some(GatherSpec {
        finish_on_hash: false,
        num_digits: Some(1),
    });
}

/// The turn that ends a call whose check-in was closed meanwhile (answered through the link,
/// by another call, or cancelled): nothing more is asked.
pub fn closed_elsewhere(p: &LangPrompts, ctx: &CallContext, state: &mut CallState) -> Turn {
    state.stage = Stage::Done;
    state.seq += 1;
    let sp = Speaker { p, ctx };
    let mut turn = Turn::new();
    sp.say(&mut turn, "already_answered", &[]);
    turn
}
