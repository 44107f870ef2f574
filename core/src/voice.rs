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

/// Prompt ids every language must have (besides `q.<question>` for each flow question).
pub const STANDARD_PROMPTS: &[&str] = &[
    "greeting",
    "howto_temperature",
    "howto_spo2",
    "howto_yes_no",
    "invalid",
    "no_input",
    "readback",
    "thanks",
    "urgent",
    "callback",
    "member_next",
    "identify_dob",
    "identify_failed",
    "nothing_today",
    "identify_retry",
    "already_answered",
    "machine",
    "summary_temperature",
    "summary_spo2",
    "summary_spo2_none",
    "summary_yes",
    "summary_no_symptoms",
];

/// Invalid or empty answers to one question before the call gives up.
pub const MAX_TRIES: u32 = 3;

/// The placeholders a prompt may use (filled in by the call engine).
pub const PLACEHOLDERS: &[&str] = &["centre", "count", "phone", "summary", "value"];

/// Prompts that would be read wrongly: empty ones (the caller hears silence) and unknown
/// `{placeholders}` (read out literally). Each named with file and line.
fn check_prompts(file: &str, src: &str, prompts: &BTreeMap<String, String>) -> Vec<String> {
    let line_of = |id: &str| {
        src.lines()
            .position(|l| {
                let l = l.trim_start().trim_start_matches('"');
                l.starts_with(id)
                    && l[id.len()..]
                        .trim_start_matches('"')
                        .trim_start()
                        .starts_with('=')
            })
            .map(|i| i + 1)
            .unwrap_or(1)
    };
    let mut problems = Vec::new();
    for (id, text) in prompts {
        if text.trim().is_empty() {
            problems.push(format!(
                "{file}:{}: prompt '{id}' is empty (the caller would hear silence)",
                line_of(id)
            ));
        }
        let mut rest = text.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else { break };
            let name = &after[..close];
            if !PLACEHOLDERS.contains(&name) {
                problems.push(format!(
                    "{file}:{}: prompt '{id}' uses {{{name}}}, which is not filled in (it would be read out as written); known: {}",
                    line_of(id),
                    PLACEHOLDERS.join(", ")
                ));
            }
            rest = &after[close + 1..];
        }
    }
    problems
}

#[derive(Debug, Clone, Deserialize)]
struct PromptFile {
    voice: String,
    language: String,
    prompts: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct LangPrompts {
    pub voice: String,
    pub language: String,
    prompts: BTreeMap<String, String>,
    /// Prompt id → file name of a recording under `audio/<lang>/`.
    audio: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct Prompts {
    by_lang: BTreeMap<String, LangPrompts>,
}

const BUILTIN: &[(&str, &str)] = &[
    ("ja", include_str!("../../voice-prompts/ja.toml")),
    ("en", include_str!("../../voice-prompts/en.toml")),
];

impl Prompts {
    /// Loads `ja.toml`, `en.toml`, … from `dir` (built-in texts when `dir` does not exist) and
    /// lists recordings in `dir/audio/<lang>/`.
    pub fn load(dir: &Path) -> Result<Prompts, Vec<String>> {
        let mut sources = Vec::new();
        if dir.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| vec![format!("{}: {e}", dir.display())])?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            for f in files {
                let lang = f
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_string();
                let src = std::fs::read_to_string(&f)
                    .map_err(|e| vec![format!("{}: {e}", f.display())])?;
                sources.push((f.display().to_string(), lang, src));
            }
        } else {
            for (lang, src) in BUILTIN {
                sources.push((
                    format!("(built-in) voice-prompts/{lang}.toml"),
                    lang.to_string(),
                    src.to_string(),
                ));
            }
        }
        let mut problems = Vec::new();
        let mut by_lang = BTreeMap::new();
        for (file, lang, src) in sources {
            match toml::from_str::<PromptFile>(&src) {
                Ok(p) => {
                    problems.extend(check_prompts(&file, &src, &p.prompts));
                    let mut audio = BTreeMap::new();
                    if let Ok(entries) = std::fs::read_dir(dir.join("audio").join(&lang)) {
                        for e in entries.flatten() {
                            let name = e.file_name().to_string_lossy().to_string();
                            if let Some((id, ext)) = name.rsplit_once('.')
                                && matches!(ext, "mp3" | "wav")
                            {
                                audio.insert(id.to_string(), name.clone());
                            }
                        }
                    }
                    by_lang.insert(
                        lang,
                        LangPrompts {
                            voice: p.voice,
                            language: p.language,
                            prompts: p.prompts,
                            audio,
                        },
                    );
                }
                Err(e) => {
                    let line = e
                        .span()
                        .map(|s| src[..s.start].matches('\n').count() + 1)
                        .unwrap_or(1);
                    problems.push(format!("{file}:{line}: {}", e.message()));
                }
            }
        }
        for lang in ["ja", "en"] {
            if !by_lang.contains_key(lang) && problems.is_empty() {
                problems.push(format!(
                    "voice-prompts: no prompts for language '{lang}' ({lang}.toml)"
                ));
            }
        }
        if problems.is_empty() {
            Ok(Prompts { by_lang })
        } else {
            Err(problems)
        }
    }

