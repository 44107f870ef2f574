//! **The one message catalogue**: every text a person or a staff member reads outside the
//! flows and voice prompts (which are data of their own, `flows/`, `voice-prompts/`) — console
//! labels, patient pages, SMS and e-mail texts — is a keyed message in
//! `core/locales/{ja,en}/*.ftl`, in [Fluent](https://projectfluent.org) syntax, read with the
//! Project Fluent team's `fluent-bundle` crate.
//!
//! Why Fluent: it is the format translators' tools know, it carries arguments and plural
//! rules per language (a third language needs only a new folder), and `fluent-bundle` is the
//! reference implementation. The files are compiled into the binary, parsed once at first
//! use; a message without arguments is formatted once and kept, so [`tr`] costs one hash
//! lookup and returns `&'static str` like the literals it replaced. [`problems`] (run by
//! `mimamori check`, at server start and by the tests) refuses a file that does not parse, a
//! key missing in one language, or a message using an argument English does not pass.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use fluent_bundle::{FluentArgs, FluentResource, FluentValue, concurrent::FluentBundle};
use fluent_bundle::{FluentError, resolver::ResolverError};

use crate::domain::Lang;

/// The catalogue files, per language, in the same order.
const FILES: &[(&str, &str, &str)] = &[
    (
        "console.ftl",
        include_str!("../locales/ja/console.ftl"),
        include_str!("../locales/en/console.ftl"),
    ),
    (
        "codes.ftl",
        include_str!("../locales/ja/codes.ftl"),
        include_str!("../locales/en/codes.ftl"),
    ),
    (
        "errors.ftl",
        include_str!("../locales/ja/errors.ftl"),
        include_str!("../locales/en/errors.ftl"),
    ),
    (
        "messages.ftl",
        include_str!("../locales/ja/messages.ftl"),
        include_str!("../locales/en/messages.ftl"),
    ),
];

struct Language {
    bundle: FluentBundle<FluentResource>,
    /// Messages without arguments, formatted once.
    plain: HashMap<String, &'static str>,
    /// Every key with the arguments its message uses.
    keys: BTreeMap<String, BTreeSet<String>>,
    errors: Vec<String>,
}

struct Catalogue {
    ja: Language,
    en: Language,
}

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| Catalogue {
    ja: load("ja", 1),
    en: load("en", 2),
});

/// Loads language `tag` from column `col` of [`FILES`].
fn load(tag: &str, col: usize) -> Language {
    let id: unic_langid::LanguageIdentifier = tag.parse().expect("a language tag");
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // No Unicode isolation marks around arguments: texts go into SMS and HTML as they are.
    bundle.set_use_isolating(false);
    let mut errors = Vec::new();
    let mut keys = BTreeMap::new();
    for f in FILES {
        let text: &'static str = if col == 1 { f.1 } else { f.2 };
        let res = match FluentResource::try_new(text.to_string()) {
            Ok(r) => r,
            Err((r, errs)) => {
                for e in errs {
                    errors.push(format!("locales/{tag}/{}: {e:?}", f.0));
                }
                r
            }
        };
        for entry in res.entries() {
            if let fluent_syntax::ast::Entry::Message(m) = entry {
                let mut args = BTreeSet::new();
                if let Some(p) = &m.value {
                    collect_args(p, &mut args);
                }
                keys.insert(m.id.name.to_string(), args);
            }
        }
        if let Err(errs) = bundle.add_resource(res) {
            for e in errs {
                errors.push(format!("locales/{tag}/{}: {e}", f.0));
            }
        }
    }
    let mut plain = HashMap::new();
    for (key, args) in &keys {
        if !args.is_empty() {
            continue;
        }
        let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) else {
            continue;
        };
        let mut errs = Vec::new();
        let text = bundle.format_pattern(pattern, None, &mut errs).into_owned();
        for e in errs {
            errors.push(format!("locales/{tag}: {key}: {e}"));
        }
        plain.insert(key.clone(), &*Box::leak(text.into_boxed_str()));
    }
    Language {
        bundle,
        plain,
        keys,
        errors,
    }
}

fn collect_args(p: &fluent_syntax::ast::Pattern<&str>, out: &mut BTreeSet<String>) {
    use fluent_syntax::ast::{Expression, InlineExpression, PatternElement};
    fn inline(e: &InlineExpression<&str>, out: &mut BTreeSet<String>) {
        match e {
            InlineExpression::VariableReference { id } => {
                out.insert(id.name.to_string());
            }
            InlineExpression::Placeable { expression } => expr(expression, out),
            _ => {}
        }
    }
    fn expr(e: &Expression<&str>, out: &mut BTreeSet<String>) {
        match e {
            Expression::Inline(i) => inline(i, out),
            Expression::Select { selector, variants } => {
                inline(selector, out);
                for v in variants {
                    collect_args(&v.value, out);
                }
            }
        }
    }
    for el in &p.elements {
        if let PatternElement::Placeable { expression } = el {
            expr(expression, out);
        }
    }
}

