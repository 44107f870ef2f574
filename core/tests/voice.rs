//! The DTMF call engine walking the shipped flows and prompts, and the TwiML it produces
//! (snapshots in `tests/snapshots/`, ja and en).
use std::path::Path;

use mimamori_core::{
    domain::Lang,
    flows::Flows,
    voice::{self, CallContext, CallState, Prompts, Stage, parse_temperature_digits},
};

fn setup() -> (Flows, Prompts) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let flows = Flows::load(&root.join("flows")).unwrap();
    let prompts = Prompts::load(&root.join("voice-prompts")).unwrap();
    assert!(
        prompts.missing_for(&flows).is_empty(),
        "{:?}",
        prompts.missing_for(&flows)
    );
    (flows, prompts)
}

const CTX: CallContext = CallContext {
    centre: "みなと保健所",
    phone: "03-0000-0000",
};

#[test]
fn temperature_digits() {
    assert_eq!(parse_temperature_digits("375").unwrap().value(), 37.5);
    assert_eq!(parse_temperature_digits("37").unwrap().value(), 37.0);
    assert!(parse_temperature_digits("3755").is_none());
    assert!(
        parse_temperature_digits("455").is_none(),
        "45.5 °C is out of range"
    );
    assert!(parse_temperature_digits("3*5").is_none());
    assert!(parse_temperature_digits("").is_none());
}

#[test]
fn a_full_call_records_what_was_pressed() {
    let (flows, prompts) = setup();
    let flow = flows.get("patient-daily").unwrap();
    let p = prompts.lang(Lang::Ja);
    let mut st = CallState::default();
    let first = voice::start(flow, p, &CTX, &mut st, true);
    assert_eq!(first.says[0].id, "greeting");
    assert!(first.says[0].text.contains("みなと保健所"));
    assert_eq!(first.says[1].id, "q.temperature");
    assert!(first.gather.unwrap().finish_on_hash);
    // Temperature, SpO2, cough (yes), sore throat, the cold-symptom group, fatigue,
    // breathlessness, taste/smell, feeling (3 = worse), then the three urgent-sign groups.
    let keys = [
        "375#", "96#", "1", "2", "2", "2", "2", "2", "3", "2", "2", "2",
    ];
    assert_eq!(flow.voice_items.len(), keys.len());
    for k in keys {
        let t = voice::step(flow, p, &CTX, &mut st, Some(k));
        assert!(!t.gave_up && t.completed.is_none(), "{k}");
    }
    assert_eq!(st.stage, Stage::Readback);
    let rb = voice::step(flow, p, &CTX, &mut st, Some("9"));
    assert_eq!(rb.says[0].id, "invalid");
    assert!(
        rb.says[1]
            .text
            .contains("体温37.5度、酸素96、悪くなった、1つの症状が、はい"),
        "{}",
        rb.says[1].text
    );
    let done = voice::step(flow, p, &CTX, &mut st, Some("1"));
    let a = done.completed.unwrap();
    assert_eq!(a.temperature.unwrap().value(), 37.5);
    assert_eq!(a.spo2.unwrap().value(), 96);
    assert_eq!(a.symptoms.get("cough"), Some(&true));
    assert_eq!(a.symptoms.get("sore_throat"), Some(&false));
    assert_eq!(a.choices.get("feeling").map(String::as_str), Some("worse"));
    // "None of these" to a group answers each of its members.
    for member in [
        "runny_nose",
        "blocked_nose",
        "urgent_chest_pain",
        "urgent_stupor",
    ] {
        assert_eq!(a.symptoms.get(member), Some(&false), "{member}");
    }
    assert!(!a.urgent);
    assert!(done.gather.is_none(), "the call ends");
    assert_eq!(done.says.last().unwrap().id, "thanks");
}

#[test]
fn invalid_and_empty_input_repeat_then_give_up() {
    let (flows, prompts) = setup();
    let flow = flows.get("patient-daily").unwrap();
    let p = prompts.lang(Lang::En);
    let mut st = CallState::default();
    voice::start(flow, p, &CTX, &mut st, true);
    let t = voice::step(flow, p, &CTX, &mut st, Some("99#"));
    assert_eq!(
        t.says.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["invalid", "q.temperature", "howto_temperature"]
    );
    let t = voice::step(flow, p, &CTX, &mut st, None);
    assert_eq!(t.says[0].id, "invalid");
    let t = voice::step(flow, p, &CTX, &mut st, Some("#"));
    assert!(t.gave_up);
    assert_eq!(t.says[0].id, "no_input");
    assert!(t.gather.is_none());
}

