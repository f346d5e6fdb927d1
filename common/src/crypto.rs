//! Encryption of secrets at rest (LWA tokens) with XChaCha20-Poly1305, plus hashing and
//! random-token helpers for refresh tokens, API keys and idempotency hashes.
//!
//! Ciphertext layout: version byte `1` || 24-byte random nonce || ciphertext + 16-byte tag.
//! The version byte is also bound as associated data.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// Why a key could not be read or a value not decrypted. Never holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the encryption key is not valid base64 (standard or URL-safe)")]
    KeyNotBase64,
    #[error("the encryption key must be {KEY_LEN} bytes, got {0} bytes")]
    KeyLength(usize),
    #[error("ciphertext too short ({0} bytes)")]
    TooShort(usize),
    #[error("unsupported ciphertext version {0}")]
    Version(u8),
    #[error("decryption failed: wrong key or tampered data")]
    Decrypt,
    #[error("decrypted value is not UTF-8")]
    NotUtf8,
}

/// An authenticated cipher under one 32-byte key (and, during a key rotation, the
/// previous key, which only decrypts). `Debug` never shows a key.
#[derive(Clone)]
pub struct Cipher {
    aead: XChaCha20Poly1305,
    previous: Option<XChaCha20Poly1305>,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher(XChaCha20-Poly1305, key redacted)")
    }
}

impl Cipher {
    /// Reads a 32-byte key in standard or URL-safe base64, padded or not.
    pub fn from_base64_key(key: &str) -> Result<Self, CryptoError> {
        let key = key.trim();
        let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(key).ok())
            .ok_or(CryptoError::KeyNotBase64)?;
        Self::from_key_bytes(&bytes)
    }

    /// Uses 32 raw key bytes.
    pub fn from_key_bytes(key: &[u8]) -> Result<Self, CryptoError> {
        let aead = XChaCha20Poly1305::new_from_slice(key)
            .map_err(|_| CryptoError::KeyLength(key.len()))?;
        Ok(Self {
            aead,
            previous: None,
        })
    }

    /// This cipher, decrypting also what `previous` encrypted (a rotation under way).
    pub fn with_previous(mut self, previous: Cipher) -> Self {
        self.previous = Some(previous.aead);
        self
    }

    /// Whether `data` is encrypted under the current key (a rotation is done with it).
    pub fn is_current(&self, data: &[u8]) -> bool {
        open(&self.aead, data).is_ok()
    }

    /// Encrypts under a fresh random nonce: two encryptions of one value differ.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: &[VERSION],
        };
        // XChaCha20-Poly1305 only fails for messages over ~256 GiB, which cannot reach here.
        let sealed = self
            .aead
            .encrypt(XNonce::from_slice(&nonce), payload)
            .expect("XChaCha20-Poly1305 encryption cannot fail below 256 GiB");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts what [`Cipher::encrypt`] produced (under the current key, or the previous
    /// one); any change, or another key, is an error.
    pub fn decrypt(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match (open(&self.aead, data), &self.previous) {
            (Err(CryptoError::Decrypt), Some(previous)) => open(previous, data),
            (result, _) => result,
        }
    }

    pub fn encrypt_str(&self, plaintext: &str) -> Vec<u8> {
        self.encrypt(plaintext.as_bytes())
    }

    pub fn decrypt_str(&self, data: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(self.decrypt(data)?).map_err(|_| CryptoError::NotUtf8)
    }
}

fn open(aead: &XChaCha20Poly1305, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if data.len() < 1 + NONCE_LEN + TAG_LEN {
        return Err(CryptoError::TooShort(data.len()));
    }
    if data[0] != VERSION {
        return Err(CryptoError::Version(data[0]));
    }
    let (nonce, sealed) = data[1..].split_at(NONCE_LEN);
    let payload = Payload {
        msg: sealed,
        aad: &[VERSION],
    };
    aead.decrypt(XNonce::from_slice(nonce), payload)
        .map_err(|_| CryptoError::Decrypt)
}

