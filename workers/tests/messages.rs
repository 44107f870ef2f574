//! What people receive: SMS and e-mail texts (ja, en; first message and reminder) and the
//! call request, as snapshots. SMS bodies must stay within two UCS-2 segments.
use chrono::{TimeZone, Utc};
use mimamori_core::{
    config::Config, provider::ucs2_segments, store::checkins::DueCheckin, token::LinkSigner,
};
use mimamori_workers::dispatch::message;

fn due(lang: &str, reminders: i32) -> DueCheckin {
    DueCheckin {
        id: 42,
        person_id: 7,
        attempts: 0,
        reminders,
        deadline_at: Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap(),
        channel: "sms".into(),
        fallback_channel: None,
        on_fallback: false,
        monitoring_type: "patient".into(),
        phone: Some("+819012345678".into()),
        email: Some("hanako@example.jp".into()),
        language: lang.into(),
        health_centre_name: "みなと保健所".into(),
        health_centre_phone: "03-0000-0000".into(),
        person_name: "山田 花子".into(),
        local_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
        claim: "c1".into(),
    }
}

#[test]
fn messages_snapshot() {
    let cfg = Config {
        public_url: "https://mimamori.example.jp".into(),
        ..Config::default()
    };
    let signer = LinkSigner::new(b"snapshot-key");
    let at = Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap();
    for lang in ["ja", "en"] {
        for reminders in [0, 1] {
            let sms = message(&cfg, &signer, &due(lang, reminders), "sms", "k", at).unwrap();
            assert!(ucs2_segments(&sms.body) <= 2, "{}", sms.body);
            assert_eq!(
                sms.status_callback.as_deref(),
                Some("https://mimamori.example.jp/hooks/twilio/status/message?a=k"),
                "our own attempt key travels in the callback URL"
            );
            insta::assert_snapshot!(format!("sms_{lang}_r{reminders}"), sms.body);
        }
        let mail = message(&cfg, &signer, &due(lang, 0), "email", "k", at).unwrap();
        insta::assert_snapshot!(
            format!("email_{lang}"),
            format!(
                "{}\n---\n{}\n---\n{}",
                mail.subject.unwrap(),
                mail.body,
                mail.html.unwrap()
            )
        );
        let call = message(&cfg, &signer, &due(lang, 0), "voice", "k", at).unwrap();
        assert!(
            call.url
                .unwrap()
                .starts_with("https://mimamori.example.jp/hooks/twilio/voice?t=42.")
        );
        assert_eq!(call.to, "+819012345678");
    }
    let mut no_mail = due("ja", 0);
    no_mail.email = None;
    assert_eq!(
        message(&cfg, &signer, &no_mail, "email", "k", at).unwrap_err(),
        "no e-mail address"
    );
}
