//! Parse, don't validate: newtypes whose constructors are the only way in.
use serde::{Deserialize, Serialize};

use crate::Error;

/// A phone number in E.164 form (`+819012345678`). Japanese domestic numbers
/// (`090-1234-5678`) are accepted and converted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phone(String);

impl Phone {
    pub fn parse(field: &'static str, input: &str) -> Result<Phone, Error> {
        let cleaned: String = input
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.' | '\u{2010}' | '\u{30fc}'))
            .map(|c| match c {
                '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
                '＋' => '+',
                _ => c,
            })
            .collect();
        let e164 = if let Some(rest) = cleaned.strip_prefix('+') {
            rest.to_string()
        } else if let Some(rest) = cleaned.strip_prefix('0') {
            format!("81{rest}")
        } else {
            return Err(Error::invalid(
                field,
                "err-write-the-number-with-its-area-code-090-1234",
            ));
        };
        if !e164.chars().all(|c| c.is_ascii_digit()) || !(8..=15).contains(&e164.len()) {
            return Err(Error::invalid(
                field,
                "err-a-phone-number-has-10-or-11-digits-in-japan-090",
            ));
        }
        Ok(Phone(format!("+{e164}")))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address: one `@`, something on both sides, a dot in the domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &'static str, input: &str) -> Result<Email, Error> {
        let s = input.trim();
        let ok = s.len() <= 254
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            })
            && !s.chars().any(char::is_whitespace);
        if ok {
            Ok(Email(s.to_string()))
        } else {
            Err(Error::invalid(
                field,
                "err-not-an-e-mail-address-write-it-like-name-example",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Body temperature in °C with one decimal, 34.0–43.0.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct Temperature(f64);

impl Temperature {
    pub const MIN: f64 = 34.0;
    pub const MAX: f64 = 43.0;
    /// As typed on any keyboard: full-width digits and point (`３７．５`), a comma decimal
    /// (`37,5`), a trailing 度 / ℃ / °C (`36.5度`).
    pub fn parse(field: &'static str, input: &str) -> Result<Temperature, Error> {
        let v: f64 = keyboard_number(input, &["°C", "°c", "°", "度", "C", "c"])
            .replace(',', ".")
            .parse()
            .map_err(|_| {
                Error::invalid(field, "err-write-the-temperature-as-a-number-such-as-36-5")
            })?;
        Self::new(field, v)
    }
    pub fn new(field: &'static str, v: f64) -> Result<Temperature, Error> {
        if !(Self::MIN..=Self::MAX).contains(&v) {
            return Err(Error::invalid_with(
                field,
                "err-temperature-outside",
                vec![
                    ("value", v.to_string()),
                    ("min", Self::MIN.to_string()),
                    ("max", Self::MAX.to_string()),
                ],
            ));
        }
        Ok(Temperature((v * 10.0).round() / 10.0))
    }
    pub fn value(self) -> f64 {
        self.0
    }
}

/// A number as a Japanese keyboard may type it: NFKC folds full-width digits, points, commas
/// and the ℃ / ％ signs to their ASCII forms; then one of `units` is cut from the end.
fn keyboard_number(input: &str, units: &[&str]) -> String {
    use unicode_normalization::UnicodeNormalization;
    let folded: String = input.nfkc().collect();
    let mut s = folded.trim().to_string();
    for u in units {
        if let Some(rest) = s.strip_suffix(u) {
            s = rest.trim_end().to_string();
            break;
        }
    }
    s
}

/// Oxygen saturation in %, 50–100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Serialize)]
pub struct Spo2(i32);

impl Spo2 {
    /// As typed on any keyboard: full-width digits (`９７`), a trailing % or ％.
    pub fn parse(field: &'static str, input: &str) -> Result<Spo2, Error> {
        let v: i32 = keyboard_number(input, &["%"])
            .parse()
            .map_err(|_| Error::invalid(field, "err-write-spo2-as-a-whole-number-such-as-97"))?;
        Self::new(field, v)
    }
    pub fn new(field: &'static str, v: i32) -> Result<Spo2, Error> {
        if !(50..=100).contains(&v) {
            return Err(Error::invalid_with(
                field,
                "err-spo2-outside",
                vec![("value", v.to_string())],
            ));
        }
        Ok(Spo2(v))
    }
    pub fn value(self) -> i32 {
        self.0
    }
}

/// How a person is reached each day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Email,
    Voice,
}

impl Channel {
    pub fn parse(field: &'static str, input: &str) -> Result<Channel, Error> {
        match input.trim() {
            "sms" => Ok(Channel::Sms),
            "email" => Ok(Channel::Email),
            "voice" => Ok(Channel::Voice),
            _ => Err(Error::invalid(field, "err-choose-one-of-sms-email-voice")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Voice => "voice",
        }
    }
}

/// Language of messages, forms and prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn parse(field: &'static str, input: &str) -> Result<Lang, Error> {
        match input.trim() {
            "" | "ja" => Ok(Lang::Ja),
            "en" => Ok(Lang::En),
            _ => Err(Error::invalid(field, "err-choose-ja-or-en")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
}

/// "HH:MM" local time of the daily check-in, as minutes after midnight.
pub fn parse_slot(field: &'static str, input: &str) -> Result<i32, Error> {
    let bad = || Error::invalid(field, "err-write-the-time-as-hh-mm-for-example-09-00");
    let (h, m) = input.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// A name reduced for duplicate detection: width variants folded (NFKC: ｶﾀｶﾅ → カタカナ,
/// ＡＢ → AB), hiragana → katakana, small kana → large, ヂ/ヅ/ヴ → ジ/ズ/ブ, Latin letters
/// upper-cased, and spaces, middle dots and long-vowel marks removed. "やまだ　はなこ",
/// "ﾔﾏﾀﾞ ﾊﾅｺ" and "ヤマダ・ハナコ" share one key.
pub fn kana_key(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfkc()
        .filter(|c| !c.is_whitespace() && !matches!(c, '・' | 'ー' | '-' | '‐' | '.'))
        .map(|c| match c {
            // Hiragana → katakana (same layout, offset 0x60).
            'ぁ'..='ゖ' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
            _ => c,
        })
        .map(|c| match c {
            'ァ' => 'ア',
            'ィ' => 'イ',
            'ゥ' => 'ウ',
            'ェ' => 'エ',
            'ォ' => 'オ',
            'ッ' => 'ツ',
            'ャ' => 'ヤ',
            'ュ' => 'ユ',
            'ョ' => 'ヨ',
            'ヮ' => 'ワ',
            'ヂ' => 'ジ',
            'ヅ' => 'ズ',
            'ヴ' => 'ブ',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Deserializers for inputs that arrive as JSON numbers or booleans from the API and as
/// strings from HTML forms (where flattened structs see every value as a string).
pub mod lenient {
    use serde::{Deserialize, Deserializer, de::Error};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Bool(bool),
        Text(String),
    }

    /// A number, a numeric string, or an empty string / null for none.
    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            Some(Raw::Int(n)) => Ok(Some(n)),
            Some(Raw::Text(s)) if s.trim().is_empty() => Ok(None),
            Some(Raw::Text(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| D::Error::custom(format!("'{s}' is not a whole number"))),
            Some(Raw::Bool(_)) => Err(D::Error::custom("expected a whole number")),
        }
    }

    /// true / false, or a form's "true", "on", "1" (anything else is false).
    pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(match Option::<Raw>::deserialize(d)? {
            Some(Raw::Bool(b)) => b,
            Some(Raw::Int(n)) => n != 0,
            Some(Raw::Text(s)) => matches!(s.trim(), "true" | "on" | "1" | "yes"),
            None => false,
        })
    }
}

/// A Japanese number stored as E.164 shown as people type it: `+819012345678` →
/// `090-1234-5678` (mobiles and 050 as 3-4-4; other numbers as `0…` without hyphens, since
/// area codes vary in length). Anything else is returned as it is.
pub fn national_phone(e164: &str) -> String {
    match e164.strip_prefix("+81") {
        Some(rest) if rest.chars().all(|c| c.is_ascii_digit()) => {
            let n = format!("0{rest}");
            if n.len() == 11 && ["050", "070", "080", "090"].contains(&&n[..3]) {
                format!("{}-{}-{}", &n[..3], &n[3..7], &n[7..])
            } else {
                n
            }
        }
        _ => e164.to_string(),
    }
}

/// The short form of a name that tells the members of a family sharing one phone apart
/// without spelling the whole name out on a lock screen: the given name when the name has
/// two parts (family name first in Japanese, last in a Latin-script name), the whole name
/// otherwise (which part is which cannot be told).
pub fn short_name(name: &str) -> &str {
    let parts: Vec<&str> = name
        .split(|c: char| c.is_whitespace() || c == '\u{3000}')
        .filter(|p| !p.is_empty())
        .collect();
    match parts.as_slice() {
        [first, _, ..] if name.is_ascii() => first,
        [_, .., last] => last,
        _ => name.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_shown_as_typed() {
        assert_eq!(national_phone("+819012345678"), "090-1234-5678");
        assert_eq!(national_phone("+81311112222"), "0311112222");
        assert_eq!(national_phone("nurse@example.jp"), "nurse@example.jp");
    }

    #[test]
    fn short_names_tell_a_family_apart() {
        assert_eq!(short_name("山田 花子"), "花子");
        assert_eq!(short_name("山田\u{3000}太郎"), "太郎");
        assert_eq!(short_name("Hanako Yamada"), "Hanako");
        assert_eq!(short_name("山田花子"), "山田花子");
        assert_eq!(short_name("  ヤマダ  ハナコ "), "ハナコ");
    }

    #[test]
    fn phone_accepts_domestic_and_international() {
        assert_eq!(
            Phone::parse("phone", "090-1234-5678").unwrap().as_str(),
            "+819012345678"
        );
        assert_eq!(
            Phone::parse("phone", "+81 90 1234 5678").unwrap().as_str(),
            "+819012345678"
        );
        assert_eq!(
            Phone::parse("phone", "０９０１２３４５６７８")
                .unwrap()
                .as_str(),
            "+819012345678"
        );
        assert!(Phone::parse("phone", "1234").is_err());
        assert!(Phone::parse("phone", "090-abcd-5678").is_err());
    }

    #[test]
    fn temperature_and_spo2_bounds() {
        assert_eq!(Temperature::parse("t", "37.55").unwrap().value(), 37.6);
        assert!(Temperature::parse("t", "33.9").is_err());
        assert!(Temperature::parse("t", "43.1").is_err());
        assert_eq!(Spo2::parse("s", "96%").unwrap().value(), 96);
        // Japanese keyboards (issue 14): full-width, comma decimal, units.
        for typed in [
            "３７．５",
            "37,5",
            "37.5度",
            "３７．５℃",
            "37.5°C",
            " 37.5 ",
            "37.5 度",
        ] {
            assert_eq!(
                Temperature::parse("t", typed).unwrap().value(),
                37.5,
                "{typed}"
            );
        }
        assert_eq!(Spo2::parse("s", "９６％").unwrap().value(), 96);
        assert!(Temperature::parse("t", "37.5度度").is_err());
        assert!(Temperature::parse("t", "熱あり").is_err());
        assert!(Spo2::parse("s", "101").is_err());
    }

    #[test]
    fn email_and_slot() {
        assert!(Email::parse("e", "a@example.jp").is_ok());
        assert!(Email::parse("e", "a@b").is_err());
        assert!(Email::parse("e", "a b@example.jp").is_err());
        assert_eq!(parse_slot("s", "09:30").unwrap(), 570);
        assert!(parse_slot("s", "24:00").is_err());
    }
}
