//! Standard Webhooks signing (<https://www.standardwebhooks.com>): secrets `whsec_` +
//! base64 of random bytes; `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{webhook-id}.{webhook-timestamp}.{body}">`, several signatures space-separated (during a
//! secret rotation, one per secret).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The prefix of a secret's text.
pub const PREFIX: &str = "whsec_";

/// A signing secret (its key bytes; never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A new secret of 24 random bytes.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 24];
        rand::thread_rng().fill_bytes(&mut key);
        Self(key)
    }

    /// Reads `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let b64 = text
            .strip_prefix(PREFIX)
            .ok_or_else(|| format!("a secret begins with {PREFIX}"))?;
        let key = STANDARD
            .decode(b64)
            .map_err(|_| "a secret is whsec_ and base64".to_string())?;
        if key.len() < 24 || key.len() > 64 {
            return Err("a secret's key is 24 to 64 bytes".into());
        }
        Ok(Self(key))
    }

    /// The secret as a client sees it once, `whsec_<base64>`.
    pub fn text(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `v1,<signature>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn signature_header(secrets: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_example_signs_as_published() {
        // The example of the Standard Webhooks specification.
        let s = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            s.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_round_trip_and_refuse_bad_text() {
        let s = Secret::generate();
        assert!(s.text().starts_with(PREFIX));
        assert_eq!(Secret::parse(&s.text()).unwrap(), s);
        assert_ne!(Secret::generate(), s);
        for bad in ["", "whsec_", "whsec_!!", "sk_abc", "whsec_YWJj"] {
            assert!(Secret::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(format!("{s:?}"), "Secret(…)");
    }

    #[test]
    fn a_rotation_sends_both_signatures() {
        let (a, b) = (Secret::generate(), Secret::generate());
        let h = signature_header(&[b.clone(), a.clone()], "id", 1, b"{}");
        let parts: Vec<&str> = h.split(' ').collect();
        assert_eq!(parts, [b.sign("id", 1, b"{}"), a.sign("id", 1, b"{}")]);
    }
}
