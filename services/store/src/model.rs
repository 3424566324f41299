//! Records the store holds. Plain data so every backend can encode them.
//!
//! The serde derives are the Redis store's encoding (JSON, field names as
//! written here): a field added later needs `#[serde(default)]` so records
//! written by an older version still decode.

use std::borrow::Cow;
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

/// One RFC 6665 subscription as the store keeps it: enough to rebuild the
/// dialog and go on notifying after a restart or a change of owner, with
/// the NOTIFY CSeq and watcher-info version so neither goes backwards.
///
/// Presence holds one of these per subscription, so the dialog's strings
/// (watcher, Call-ID, tags, URIs, target, flow token, ...) live in one
/// allocation with their end offsets beside it, read through accessors;
/// what changes (remote target and flow on a refresh) is set through
/// setters that rebuild it. The JSON encoding (the Redis store's) is the
/// plain object with one member per field, as before the packing.
#[derive(Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    pub id: u64,
    /// `presence` or `presence.winfo`. A `Cow` so the names presence uses
    /// cost no allocation per subscription (decoded records own theirs).
    pub package: Cow<'static, str>,
    /// The packed strings, in [`Text`] order.
    text: Box<str>,
    /// End of each [`Text`] field in `text` (each starts where the one
    /// before ends).
    ends: [u32; TEXT_FIELDS],
    /// Whether the optional fields (`event_id`, `watcher_display`) are set.
    has_event_id: bool,
    has_display: bool,
    /// `remote_uri` is `<watcher>;tag=remote_tag` and is not stored twice
    /// (the usual From of a SUBSCRIBE).
    remote_uri_derived: bool,
    /// Whether `flow` is a connection (the subscription ends with it).
    pub connection: bool,
    /// Waiting for authorization (RFC 6665 pending).
    pub pending: bool,
    pub route_set: Vec<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// Last RFC 3857 event of this watcher (a `Cow` like `package`).
    pub last_event: Cow<'static, str>,
    /// Last NOTIFY CSeq sent in this dialog.
    pub notify_cseq: u32,
    /// Next watcher-info document version (presence.winfo only).
    pub winfo_version: u32,
    /// xcap-diff only: the document selectors (or directories, ending in
    /// `/`) the subscriber asked for; empty means all its documents
    /// (RFC 5875 §4.1). Absent in records written before it existed.
    pub watched: Vec<String>,
}

/// The packed string fields of a [`SubscriptionRecord`], in buffer order.
#[derive(Clone, Copy)]
enum Text {
    EventId,
    Watcher,
    WatcherDisplay,
    CallId,
    RemoteTag,
    LocalTag,
    RemoteUri,
    LocalUri,
    RemoteTarget,
    Flow,
}
const TEXT_FIELDS: usize = 10;

/// What a [`SubscriptionRecord`] is made of: its strings borrowed (copied
/// once, into the record's one buffer), everything else as stored.
#[derive(Debug, Clone)]
pub struct SubscriptionFields<'a> {
    pub id: u64,
    pub package: Cow<'static, str>,
    pub event_id: Option<&'a str>,
    /// The watcher's AOR.
    pub watcher: &'a str,
    pub watcher_display: Option<&'a str>,
    pub call_id: &'a str,
    pub remote_tag: &'a str,
    pub local_tag: &'a str,
    /// From of the SUBSCRIBE (the watcher, with its tag).
    pub remote_uri: &'a str,
    /// To of the SUBSCRIBE without tag (the presentity).
    pub local_uri: &'a str,
    pub remote_target: &'a str,
    pub route_set: Vec<String>,
    pub flow: &'a str,
    pub connection: bool,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub pending: bool,
    pub last_event: Cow<'static, str>,
    pub notify_cseq: u32,
    pub winfo_version: u32,
    pub watched: Vec<String>,
}

impl<'a> From<SubscriptionFields<'a>> for SubscriptionRecord {
    fn from(f: SubscriptionFields<'a>) -> SubscriptionRecord {
        let mut record = SubscriptionRecord {
            id: f.id,
            package: f.package,
            text: Box::from(""),
            ends: [0; TEXT_FIELDS],
            has_event_id: f.event_id.is_some(),
            has_display: f.watcher_display.is_some(),
            remote_uri_derived: false,
            connection: f.connection,
            pending: f.pending,
            route_set: f.route_set,
            created_at: f.created_at,
            expires_at: f.expires_at,
            last_event: f.last_event,
            notify_cseq: f.notify_cseq,
            winfo_version: f.winfo_version,
            watched: f.watched,
        };
        record.pack([
            f.event_id.unwrap_or(""),
            f.watcher,
            f.watcher_display.unwrap_or(""),
            f.call_id,
            f.remote_tag,
            f.local_tag,
            f.remote_uri,
            f.local_uri,
            f.remote_target,
            f.flow,
        ]);
        record
    }
}