    /// Prompt ids the flows need that a language does not have.
    pub fn missing_for(&self, flows: &Flows) -> Vec<String> {
        let mut needed: BTreeSet<String> = STANDARD_PROMPTS.iter().map(|s| s.to_string()).collect();
        for flow in flows.all() {
            for item in &flow.voice_items {
                needed.insert(item.prompt.clone());
            }
        }
        let mut out = Vec::new();
        for (lang, p) in &self.by_lang {
            for id in &needed {
                if !p.prompts.contains_key(id) {
                    out.push(format!(
                        "voice-prompts/{lang}.toml: prompt '{id}' is missing"
                    ));
                }
            }
        }
        out
    }

    pub fn lang(&self, lang: Lang) -> &LangPrompts {
        self.by_lang
            .get(lang.as_str())
            .or_else(|| self.by_lang.get("ja"))
            .expect("ja prompts are checked at load")
    }
}

impl LangPrompts {
    /// The text of `id` with `{name}` placeholders filled in.
    pub fn text(&self, id: &str, vars: &[(&str, String)]) -> String {
        let mut t = self.prompts.get(id).cloned().unwrap_or_default();
        for (k, v) in vars {
            t = t.replace(&format!("{{{k}}}"), v);
        }
        t
    }
    pub fn audio(&self, id: &str) -> Option<&str> {
        self.audio.get(id).map(String::as_str)
    }
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

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// How a call is read to one person.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pace {
    /// Slower speech with pauses between sentences and more time for keys (elderly
    /// people; `persons.slow_speech`).
    pub slow: bool,
}

/// Seconds the keypad waits: 8, or 15 at the slow pace.
fn key_timeout(pace: Pace) -> u32 {
    if pace.slow { 15 } else { 8 }
}

/// A prompt's text as SSML for the slow pace: read at 80 % with a 0.6 s pause after each
/// sentence (Amazon Polly voices through Twilio `<Say>` honour `<prosody>` and `<break>`).
fn slow_ssml(text: &str) -> String {
    let mut out = String::from(r#"<prosody rate="80%">"#);
    let mut sentence = String::new();
    for ch in text.chars() {
        sentence.push(ch);
        if matches!(ch, '。' | '.' | '?' | '？' | '!' | '！') {
            out.push_str(&xml_escape(&sentence));
            out.push_str(r#"<break time="600ms"/>"#);
            sentence.clear();
        }
    }
    out.push_str(&xml_escape(&sentence));
    out.push_str("</prosody>");
    out
}

/// TwiML for a turn at the normal pace; see [`twiml_paced`].
pub fn twiml(turn: &Turn, p: &LangPrompts, action: &str, audio_base: &str) -> String {
    twiml_paced(turn, p, action, audio_base, Pace::default())
}

/// TwiML for a turn. Keys are accepted while prompts play (barge-in: the prompts are nested
/// in `<Gather>`); an empty result is posted too, so timeouts reach the engine.
/// `audio_base` is the public URL of `/voice-prompts/audio/<lang>`.
pub fn twiml_paced(
    turn: &Turn,
    p: &LangPrompts,
    action: &str,
    audio_base: &str,
    pace: Pace,
) -> String {
    let mut speech = String::new();
    for u in &turn.says {
        if let Some(file) = p.audio(&u.id) {
            speech.push_str(&format!(
                "<Play>{}</Play>",
                xml_escape(&format!("{audio_base}/{file}"))
            ));
        } else if !u.text.is_empty() {
            let text = if pace.slow {
                slow_ssml(&u.text)
            } else {
                xml_escape(&u.text)
            };
            speech.push_str(&format!(
                r#"<Say language="{}" voice="{}">{text}</Say>"#,
                xml_escape(&p.language),
                xml_escape(&p.voice),
            ));
        }
    }
    let body = match turn.gather {
        Some(g) => {
            let mut attrs = format!(
                r#"input="dtmf" action="{}" method="POST" timeout="{}" actionOnEmptyResult="true""#,
                xml_escape(action),
                key_timeout(pace)
            );
            if g.finish_on_hash {
                attrs.push_str(r##" finishOnKey="#""##);
            } else {
                attrs.push_str(r#" finishOnKey="""#);
            }
            if let Some(n) = g.num_digits {
                attrs.push_str(&format!(r#" numDigits="{n}""#));
            }
            format!("<Gather {attrs}>{speech}</Gather>")
        }
        None => format!("{speech}<Hangup/>"),
    };
    format!(r#"<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>"#)
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

/// TwiML that only speaks and hangs up.
pub fn say_and_hang_up(p: &LangPrompts, ids: &[(&str, Vec<(&str, String)>)]) -> String {
    let mut turn = Turn::new();
    for (id, vars) in ids {
        turn.says.push(Utterance {
            id: id.to_string(),
            text: p.text(id, vars),
        });
    }
    twiml(&turn, p, "", "")
}

#[cfg(test)]
mod prompt_meaning {
    use super::*;

    #[test]
    fn empty_prompts_and_unknown_placeholders_are_refused() {
        let src = "voice = \"x\"\nlanguage = \"ja-JP\"\n[prompts]\ngreeting = \"  \"\nbye = \"{centre} です {centr}\"\n";
        let p: PromptFile = toml::from_str(src).unwrap();
        let problems = check_prompts("ja.toml", src, &p.prompts);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|e| e.starts_with("ja.toml:4: prompt 'greeting' is empty"))
        );
        assert!(
            problems
                .iter()
                .any(|e| e.starts_with("ja.toml:5: prompt 'bye' uses {centr}"))
        );
    }
}
