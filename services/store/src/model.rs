//! Records the store holds. Plain data so every backend can encode them.
//!
//! The serde derives are the Redis store's encoding (JSON, field names as
//! written here): a field added later needs `#[serde(default)]` so records
//! written by an older version still decode.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch. Absolute times survive a restart and mean
/// the same on every node; the store compares them, never a local clock.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(pub u64);

impl UnixTime {
    pub fn now() -> UnixTime {
        UnixTime(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    }
    pub fn plus_secs(self, secs: u64) -> UnixTime {
        UnixTime(self.0.saturating_add(secs))
    }
    /// Seconds from `self` until `later` (0 if `later` is past).
    pub fn secs_until(self, later: UnixTime) -> u64 {
        later.0.saturating_sub(self.0)
    }
}

/// Names the transport flow a request arrived on, so requests to that
/// client go back the same way (RFC 5626 §5.3 style). Minted and read by
/// the edge only; opaque to everyone else.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FlowToken(pub String);

/// Looked up by its text (the token's `Hash` and `Eq` are its string's).
impl std::borrow::Borrow<str> for FlowToken {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FlowToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One registered contact of an AOR (RFC 3261 §10.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The Contact URI as registered (compared per RFC 3261 §19.1.4 by
    /// the registrar, stored verbatim so it is used verbatim).
    pub contact: String,
    pub expires_at: UnixTime,
    /// q in thousandths (1000 = 1.0), if the client gave one.
    pub q: Option<u16>,
    pub call_id: String,
    pub cseq: u32,
    /// RFC 5626 `+sip.instance`, quoted form as received without quotes.
    pub instance: Option<String>,
    /// RFC 5626 `reg-id`.
    pub reg_id: Option<u32>,
    /// The flow the REGISTER came over.
    pub flow: FlowToken,
}

/// Identifies one queued message within its AOR's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub u64);

/// A page-mode message waiting for its recipient (RFC 3428 store and
/// forward). Headers are kept as name/value strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Assigned by the store on enqueue (ignored on input).
    pub id: MessageId,
    pub received_at: UnixTime,
    pub expires_at: UnixTime,
    /// From header value of the original request.
    pub from: String,
    /// To header value of the original request.
    pub to: String,
    pub content_type: Option<String>,
    /// End-to-end headers worth carrying (Subject, Date, ...).
    pub headers: Vec<(String, String)>,
    #[serde(with = "body_text")]
    pub body: Vec<u8>,
}

/// One RFC 3903 publication as the store keeps it: the PIDF body as
/// received (re-parsed on load), with what orders and ends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicationRecord {
    pub etag: String,
    #[serde(with = "body_text")]
    pub body: Vec<u8>,
    /// Arrival order within the presentity (newest wins composition).
    pub order: u64,
    pub expires_at: UnixTime,
    /// The connection it came over, when it should end with it.
    pub flow: Option<FlowToken>,
}

/// Digest credentials of one user in one realm (RFC 3261 §22.4, RFC 8760,
/// RFC 7616 §3.4.2): the HA1 hashes `H(username ":" realm ":" password)`,
/// one per algorithm, lower-case hex. The password itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub realm: String,
    /// The digest `username` the client sends (the AOR's user part).
    pub username: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

/// Bodies are text almost always (PIDF, text/plain): as a JSON string they
/// cost their length, where a JSON array of numbers costs three to four
/// times it. A body that is not UTF-8 is kept as an array of byte values.
mod body_text {
    use std::fmt;

    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(body) {
            Ok(text) => s.serialize_str(text),
            Err(_) => s.collect_seq(body),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_any(BodyVisitor)
    }

    struct BodyVisitor;

    impl<'de> Visitor<'de> for BodyVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an array of bytes")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
            Ok(v.as_bytes().to_vec())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &[u8]) -> StoredMessage {
        StoredMessage {
            id: MessageId(3),
            received_at: UnixTime(1),
            expires_at: UnixTime(2),
            from: "<sip:a@x>;tag=1".into(),
            to: "<sip:b@x>".into(),
            content_type: None,
            headers: vec![("Subject".into(), "hi".into())],
            body: body.to_vec(),
        }
    }

    #[test]
    fn text_bodies_encode_as_strings_and_others_as_bytes() {
        let text = message("grüß \"dich\"".as_bytes());
        let json = serde_json::to_string(&text).unwrap();
        assert!(json.contains(r#""body":"grüß \"dich\"""#), "{json}");
        assert_eq!(serde_json::from_str::<StoredMessage>(&json).unwrap(), text);

        let binary = message(&[0xff, 0x00, 0x41]);
        let json = serde_json::to_string(&binary).unwrap();
        assert!(json.contains(r#""body":[255,0,65]"#), "{json}");
        assert_eq!(
            serde_json::from_str::<StoredMessage>(&json).unwrap(),
            binary
        );
    }
}
