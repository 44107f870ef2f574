//! What the API's text fields accept, stated for its OpenAPI document. Registration and
//! record inputs arrive as text (the console's forms and the JSON API share them, so every
//! problem is reported at once, field by field); these transforms give each field its form in
//! the schema, as strict as its parser or stricter, so that a request valid by the document
//! is one the parser accepts. What a schema cannot state — a date not in the future, rules
//! across fields or on the stored person — each refused field names by its `rule`.
use schemars::Schema;
use serde_json::json;

/// Empty, or only spaces: the field is left out. (`\u0085`, NEXT LINE, is a space to the
/// parsers' `trim` and not to a JSON Schema pattern's `\s`; it is named wherever `\s` is.)
const BLANK: &str = r"^[\s\u0085]*$";
/// Something other than spaces.
pub const NOT_BLANK: &str = r"[^\s\u0085]";
/// A Japanese number with its area code (090…, 03…) or an international one (+81…): the
/// parser also takes hyphens, spaces and full-width digits.
const PHONE: &str = r"^(\+[0-9]{8,15}|0[0-9]{9,10})$";
/// One `@`, a dot in the domain, no spaces.
const EMAIL: &str = r"^[^@\s\u0085]+@[^@\s\u0085.]+(\.[^@\s\u0085.]+)+$";
/// Check-in times, HH:MM, up to six a day, comma-separated.
const TIMES: &str =
    r"^\s*([01]?[0-9]|2[0-3]):[0-5][0-9]\s*(,\s*([01]?[0-9]|2[0-3]):[0-5][0-9]\s*){0,5}$";

/// Says in words what a pattern leaves out, unless the field has a description already.
fn describe(s: &mut Schema, text: &str) {
    if s.get("description").is_none() {
        s.insert("description".into(), text.into());
    }
}

const PHONE_WORDS: &str = "A phone number with its area code (09012345678) or an international one \
     (+819012345678). The pattern gives the digits alone; hyphens, spaces, brackets and \
     full-width digits are accepted too (090-1234-5678).";

fn either_blank_or(s: &mut Schema, form: serde_json::Value) {
    s.insert("anyOf".into(), json!([{ "pattern": BLANK }, form]));
}

/// A date, YYYY-MM-DD, required.
pub fn date(s: &mut Schema) {
    s.insert("format".into(), "date".into());
    s.remove("default");
}

/// A date, YYYY-MM-DD, or empty.
pub fn date_or_blank(s: &mut Schema) {
    either_blank_or(s, json!({ "format": "date" }));
}

/// Text that is required: something other than spaces.
pub fn not_blank(s: &mut Schema) {
    s.insert("pattern".into(), NOT_BLANK.into());
    s.remove("default");
}

/// A phone number, required.
pub fn phone(s: &mut Schema) {
    s.insert("pattern".into(), PHONE.into());
    s.remove("default");
    describe(s, PHONE_WORDS);
}

/// A phone number, or empty.
pub fn phone_or_blank(s: &mut Schema) {
    either_blank_or(s, json!({ "pattern": PHONE }));
    describe(s, PHONE_WORDS);
}

/// An e-mail address, or empty.
pub fn email_or_blank(s: &mut Schema) {
    s.insert("maxLength".into(), 254.into());
    either_blank_or(s, json!({ "pattern": EMAIL }));
}

/// Check-in times, or empty.
pub fn times_or_blank(s: &mut Schema) {
    either_blank_or(s, json!({ "pattern": TIMES }));
    describe(
        s,
        "Local times of the daily check-ins, HH:MM, comma-separated for more than one a day (\"09:00,17:00\"); empty: unchanged or the default.",
    );
}

/// The choices of sex [性別].
pub const SEXES: &[&str] = &["male", "female", "other", "unknown"];

/// A JIS prefecture code, "01" (Hokkaido) to "47" (Okinawa), or empty.
pub fn prefecture_or_blank(s: &mut Schema) {
    let codes: Vec<String> = (1..=47).map(|n| format!("{n:02}")).collect();
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    choice_or_blank(s, &codes);
}

/// One of `options`, required.
pub fn choice(s: &mut Schema, options: &[&str]) {
    s.insert("enum".into(), json!(options));
    s.remove("default");
}

/// One of `options`, or empty (not known, or the default).
pub fn choice_or_blank(s: &mut Schema, options: &[&str]) {
    let all: Vec<&str> = std::iter::once("").chain(options.iter().copied()).collect();
    s.insert("enum".into(), json!(all));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The patterns say what the parsers take: each example is accepted by both or refused
    /// by the pattern (the schema may be stricter than the parser, never looser).
    #[test]
    fn the_patterns_are_no_looser_than_the_parsers() {
        let re = |p: &str| regex::Regex::new(p).unwrap();
        for v in [
            "09012345678",
            "+819012345678",
            "0312345678",
            "090-1234-5678",
            "12345",
            "+81 90",
            "0901234567x",
        ] {
            if re(PHONE).is_match(v) {
                assert!(crate::domain::Phone::parse("phone", v).is_ok(), "{v}");
            }
        }
        for v in [
            "a@b.jp",
            "a@b",
            "a b@c.jp",
            "@b.jp",
            "a@.b.jp",
            "a@b.jp.",
            "x@y.co.jp",
        ] {
            if re(EMAIL).is_match(v) {
                assert!(crate::domain::Email::parse("email", v).is_ok(), "{v}");
            }
        }
        let mut c = crate::error::Collect::default();
        for v in [
            "09:00",
            "9:00,17:30",
            "23:59",
            "24:00",
            "09:60",
            "09:00,",
            "1:1",
            " 08:00 , 20:00 ",
        ] {
            if re(TIMES).is_match(v) {
                crate::store::persons::parse_slots(&mut c, v);
                assert!(c.0.is_empty(), "{v}: {:?}", c.0);
            }
        }
        assert!(re(PHONE).is_match("09012345678") && re(EMAIL).is_match("a@b.jp"));
        assert!(re(TIMES).is_match("09:00,17:30") && !re(TIMES).is_match("24:00"));
    }
}