#[test]
fn zero_asks_for_a_callback_and_spo2_can_be_skipped() {
    let (flows, prompts) = setup();
    let flow = flows.get("patient-daily").unwrap();
    let p = prompts.lang(Lang::Ja);
    let mut st = CallState::default();
    voice::start(flow, p, &CTX, &mut st, true);
    voice::step(flow, p, &CTX, &mut st, Some("380#"));
    let t = voice::step(flow, p, &CTX, &mut st, Some("0#"));
    assert!(t.callback);
    assert_eq!(t.says[0].id, "callback");
    assert_eq!(t.says[1].id, "q.spo2", "the same question again");
    let t = voice::step(flow, p, &CTX, &mut st, Some("#"));
    assert_eq!(t.says[0].id, "q.cough", "no oximeter: skipped");
    for k in ["2", "2", "2", "2", "2", "2", "2", "2", "1", "2"] {
        voice::step(flow, p, &CTX, &mut st, Some(k));
    }
    let rb_restart = voice::step(flow, p, &CTX, &mut st, Some("2"));
    assert_eq!(
        rb_restart.says[0].id, "q.temperature",
        "2 at the read-back starts again"
    );
    for k in [
        "380#", "#", "2", "2", "2", "2", "2", "2", "2", "2", "1", "2",
    ] {
        voice::step(flow, p, &CTX, &mut st, Some(k));
    }
    let done = voice::step(flow, p, &CTX, &mut st, Some("1"));
    let a = done.completed.unwrap();
    assert!(a.urgent && a.spo2.is_none());
    // A yes to the breathing group is urgent and stored under the group: the call does not
    // say which of its seven signs it was.
    assert_eq!(a.urgent_signs, ["urgent_breathing"]);
    assert_eq!(a.symptoms.get("urgent_chest_pain"), None);
    assert_eq!(a.symptoms.get("urgent_purple_lips"), Some(&false));
    assert_eq!(done.says[0].id, "urgent");
    assert!(done.says[0].text.contains("03-0000-0000"));
}

#[test]
fn a_choice_takes_one_of_its_keys() {
    let (flows, prompts) = setup();
    let flow = flows.get("patient-daily").unwrap();
    let p = prompts.lang(Lang::En);
    let mut st = CallState::default();
    voice::start(flow, p, &CTX, &mut st, true);
    for k in ["365#", "97#", "2", "2", "2", "2", "2", "2"] {
        voice::step(flow, p, &CTX, &mut st, Some(k));
    }
    assert_eq!(flow.voice_items[st.question].id, "feeling");
    let t = voice::step(flow, p, &CTX, &mut st, Some("4"));
    assert_eq!(
        t.says.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["invalid", "q.feeling"],
        "there is no fourth option"
    );
    assert_eq!(
        t.gather.unwrap().num_digits,
        Some(1),
        "one key, no # needed"
    );
    let t = voice::step(flow, p, &CTX, &mut st, Some("1"));
    assert_eq!(t.says[0].id, "q.urgent_appearance");
    assert_eq!(
        st.answers.get("feeling").map(String::as_str),
        Some("better")
    );
}

#[test]
fn twiml_snapshots() {
    let (flows, prompts) = setup();
    let flow = flows.get("patient-daily").unwrap();
    for lang in [Lang::Ja, Lang::En] {
        let p = prompts.lang(lang);
        let mut st = CallState::default();
        let first = voice::start(flow, p, &CTX, &mut st, true);
        let xml = voice::twiml(
            &first,
            p,
            "https://example.jp/hooks/twilio/voice/step?n=1&x=<y>",
            "https://example.jp/a",
        );
        insta::assert_snapshot!(format!("first_question_{}", lang.as_str()), xml);
        let second = voice::step(flow, p, &CTX, &mut st, Some("375#"));
        insta::assert_snapshot!(
            format!("yes_no_{}", lang.as_str()),
            voice::twiml(&second, p, "https://example.jp/s?n=2", "")
        );
    }
}

