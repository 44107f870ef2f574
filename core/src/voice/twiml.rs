//! Turns into TwiML: `<Say>` (or recorded audio), `<Gather>` with the pace of the person.
use super::*;

pub(crate) fn xml_escape(s: &str) -> String {
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
pub(crate) fn key_timeout(pace: Pace) -> u32 {
    if pace.slow { 15 } else { 8 }
}

/// A prompt's text as SSML for the slow pace: read at 80 % with a 0.6 s pause after each
/// sentence (Amazon Polly voices through Twilio `<Say>` honour `<prosody>` and `<break>`).
pub(crate) fn slow_ssml(text: &str) -> String {
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