/// An argon2id hash (default parameters, a random salt) of a password, in the PHC string
/// form stored in `users.password_hash`. Slow on purpose: call it off the async threads.
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    use argon2::PasswordHasher;
    let salt = argon2::password_hash::SaltString::generate(&mut rand::rngs::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| CryptoError::Decrypt)
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `bytes` random bytes from the OS-seeded CSPRNG, URL-safe base64 without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_reads_both_keys_and_writes_the_new_one() {
        let (old, new) = (cipher_of(1), cipher_of(2));
        let sealed_old = old.encrypt(b"token");
        let rotating = cipher_of(2).with_previous(cipher_of(1));
        assert_eq!(rotating.decrypt(&sealed_old).unwrap(), b"token");
        assert!(!rotating.is_current(&sealed_old));
        let sealed_new = rotating.encrypt(b"token");
        assert!(rotating.is_current(&sealed_new));
        assert_eq!(new.decrypt(&sealed_new).unwrap(), b"token");
        assert!(new.decrypt(&sealed_old).is_err(), "the new key alone");
        assert!(
            cipher_of(3)
                .with_previous(cipher_of(4))
                .decrypt(&sealed_old)
                .is_err()
        );
    }

    fn cipher_of(b: u8) -> Cipher {
        Cipher::from_key_bytes(&[b; 32]).unwrap()
    }

    fn key_b64(byte: u8) -> String {
        STANDARD.encode([byte; KEY_LEN])
    }

    fn cipher() -> Cipher {
        Cipher::from_base64_key(&key_b64(7)).unwrap()
    }

    #[test]
    fn round_trip() {
        let c = cipher();
        for msg in [&b""[..], b"Atzr|refresh", &[0u8, 255, 1, 2][..]] {
            assert_eq!(c.decrypt(&c.encrypt(msg)).unwrap(), msg);
        }
        assert_eq!(c.decrypt_str(&c.encrypt_str("héllo")).unwrap(), "héllo");
        let ct = c.encrypt(b"x");
        assert_eq!(ct[0], VERSION);
        assert_eq!(ct.len(), 1 + NONCE_LEN + 1 + TAG_LEN);
    }

    #[test]
    fn encryptions_differ() {
        let c = cipher();
        assert_ne!(c.encrypt(b"same"), c.encrypt(b"same"));
    }

    #[test]
    fn any_flipped_bit_fails() {
        let c = cipher();
        let ct = c.encrypt(b"secret value");
        for i in 0..ct.len() {
            for bit in 0..8 {
                let mut bad = ct.clone();
                bad[i] ^= 1 << bit;
                assert!(c.decrypt(&bad).is_err(), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn wrong_key_and_short_input_fail() {
        let ct = cipher().encrypt(b"secret");
        let other = Cipher::from_base64_key(&key_b64(8)).unwrap();
        assert_eq!(other.decrypt(&ct), Err(CryptoError::Decrypt));
        for n in 0..(1 + NONCE_LEN + TAG_LEN) {
            assert!(cipher().decrypt(&ct[..n.min(ct.len())]).is_err());
        }
        assert!(
            cipher()
                .decrypt_str(&cipher().encrypt(&[0xff, 0xfe]))
                .is_err()
        );
    }

    #[test]
    fn key_formats() {
        let raw: Vec<u8> = (0..32u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(250))
            .collect();
        let msg = cipher_from(&STANDARD.encode(&raw)).encrypt(b"m");
        for engine in [STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            let c = cipher_from(&format!(" {}\n", engine.encode(&raw)));
            assert_eq!(c.decrypt(&msg).unwrap(), b"m");
        }
        let err = Cipher::from_base64_key(&STANDARD.encode([1u8; 16])).unwrap_err();
        assert_eq!(err, CryptoError::KeyLength(16));
        assert!(err.to_string().contains("16"));
        assert_eq!(
            Cipher::from_base64_key("not base64 !!").unwrap_err(),
            CryptoError::KeyNotBase64
        );
    }

    fn cipher_from(k: &str) -> Cipher {
        Cipher::from_base64_key(k).unwrap()
    }

    #[test]
    fn debug_hides_key() {
        let dbg = format!("{:?}", cipher());
        assert!(!dbg.contains(&key_b64(7)));
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn helpers() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let t = random_token(32);
        assert_eq!(t.len(), 43);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(random_token(32), random_token(32));
    }
}
