//! Stateless nonces: `base64url(issued || random || mac)` where `mac` is
//! HMAC-SHA-256 over (issued, random, realm) under a secret the edges
//! share. Any edge with the secret recognizes any edge's nonce and reads
//! its age from it, so no nonce state is shared (RFC 7616 §5.4 suggests
//! a time stamp and a private key in the nonce).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const ISSUED_LEN: usize = 8;
const RANDOM_LEN: usize = 12;
/// The MAC truncated to 128 bits: forging one is still 2^128 work.
const MAC_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceState {
    /// Ours and younger than the lifetime; `issued` in Unix seconds.
    Fresh { issued: u64 },
    /// Ours but too old: the client should retry with a new one
    /// (stale=true, RFC 7616 §3.3).
    Stale,
    /// Not minted with our secret (or not a nonce at all).
    Invalid,
}

pub(crate) struct NonceKey {
    secret: Vec<u8>,
    realm: String,
}

impl NonceKey {
    pub(crate) fn new(secret: Vec<u8>, realm: &str) -> Self {
        NonceKey {
            secret,
            realm: realm.to_string(),
        }
    }

    fn mac(&self, issued: &[u8], random: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC accepts any key length");
        mac.update(issued);
        mac.update(random);
        mac.update(self.realm.as_bytes());
        mac
    }

    pub(crate) fn mint(&self, now: u64) -> String {
        let issued = now.to_be_bytes();
        let random: [u8; RANDOM_LEN] = rand::random();
        let tag = self.mac(&issued, &random).finalize().into_bytes();
        let mut raw = Vec::with_capacity(ISSUED_LEN + RANDOM_LEN + MAC_LEN);
        raw.extend_from_slice(&issued);
        raw.extend_from_slice(&random);
        raw.extend_from_slice(&tag[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    pub(crate) fn check(&self, nonce: &str, now: u64, lifetime: u64) -> NonceState {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return NonceState::Invalid;
        };
        if raw.len() != ISSUED_LEN + RANDOM_LEN + MAC_LEN {
            return NonceState::Invalid;
        }
        let (issued, rest) = raw.split_at(ISSUED_LEN);
        let (random, tag) = rest.split_at(RANDOM_LEN);
        // Constant-time comparison of the truncated tag.
        if self.mac(issued, random).verify_truncated_left(tag).is_err() {
            return NonceState::Invalid;
        }
        let issued = u64::from_be_bytes(issued.try_into().expect("8 bytes"));
        // An edge whose clock runs ahead mints nonces from the future;
        // they count as new.
        if now.saturating_sub(issued) > lifetime {
            NonceState::Stale
        } else {
            NonceState::Fresh { issued }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_edge_with_the_secret_accepts_the_nonce() {
        let a = NonceKey::new(b"shared".to_vec(), "example.com");
        let b = NonceKey::new(b"shared".to_vec(), "example.com");
        let n = a.mint(1000);
        assert_eq!(b.check(&n, 1100, 300), NonceState::Fresh { issued: 1000 });
        assert_eq!(b.check(&n, 1301, 300), NonceState::Stale);
        assert_ne!(a.mint(1000), n, "random part");
    }

    #[test]
    fn other_secrets_realms_and_tampering_are_refused() {
        let a = NonceKey::new(b"shared".to_vec(), "example.com");
        let n = a.mint(1000);
        let other_secret = NonceKey::new(b"other".to_vec(), "example.com");
        let other_realm = NonceKey::new(b"shared".to_vec(), "example.org");
        assert_eq!(other_secret.check(&n, 1000, 300), NonceState::Invalid);
        assert_eq!(other_realm.check(&n, 1000, 300), NonceState::Invalid);
        // Moving the time stamp forward breaks the MAC.
        let mut raw = URL_SAFE_NO_PAD.decode(&n).unwrap();
        raw[7] ^= 1;
        assert_eq!(
            a.check(&URL_SAFE_NO_PAD.encode(raw), 1000, 300),
            NonceState::Invalid
        );
        assert_eq!(a.check("not a nonce", 1000, 300), NonceState::Invalid);
        assert_eq!(a.check("", 1000, 300), NonceState::Invalid);
    }
}
