//! Password rules for user-chosen passwords: long enough, not the user ID, not a known
//! breached or keyboard pattern. (Generated passwords are 16 random characters.)
use crate::Error;

/// The most common breached passwords and their obvious variants (lower-cased).
const COMMON: &[&str] = &[
    "password",
    "passw0rd",
    "p@ssword",
    "123456",
    "12345678",
    "123456789",
    "1234567890",
    "qwerty",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "iloveyou",
    "admin",
    "welcome",
    "letmein",
    "monkey",
    "dragon",
    "abc123",
    "111111",
    "000000",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "mimamori",
    "hersys",
    "hokenjo",
    "covid19",
    "corona",
    "tokyo",
    "sakura",
    "pokemon",
    "doraemon",
];

/// Checks a new password; the error says which rule and how to fix it.
pub fn check(password: &str, username: &str) -> Result<(), Error> {
    let p = password.to_lowercase();
    if password.chars().count() < 12 {
        return Err(Error::invalid(
            "password",
            "err-use-at-least-12-characters-a-few-unrelated-words",
        ));
    }
    if !username.is_empty() && p.contains(&username.to_lowercase()) {
        return Err(Error::invalid(
            "password",
            "err-do-not-put-your-user-id-in-the-password",
        ));
    }
    // What is left once the common words and the digits and symbols are taken out.
    let mut rest: String = p.chars().filter(|c| c.is_alphanumeric()).collect();
    for c in COMMON {
        rest = rest.replace(c, "");
    }
    rest.retain(|c| !c.is_ascii_digit());
    if rest.chars().count() < 6 {
        return Err(Error::invalid(
            "password",
            "err-this-is-or-is-built-on-a-commonly-breached",
        ));
    }
    let distinct: std::collections::HashSet<char> = password.chars().collect();
    if distinct.len() < 5 {
        return Err(Error::invalid(
            "password",
            "err-use-more-different-characters",
        ));
    }
    let sequential = password
        .as_bytes()
        .windows(2)
        .filter(|w| w[1] as i16 - w[0] as i16 == 1 || w[0] == w[1])
        .count();
    if sequential * 2 >= password.len() {
        return Err(Error::invalid(
            "password",
            "err-avoid-runs-like-abcdef-or-111111",
        ));
    }
    // Keyboard walks (`1qaz2wsx3edc`), dates, names and l33t spellings: zxcvbn estimates how
    // many guesses a cracker needs; under 10^8 (score 3 of 4, "safely unguessable" against an
    // online attack and a slow hash) the password is refused.
    let strength = zxcvbn::zxcvbn(password, &[username, "mimamori", "hersys"]);
    if strength.score() < zxcvbn::Score::Three {
        let pattern = strength.sequence().iter().any(|m| {
            matches!(
                m.pattern,
                zxcvbn::matching::patterns::MatchPattern::Spatial(_)
            )
        });
        return Err(Error::invalid(
            "password",
            if pattern {
                "this follows a line of keys on the keyboard and is guessed quickly; a few unrelated words make a good one"
            } else {
                "this is guessed quickly (common words, names, dates or substitutions); a few unrelated words make a good one"
            },
        ));
    }
    Ok(())
}

/// RFC 4648 base32 without padding, as authenticator apps expect secrets.
pub fn base32(bytes: &[u8]) -> String {
    const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for b in bytes {
        buf = (buf << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            out.push(A[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(A[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(check("short", "u").is_err());
        assert!(check("Password123456!", "u").is_err(), "breached base word");
        assert!(check("nurse-is-my-login-x", "nurse").is_err());
        assert!(check("aaaaaaaaaaaaaaa", "u").is_err());
        assert!(check("abcdefghijklmnop", "u").is_err());
        assert!(check("kawa sakana hikari 7", "u").is_ok());
        assert!(check("1qaz2wsx3edc", "u").is_err(), "keyboard columns");
        assert!(check("qazwsxedcrfvtgb", "u").is_err(), "keyboard columns");
        assert!(check("zaq12wsxcde34rfv", "u").is_err(), "keyboard columns");
        assert!(check("correct horse battery staple", "nurse").is_ok());
    }

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(&[0u8; 20]).len(), 32);
    }
}
