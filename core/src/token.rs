//! Signed, expiring, single-person links: `{checkin_id}.{expires_unix}.{mac}` where mac is
//! HMAC-SHA256 over `v1|checkin|{checkin_id}|{expires}`, base64url. The token carries no
//! personal data; single use is enforced by the check-in's status.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the HMAC kept in a token.
const TAG_LEN: usize = 16;

#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    BadSignature,
    Expired,
}

impl LinkSigner {
    pub fn new(key: &[u8]) -> Self {
        LinkSigner { key: key.to_vec() }
    }

    fn mac(&self, purpose: &str, checkin_id: i64, expires: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("v1|{purpose}|{checkin_id}|{expires}").as_bytes());
        mac
    }

    pub fn sign(&self, checkin_id: i64, expires_unix: i64) -> String {
        self.sign_for("checkin", checkin_id, expires_unix)
    }

    /// Returns the check-in id when the signature is valid and the token has not expired.
    /// The signature is checked (in constant time) before the expiry is looked at.
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<i64, TokenError> {
        self.verify_for("checkin", token, now_unix)
    }

    /// The check-in of a link that is genuine but has expired (signature checked, expiry
    /// not): its page can still name the health centre to phone.
    pub fn verify_expired(&self, token: &str) -> Option<i64> {
        self.verify_for("checkin", token, i64::MIN).ok()
    }

    /// A token for another purpose (e.g. `login-code`): the purpose is part of the MAC, so a
    /// token made for one purpose never verifies for another.
    pub fn sign_for(&self, purpose: &str, checkin_id: i64, expires_unix: i64) -> String {
        let tag = self
            .mac(purpose, checkin_id, expires_unix)
            .finalize()
            .into_bytes();
        // 128 of the 256 bits: plenty against forgery, and it keeps SMS bodies short.
        format!(
            "{checkin_id}.{expires_unix}.{}",
            URL_SAFE_NO_PAD.encode(&tag[..TAG_LEN])
        )
    }

    pub fn verify_for(&self, purpose: &str, token: &str, now_unix: i64) -> Result<i64, TokenError> {
        let mut parts = token.splitn(3, '.');
        let (Some(id), Some(exp), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Malformed);
        };
        // Only the canonical form we issue: no leading zeros or signs (`0{id}`, `+{id}`).
        let id: i64 = id.parse().map_err(|_| TokenError::Malformed)?;
        let exp: i64 = exp.parse().map_err(|_| TokenError::Malformed)?;
        if token.rsplit_once('.').map(|(head, _)| head) != Some(format!("{id}.{exp}").as_str()) {
            return Err(TokenError::Malformed);
        }
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        if tag.len() != TAG_LEN {
            return Err(TokenError::BadSignature);
        }
        self.mac(purpose, id, exp)
            .verify_truncated_left(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        if now_unix > exp {
            return Err(TokenError::Expired);
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_canonical_form_is_accepted() {
        let s = super::LinkSigner::new(b"0123456789abcdef0123456789abcdef");
        let good = s.sign(42, 2_000_000_000);
        assert_eq!(s.verify(&good, 1_000_000_000), Ok(42));
        for bad in [format!("0{good}"), format!("+{good}")] {
            assert_eq!(
                s.verify(&bad, 1_000_000_000),
                Err(super::TokenError::Malformed),
                "{bad}"
            );
        }
    }

    use super::*;

    #[test]
    fn round_trip_expiry_and_tamper() {
        let s = LinkSigner::new(b"k");
        let t = s.sign(42, 1000);
        assert_eq!(s.verify(&t, 999), Ok(42));
        assert_eq!(s.verify(&t, 1001), Err(TokenError::Expired));
        let tampered = t.replacen("42.", "43.", 1);
        assert_eq!(s.verify(&tampered, 999), Err(TokenError::BadSignature));
        let longer = t.replacen(".1000.", ".2000.", 1);
        assert_eq!(s.verify(&longer, 999), Err(TokenError::BadSignature));
        assert_eq!(
            LinkSigner::new(b"other").verify(&t, 999),
            Err(TokenError::BadSignature)
        );
        assert_eq!(s.verify("garbage", 0), Err(TokenError::Malformed));
        let other = s.sign_for("login-code", 42, 1000);
        assert_eq!(
            s.verify(&other, 999),
            Err(TokenError::BadSignature),
            "purposes do not mix"
        );
        assert_eq!(s.verify_for("login-code", &other, 999), Ok(42));
        // An expired genuine link still names its check-in (for the centre's number);
        // a forged or other-purpose one does not.
        assert_eq!(s.verify_expired(&t), Some(42));
        assert_eq!(s.verify_expired(&tampered), None);
        assert_eq!(s.verify_expired(&other), None);
    }
}