fn language(lang: Lang) -> &'static Language {
    match lang {
        Lang::Ja => &CATALOGUE.ja,
        Lang::En => &CATALOGUE.en,
    }
}

/// The text of message `key` in `lang` (a message without arguments). A key the catalogue
/// lacks — which [`problems`] and the tests refuse — shows as the key itself.
pub fn tr(lang: Lang, key: &str) -> &'static str {
    match language(lang).plain.get(key) {
        Some(t) => t,
        None => {
            tracing::warn!(
                key,
                lang = lang.as_str(),
                "message missing from the catalogue"
            );
            leak_key(key)
        }
    }
}

fn leak_key(key: &str) -> &'static str {
    static SEEN: LazyLock<std::sync::Mutex<HashMap<String, &'static str>>> =
        LazyLock::new(Default::default);
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    seen.entry(key.to_string())
        .or_insert_with(|| Box::leak(key.to_string().into_boxed_str()))
}

/// Message `key` in `lang` with its arguments (numbers stay numbers, for plural rules).
pub fn tr_args(lang: Lang, key: &str, args: &[(&str, Arg<'_>)]) -> String {
    let l = language(lang);
    let Some(pattern) = l.bundle.get_message(key).and_then(|m| m.value()) else {
        tracing::warn!(
            key,
            lang = lang.as_str(),
            "message missing from the catalogue"
        );
        return key.to_string();
    };
    let mut fa = FluentArgs::new();
    for (k, v) in args {
        match v {
            Arg::Str(s) => fa.set(*k, FluentValue::from(*s)),
            Arg::Num(n) => fa.set(*k, FluentValue::from(*n)),
        }
    }
    let mut errs: Vec<FluentError> = Vec::new();
    let out = l
        .bundle
        .format_pattern(pattern, Some(&fa), &mut errs)
        .into_owned();
    for e in errs {
        if !matches!(e, FluentError::ResolverError(ResolverError::Reference(_))) {
            tracing::warn!(key, error = %e, "message formatting");
        }
    }
    out
}

/// A count as people read it on both consoles: digits grouped by three with `,`
/// (`1,234,567`), as Japanese and English official documents both write them. Fluent's
/// `NUMBER()` in fluent-bundle formats without grouping; this is the one rule needed, and
/// not worth a locale-data dependency.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An argument of a message.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Str(&'a str),
    Num(f64),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Str(s)
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(s: &'a String) -> Self {
        Arg::Str(s)
    }
}
impl From<i64> for Arg<'_> {
    fn from(n: i64) -> Self {
        Arg::Num(n as f64)
    }
}

/// What is wrong with the catalogue: files that do not parse, keys missing in a language,
/// messages using an argument the English message (the reference) does not. Empty when all is well.
pub fn problems() -> Vec<String> {
    let (ja, en) = (&CATALOGUE.ja, &CATALOGUE.en);
    let mut out: Vec<String> = ja.errors.iter().chain(&en.errors).cloned().collect();
    for (a, b, name) in [(ja, en, "en"), (en, ja, "ja")] {
        for key in a.keys.keys() {
            if !b.keys.contains_key(key) {
                out.push(format!("locales/{name}: message `{key}` is missing"));
            }
        }
    }
    // English is the reference: the code passes its arguments; another language may leave
    // one out (a shorter sentence) but may not use one the code does not pass.
    for (key, args) in &ja.keys {
        if let Some(english) = en.keys.get(key)
            && !args.is_subset(english)
        {
            out.push(format!(
                "message `{key}`: ja uses arguments {args:?}, en (the reference) only {english:?}"
            ));
        }
    }
    out
}

/// Whether the catalogue has message `key` (in every language).
pub fn has(key: &str) -> bool {
    CATALOGUE.ja.keys.contains_key(key) && CATALOGUE.en.keys.contains_key(key)
}

/// Every key of the catalogue.
pub fn keys() -> impl Iterator<Item = &'static str> {
    CATALOGUE.ja.keys.keys().map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_group_their_digits_by_three() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(12_345), "12,345");
        assert_eq!(count(500_000), "500,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(-1_234), "-1,234");
    }
}
