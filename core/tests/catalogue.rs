//! The message catalogue is complete in every language, and every key the code asks for is
//! in it (a scan of the sources for `tr(…, "key")` and `tr_args(…, "key", …)`).
use mimamori_core::{domain::Lang, i18n};

#[test]
fn the_catalogue_parses_and_every_key_is_in_every_language() {
    assert_eq!(i18n::problems(), Vec::<String>::new());
    assert!(i18n::keys().count() > 500);
    assert_eq!(i18n::tr(Lang::Ja, "ecmo"), "ECMO");
    assert_ne!(
        i18n::tr(Lang::Ja, "more-basic-information-optional"),
        i18n::tr(Lang::En, "more-basic-information-optional")
    );
}

#[test]
fn a_missing_key_shows_as_itself_not_as_an_empty_label() {
    assert_eq!(i18n::tr(Lang::En, "no-such-message"), "no-such-message");
    assert!(!i18n::has("no-such-message"));
}

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_key_the_code_uses_is_in_the_catalogue() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for d in ["src", "core/src", "workers/src"] {
        rust_files(&root.join(d), &mut files);
    }
    let mut used = 0;
    let mut missing = Vec::new();
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap();
        for call in ["tr(", "tr_args("] {
            for (i, _) in src.match_indices(call) {
                if i > 0 && src[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                // tr(<lang>, "key" …
                let rest = &src[i + call.len()..];
                let Some(comma) = rest.find(',') else {
                    continue;
                };
                let after = rest[comma + 1..].trim_start();
                if let Some(lit) = after.strip_prefix('"') {
                    let key = &lit[..lit.find('"').unwrap()];
                    used += 1;
                    if !i18n::has(key) {
                        missing.push(format!("{}: {key}", f.display()));
                    }
                }
            }
        }
    }
    assert!(used > 500, "the scan found the calls ({used})");
    assert!(missing.is_empty(), "keys not in the catalogue: {missing:?}");
}

#[test]
fn every_validation_key_in_the_code_is_in_the_catalogue() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for d in ["src", "core/src", "workers/src"] {
        rust_files(&root.join(d), &mut files);
    }
    let mut used = 0;
    let mut missing = Vec::new();
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap();
        let prefixes = ["\"err-", "\"link-", "\"staff-alert-"];
        for (i, _) in prefixes.iter().flat_map(|p| src.match_indices(p)) {
            let key = &src[i + 1..i + 1 + src[i + 1..].find('"').unwrap()];
            // The prefix itself (error.rs), and ids that are not messages.
            if key.ends_with('-') || key.contains([' ', '{', '.']) {
                continue;
            }
            used += 1;
            if !i18n::has(key) {
                missing.push(format!("{}: {key}", f.display()));
            }
        }
    }
    assert!(used > 80, "the scan found the messages ({used})");
    assert!(
        missing.is_empty(),
        "validation keys not in the catalogue: {missing:?}"
    );
}

#[test]
fn validation_messages_carry_a_key_and_read_in_each_language() {
    use mimamori_core::{Error, domain::Temperature};
    let Err(Error::Invalid(e)) = Temperature::parse("temperature", "45.0") else {
        panic!("45 °C is refused")
    };
    assert_eq!(e[0].key.as_deref(), Some("err-temperature-outside"));
    assert_eq!(
        e[0].reason,
        "45 °C is outside 34–43 °C; check the thermometer reading"
    );
    assert_eq!(e[0].message(Lang::En), e[0].reason);
    assert_eq!(
        e[0].message(Lang::Ja),
        "45 ℃ は 34〜43 ℃ の範囲外です。体温計の値を確認してください"
    );
    // A text from elsewhere (no key) is shown as it is.
    let f = mimamori_core::FieldError::new("x", "something new".into(), Vec::new());
    assert_eq!(f.message(Lang::Ja), "something new");
    assert!(f.key.is_none());
}

#[test]
fn every_label_in_the_catalogue_is_used_by_the_code() {
    // Labels, validation messages and texts are asked for by key as a string literal (in a
    // `tr` call or a table); the words of codes are keyed by the enum (`codes.ftl`).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for d in ["src", "core/src", "workers/src"] {
        rust_files(&root.join(d), &mut files);
    }
    let code: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let mut unused = Vec::new();
    for file in ["console.ftl", "errors.ftl", "messages.ftl"] {
        let text = std::fs::read_to_string(root.join("core/locales/en").join(file)).unwrap();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            if let Some((key, _)) = line.split_once(" = ")
                && !code.contains(&format!("\"{key}\""))
            {
                unused.push(format!("{file}: {key}"));
            }
        }
    }
    assert!(unused.is_empty(), "messages nothing asks for: {unused:?}");
}