impl SubscriptionRecord {
    /// Rebuilds the buffer from `parts` (in [`Text`] order).
    fn pack(&mut self, mut parts: [&str; TEXT_FIELDS]) {
        let (watcher, tag) = (
            parts[Text::Watcher as usize],
            parts[Text::RemoteTag as usize],
        );
        self.remote_uri_derived = parts[Text::RemoteUri as usize]
            .strip_prefix('<')
            .and_then(|u| u.strip_prefix(watcher))
            .and_then(|u| u.strip_prefix(">;tag="))
            == Some(tag);
        if self.remote_uri_derived {
            parts[Text::RemoteUri as usize] = "";
        }
        let mut text = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        for (end, part) in self.ends.iter_mut().zip(parts) {
            text.push_str(part);
            // Offsets past 4 GiB cannot occur: SIP messages are far smaller.
            *end = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        self.text = text.into_boxed_str();
    }

    fn get(&self, field: Text) -> &str {
        let i = field as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// Every field's text as it reads (a derived one spelled out), to
    /// pack again with one of them changed.
    fn parts(&self) -> [String; TEXT_FIELDS] {
        use Text::*;
        [
            EventId,
            Watcher,
            WatcherDisplay,
            CallId,
            RemoteTag,
            LocalTag,
            RemoteUri,
            LocalUri,
            RemoteTarget,
            Flow,
        ]
        .map(|f| match f {
            RemoteUri => self.remote_uri().into_owned(),
            f => self.get(f).to_string(),
        })
    }

    pub fn event_id(&self) -> Option<&str> {
        self.has_event_id.then(|| self.get(Text::EventId))
    }
    /// The watcher's AOR.
    pub fn watcher(&self) -> &str {
        self.get(Text::Watcher)
    }
    pub fn watcher_display(&self) -> Option<&str> {
        self.has_display.then(|| self.get(Text::WatcherDisplay))
    }
    pub fn call_id(&self) -> &str {
        self.get(Text::CallId)
    }
    pub fn remote_tag(&self) -> &str {
        self.get(Text::RemoteTag)
    }
    pub fn local_tag(&self) -> &str {
        self.get(Text::LocalTag)
    }
    /// From of the SUBSCRIBE (the watcher, with its tag).
    pub fn remote_uri(&self) -> Cow<'_, str> {
        if self.remote_uri_derived {
            Cow::Owned(format!("<{}>;tag={}", self.watcher(), self.remote_tag()))
        } else {
            Cow::Borrowed(self.get(Text::RemoteUri))
        }
    }
    /// To of the SUBSCRIBE without tag (the presentity).
    pub fn local_uri(&self) -> &str {
        self.get(Text::LocalUri)
    }
    pub fn remote_target(&self) -> &str {
        self.get(Text::RemoteTarget)
    }
    /// The flow NOTIFYs go over, as its token's text.
    pub fn flow(&self) -> &str {
        self.get(Text::Flow)
    }
    pub fn flow_token(&self) -> FlowToken {
        FlowToken(self.flow().to_string())
    }

    /// A target refresh (RFC 6665 §4.1.2.1).
    pub fn set_remote_target(&mut self, target: &str) {
        let mut parts = self.parts();
        parts[Text::RemoteTarget as usize] = target.to_string();
        self.pack(parts.each_ref().map(String::as_str));
    }

    /// The watcher came back over another flow.
    pub fn set_flow(&mut self, flow: &FlowToken) {
        let mut parts = self.parts();
        parts[Text::Flow as usize] = flow.0.clone();
        self.pack(parts.each_ref().map(String::as_str));
    }
}

impl fmt::Debug for SubscriptionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionRecord")
            .field("id", &self.id)
            .field("package", &self.package)
            .field("event_id", &self.event_id())
            .field("watcher", &self.watcher())
            .field("watcher_display", &self.watcher_display())
            .field("call_id", &self.call_id())
            .field("remote_tag", &self.remote_tag())
            .field("local_tag", &self.local_tag())
            .field("remote_uri", &self.remote_uri())
            .field("local_uri", &self.local_uri())
            .field("remote_target", &self.remote_target())
            .field("route_set", &self.route_set)
            .field("flow", &self.flow())
            .field("connection", &self.connection)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("pending", &self.pending)
            .field("last_event", &self.last_event)
            .field("notify_cseq", &self.notify_cseq)
            .field("winfo_version", &self.winfo_version)
            .field("watched", &self.watched)
            .finish()
    }
}