#[test]
fn recordings_are_played_and_missing_prompts_are_reported() {
    let (flows, _) = setup();
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../voice-prompts");
    std::fs::copy(src.join("ja.toml"), dir.path().join("ja.toml")).unwrap();
    // English without the cough question.
    let en = std::fs::read_to_string(src.join("en.toml")).unwrap();
    let en: String = en
        .lines()
        .filter(|l| !l.starts_with("\"q.cough\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("en.toml"), en).unwrap();
    std::fs::create_dir_all(dir.path().join("audio/ja")).unwrap();
    std::fs::write(dir.path().join("audio/ja/greeting.mp3"), b"ID3").unwrap();
    let prompts = Prompts::load(dir.path()).unwrap();
    assert_eq!(
        prompts.missing_for(&flows),
        ["voice-prompts/en.toml: prompt 'q.cough' is missing"]
    );
    let p = prompts.lang(Lang::Ja);
    let mut st = CallState::default();
    let turn = voice::start(flows.get("patient-daily").unwrap(), p, &CTX, &mut st, true);
    let xml = voice::twiml(
        &turn,
        p,
        "https://x/step",
        "https://x/voice-prompts/audio/ja",
    );
    assert!(
        xml.contains("<Play>https://x/voice-prompts/audio/ja/greeting.mp3</Play>"),
        "{xml}"
    );
    assert!(
        !xml.contains("こちらは"),
        "the recording replaces the spoken greeting"
    );
    std::fs::write(dir.path().join("en.toml"), "voice = 1").unwrap();
    let errs = Prompts::load(dir.path()).unwrap_err();
    assert!(errs[0].contains("en.toml:1:"), "{errs:?}");
}

#[test]
fn a_question_can_name_its_voice_prompt() {
    let src = |voice: &str| {
        format!(
            "id = \"patient-daily\"\ntitle = {{ ja = \"x\", en = \"x\" }}\n[[questions]]\nid = \"cough\"\nkind = \"yes_no\"\n{voice}text = {{ ja = \"a\", en = \"b\" }}\n"
        )
    };
    let contact = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows/contact-daily.toml"),
    )
    .unwrap();
    let load = |v: &str| {
        Flows::from_sources(&[
            ("p.toml".into(), src(v)),
            ("c.toml".into(), contact.clone()),
        ])
        .unwrap()
    };
    let (_, prompts) = setup();
    assert!(
        prompts.missing_for(&load("")).is_empty(),
        "default q.cough exists"
    );
    let custom = load("voice = \"q.special_cough\"\n");
    assert_eq!(
        prompts.missing_for(&custom),
        [
            "voice-prompts/en.toml: prompt 'q.special_cough' is missing",
            "voice-prompts/ja.toml: prompt 'q.special_cough' is missing"
        ]
    );
}

/// `*` repeats the current question (or the read-back) and never counts as a wrong answer:
/// three stars and the call is still asking, then a valid answer moves on.
#[test]
fn star_repeats_the_question_without_counting_a_try() {
    let (flows, prompts) = setup();
    let flow = flows.get("patient-daily").unwrap();
    let p = prompts.lang(Lang::Ja);
    let mut st = CallState::default();
    voice::start(flow, p, &CTX, &mut st, true);
    for _ in 0..voice::MAX_TRIES + 1 {
        // As a finish-on-# question reports it, and as a single key.
        for keys in ["*", "*#"] {
            let t = voice::step(flow, p, &CTX, &mut st, Some(keys));
            assert!(!t.gave_up);
            assert_eq!(
                t.says.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
                ["q.temperature", "howto_temperature"]
            );
        }
    }
    assert_eq!(st.tries, 0);
    let t = voice::step(flow, p, &CTX, &mut st, Some("365#"));
    assert_eq!(t.says[0].id, "q.spo2");
    // At the read-back, * reads it again.
    for k in ["#", "2", "2", "2", "2", "2", "2", "2", "2", "2", "2"] {
        voice::step(flow, p, &CTX, &mut st, Some(k));
    }
    let again = voice::step(flow, p, &CTX, &mut st, Some("*"));
    assert_eq!(again.says[0].id, "readback");
    assert!(again.completed.is_none());
    assert!(
        voice::step(flow, p, &CTX, &mut st, Some("1"))
            .completed
            .is_some()
    );
}

/// The slow pace reads each sentence at 80 % with a pause after it and waits 15 s for keys;
/// text stays escaped inside the SSML.
#[test]
fn the_slow_pace_reads_slower_with_pauses() {
    let (flows, prompts) = setup();
    let flow = flows.get("patient-daily").unwrap();
    let p = prompts.lang(Lang::Ja);
    let mut st = CallState::default();
    let turn = voice::start(flow, p, &CTX, &mut st, true);
    let slow = voice::twiml_paced(
        &turn,
        p,
        "https://x/step?a=1&b=2",
        "",
        voice::Pace { slow: true },
    );
    assert!(slow.contains(r#"<prosody rate="80%">"#), "{slow}");
    assert!(
        slow.matches(r#"<break time="600ms"/>"#).count() >= 3,
        "{slow}"
    );
    assert!(slow.contains(r#"timeout="15""#));
    assert!(slow.contains("a=1&amp;b=2"));
    let normal = voice::twiml(&turn, p, "https://x/step", "");
    assert!(!normal.contains("prosody") && normal.contains(r#"timeout="8""#));
}