/// The JSON form of a [`SubscriptionRecord`] (the Redis store's encoding):
/// one member per field, in this order, as records were written before the
/// strings were packed. Written borrowed, read owned.
mod subscription_json {
    use std::borrow::Cow;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{SubscriptionFields, SubscriptionRecord, UnixTime};

    #[derive(Serialize)]
    struct Out<'a> {
        id: u64,
        package: &'a str,
        event_id: Option<&'a str>,
        watcher: &'a str,
        watcher_display: Option<&'a str>,
        call_id: &'a str,
        remote_tag: &'a str,
        local_tag: &'a str,
        remote_uri: Cow<'a, str>,
        local_uri: &'a str,
        remote_target: &'a str,
        route_set: &'a [String],
        flow: &'a str,
        connection: bool,
        created_at: UnixTime,
        expires_at: UnixTime,
        pending: bool,
        last_event: &'a str,
        notify_cseq: u32,
        winfo_version: u32,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        watched: &'a [String],
    }

    #[derive(Deserialize)]
    struct In {
        id: u64,
        package: String,
        event_id: Option<String>,
        watcher: String,
        watcher_display: Option<String>,
        call_id: String,
        remote_tag: String,
        local_tag: String,
        remote_uri: String,
        local_uri: String,
        remote_target: String,
        route_set: Vec<String>,
        flow: String,
        connection: bool,
        created_at: UnixTime,
        expires_at: UnixTime,
        pending: bool,
        last_event: String,
        notify_cseq: u32,
        winfo_version: u32,
        #[serde(default)]
        watched: Vec<String>,
    }

    impl Serialize for SubscriptionRecord {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            Out {
                id: self.id,
                package: &self.package,
                event_id: self.event_id(),
                watcher: self.watcher(),
                watcher_display: self.watcher_display(),
                call_id: self.call_id(),
                remote_tag: self.remote_tag(),
                local_tag: self.local_tag(),
                remote_uri: self.remote_uri(),
                local_uri: self.local_uri(),
                remote_target: self.remote_target(),
                route_set: &self.route_set,
                flow: self.flow(),
                connection: self.connection,
                created_at: self.created_at,
                expires_at: self.expires_at,
                pending: self.pending,
                last_event: &self.last_event,
                notify_cseq: self.notify_cseq,
                winfo_version: self.winfo_version,
                watched: &self.watched,
            }
            .serialize(s)
        }
    }

    impl<'de> Deserialize<'de> for SubscriptionRecord {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let r = In::deserialize(d)?;
            Ok(SubscriptionFields {
                id: r.id,
                package: Cow::Owned(r.package),
                event_id: r.event_id.as_deref(),
                watcher: &r.watcher,
                watcher_display: r.watcher_display.as_deref(),
                call_id: &r.call_id,
                remote_tag: &r.remote_tag,
                local_tag: &r.local_tag,
                remote_uri: &r.remote_uri,
                local_uri: &r.local_uri,
                remote_target: &r.remote_target,
                route_set: r.route_set,
                flow: &r.flow,
                connection: r.connection,
                created_at: r.created_at,
                expires_at: r.expires_at,
                pending: r.pending,
                last_event: Cow::Owned(r.last_event),
                notify_cseq: r.notify_cseq,
                winfo_version: r.winfo_version,
                watched: r.watched,
            }
            .into())
        }
    }
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

    /// A subscription as the Redis store wrote it before the record's
    /// strings were packed (one JSON member per field): it must still
    /// decode, and encode back to the same bytes.
    const STORED_SUBSCRIPTION: &str = concat!(
        r#"{"id":7,"package":"presence","event_id":"e1","watcher":"sip:w@example.com","#,
        r#""watcher_display":"W \"x\"","call_id":"c@h","remote_tag":"r1","local_tag":"l1","#,
        r#""remote_uri":"\"W\" <sip:w@example.com>;tag=r1","local_uri":"<sip:p@example.com>","#,
        r#""remote_target":"sip:w@127.0.0.1:5070","route_set":["<sip:proxy;lr>"],"#,
        r#""flow":"udp/x","connection":false,"created_at":100,"expires_at":700,"#,
        r#""pending":true,"last_event":"subscribe","notify_cseq":3,"winfo_version":1}"#
    );

    #[test]
    fn stored_subscriptions_decode_and_encode_unchanged() {
        let r: SubscriptionRecord = serde_json::from_str(STORED_SUBSCRIPTION).unwrap();
        assert_eq!(r.id, 7);
        assert_eq!(r.package, "presence");
        assert_eq!(r.event_id(), Some("e1"));
        assert_eq!(r.watcher(), "sip:w@example.com");
        assert_eq!(r.watcher_display(), Some("W \"x\""));
        assert_eq!(r.call_id(), "c@h");
        assert_eq!(r.remote_tag(), "r1");
        assert_eq!(r.local_tag(), "l1");
        assert_eq!(r.remote_uri(), "\"W\" <sip:w@example.com>;tag=r1");
        assert_eq!(r.local_uri(), "<sip:p@example.com>");
        assert_eq!(r.remote_target(), "sip:w@127.0.0.1:5070");
        assert_eq!(r.route_set, vec!["<sip:proxy;lr>".to_string()]);
        assert_eq!(r.flow_token(), FlowToken("udp/x".into()));
        assert!(!r.connection && r.pending);
        assert_eq!((r.created_at, r.expires_at), (UnixTime(100), UnixTime(700)));
        assert_eq!(r.last_event, "subscribe");
        assert_eq!((r.notify_cseq, r.winfo_version), (3, 1));
        assert!(r.watched.is_empty());
        assert_eq!(serde_json::to_string(&r).unwrap(), STORED_SUBSCRIPTION);

        // Optional fields absent, and xcap-diff's selectors present.
        let json = STORED_SUBSCRIPTION
            .replace(r#""e1""#, "null")
            .replace(r#""W \"x\"""#, "null")
            .replace(
                r#""winfo_version":1}"#,
                r#""winfo_version":1,"watched":["a/b"]}"#,
            );
        let r: SubscriptionRecord = serde_json::from_str(&json).unwrap();
        assert_eq!((r.event_id(), r.watcher_display()), (None, None));
        assert_eq!(r.watcher(), "sip:w@example.com");
        assert_eq!(r.watched, vec!["a/b".to_string()]);
        assert_eq!(serde_json::to_string(&r).unwrap(), json);

        // The usual From (`<watcher>;tag=remote-tag`) is not kept twice
        // but reads, encodes and survives a refresh as it came.
        let json = STORED_SUBSCRIPTION.replace(r#"\"W\" <sip:w"#, "<sip:w");
        let mut r: SubscriptionRecord = serde_json::from_str(&json).unwrap();
        assert!(r.remote_uri_derived);
        assert_eq!(r.remote_uri(), "<sip:w@example.com>;tag=r1");
        assert_eq!(serde_json::to_string(&r).unwrap(), json);
        r.set_flow(&FlowToken("tcp/1".into()));
        assert_eq!(r.remote_uri(), "<sip:w@example.com>;tag=r1");
        assert_eq!((r.remote_tag(), r.flow()), ("r1", "tcp/1"));
    }

    #[test]
    fn a_refresh_changes_only_target_and_flow() {
        let mut r: SubscriptionRecord = serde_json::from_str(STORED_SUBSCRIPTION).unwrap();
        let before = r.clone();
        r.set_remote_target("sip:w@[2001:db8::1]:5071;transport=tcp");
        r.set_flow(&FlowToken("tcp/9".into()));
        assert_eq!(r.remote_target(), "sip:w@[2001:db8::1]:5071;transport=tcp");
        assert_eq!(r.flow(), "tcp/9");
        let mut back = r.clone();
        back.set_remote_target(before.remote_target());
        back.set_flow(&before.flow_token());
        assert_eq!(back, before);
        assert_eq!(r.call_id(), "c@h");
        assert_eq!(r.local_uri(), "<sip:p@example.com>");
        assert_eq!(r.watcher_display(), Some("W \"x\""));
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
