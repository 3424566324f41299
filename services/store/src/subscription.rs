//! The stored image of one RFC 6665 subscription.
//!
//! Presence holds one of these per held subscription, so its layout is
//! what a held subscription costs: every string (the dialog's, the route
//! set, xcap-diff's selectors, and a package or event name Herald does not
//! know) lives in one buffer with 16-bit end offsets beside it, and the
//! names presence uses are one-byte codes. The scalars, the offsets and the
//! buffer's pointer come to 80 bytes, so the record behind its `Arc` takes
//! one 96-byte allocation and the text one more (docs/benchmarks.md,
//! "Memory per subscription").

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{FlowToken, UnixTime};

/// A subscription that cannot be held: its strings together are longer
/// than a record's 16-bit offsets reach (64 KiB; far more than one SIP
/// request carries), or a list entry (a route, an xcap-diff selector)
/// holds a line break, which the packed text uses as its separator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("subscription record over 64 KiB of text, or a list entry with a line break")]
pub struct RecordTooLarge;

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
    /// The package name when it has no code (empty otherwise).
    Package,
    /// The last watcher-info event when it has no code (empty otherwise).
    LastEvent,
    /// Each route followed by `\n`.
    RouteSet,
    /// Each selector followed by `\n`.
    Watched,
}
const TEXT_FIELDS: usize = 14;

/// Event packages presence serves, by code (0: spelled out in the text).
const PACKAGES: [&str; 3] = ["presence", "presence.winfo", "xcap-diff"];
/// RFC 3857 §3.3 watcher-info events; in a record, by code (index plus
/// one; 0: spelled out in the text).
pub const WINFO_EVENTS: [&str; 8] = [
    "subscribe",
    "approved",
    "deactivated",
    "probation",
    "rejected",
    "timeout",
    "giveup",
    "noresource",
];

fn code_of(names: &[&str], name: &str) -> u8 {
    names
        .iter()
        .position(|n| *n == name)
        .map_or(0, |i| i as u8 + 1)
}

/// Flag bits.
const HAS_EVENT_ID: u8 = 1;
const HAS_DISPLAY: u8 = 2;
/// `remote_uri` is `<watcher>;tag=remote_tag` and is not stored twice (the
/// usual From of a SUBSCRIBE).
const REMOTE_URI_DERIVED: u8 = 4;
const CONNECTION: u8 = 8;
const PENDING: u8 = 16;
/// `local_tag` is the id in 16 lower-case hex digits (the tag presence
/// gives its dialogs) and is not stored.
const LOCAL_TAG_DERIVED: u8 = 32;

/// The local tag a subscription with this id gets: its id in hex, so an
/// in-dialog request names its subscription and no dialog index is needed.
pub fn local_tag_of(id: u64) -> String {
    format!("{id:016x}")
}

/// The id a local tag names, when it is one [`local_tag_of`] made.
pub fn id_of_local_tag(tag: &str) -> Option<u64> {
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    (tag.len() == 16 && tag.bytes().all(hex))
        .then(|| u64::from_str_radix(tag, 16).ok())
        .flatten()
}

/// One RFC 6665 subscription as the store keeps it: enough to rebuild the
/// dialog and go on notifying after a restart or a change of owner, with
/// the NOTIFY CSeq and watcher-info version so neither goes backwards.
///
/// Strings are read through accessors; what changes (remote target and
/// flow on a refresh, the authorization state and last event) is set
/// through setters. The JSON encoding (the Redis store's) is the plain
/// object with one member per field, as before the packing.
#[derive(Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    pub id: u64,
    /// The packed strings, in [`Text`] order.
    text: Box<str>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// Last NOTIFY CSeq sent in this dialog.
    pub notify_cseq: u32,
    /// Next watcher-info document version (presence.winfo only).
    pub winfo_version: u32,
    /// End of each [`Text`] field in `text` (each starts where the one
    /// before ends).
    ends: [u16; TEXT_FIELDS],
    flags: u8,
    /// Index in [`PACKAGES`] plus one; 0 when the name is in the text.
    package: u8,
    /// Index in [`WINFO_EVENTS`] plus one; 0 when the name is in the text.
    last_event: u8,
}

/// What a [`SubscriptionRecord`] is made of: its strings borrowed (copied
/// once, into the record's one buffer), everything else as stored.
#[derive(Debug, Clone)]
pub struct SubscriptionFields<'a> {
    pub id: u64,
    /// `presence`, `presence.winfo` or `xcap-diff`.
    pub package: &'a str,
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
    pub route_set: &'a [String],
    pub flow: &'a str,
    /// Whether `flow` is a connection (the subscription ends with it).
    pub connection: bool,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// Waiting for authorization (RFC 6665 pending).
    pub pending: bool,
    /// Last RFC 3857 event of this watcher.
    pub last_event: &'a str,
    pub notify_cseq: u32,
    pub winfo_version: u32,
    /// xcap-diff only: the document selectors (or directories, ending in
    /// `/`) the subscriber asked for; empty means all its documents
    /// (RFC 5875 §4.1).
    pub watched: &'a [String],
}

impl<'a> TryFrom<SubscriptionFields<'a>> for SubscriptionRecord {
    type Error = RecordTooLarge;

    fn try_from(f: SubscriptionFields<'a>) -> Result<SubscriptionRecord, RecordTooLarge> {
        let mut flags = 0;
        for (set, bit) in [
            (f.event_id.is_some(), HAS_EVENT_ID),
            (f.watcher_display.is_some(), HAS_DISPLAY),
            (f.connection, CONNECTION),
            (f.pending, PENDING),
        ] {
            if set {
                flags |= bit;
            }
        }
        let mut record = SubscriptionRecord {
            id: f.id,
            text: Box::from(""),
            created_at: f.created_at,
            expires_at: f.expires_at,
            notify_cseq: f.notify_cseq,
            winfo_version: f.winfo_version,
            ends: [0; TEXT_FIELDS],
            flags,
            package: code_of(&PACKAGES, f.package),
            last_event: code_of(&WINFO_EVENTS, f.last_event),
        };
        let route_set = lines(f.route_set)?;
        let watched = lines(f.watched)?;
        record.pack([
            Cow::Borrowed(f.event_id.unwrap_or("")),
            Cow::Borrowed(f.watcher),
            Cow::Borrowed(f.watcher_display.unwrap_or("")),
            Cow::Borrowed(f.call_id),
            Cow::Borrowed(f.remote_tag),
            Cow::Borrowed(f.local_tag),
            Cow::Borrowed(f.remote_uri),
            Cow::Borrowed(f.local_uri),
            Cow::Borrowed(f.remote_target),
            Cow::Borrowed(f.flow),
            Cow::Borrowed(if record.package == 0 { f.package } else { "" }),
            Cow::Borrowed(if record.last_event == 0 {
                f.last_event
            } else {
                ""
            }),
            Cow::Owned(route_set),
            Cow::Owned(watched),
        ])?;
        Ok(record)
    }
}

/// A list as packed text: each entry followed by a line break.
fn lines(list: &[String]) -> Result<String, RecordTooLarge> {
    let mut out = String::with_capacity(list.iter().map(|s| s.len() + 1).sum());
    for entry in list {
        if entry.contains('\n') {
            return Err(RecordTooLarge);
        }
        out.push_str(entry);
        out.push('\n');
    }
    Ok(out)
}

impl SubscriptionRecord {
    /// Rebuilds the buffer from `parts` (in [`Text`] order). On error the
    /// record is unchanged.
    fn pack(&mut self, mut parts: [Cow<'_, str>; TEXT_FIELDS]) -> Result<(), RecordTooLarge> {
        let derived = parts[Text::RemoteUri as usize]
            .strip_prefix('<')
            .and_then(|u| u.strip_prefix(&*parts[Text::Watcher as usize]))
            .and_then(|u| u.strip_prefix(">;tag="))
            == Some(&*parts[Text::RemoteTag as usize]);
        if derived {
            parts[Text::RemoteUri as usize] = Cow::Borrowed("");
        }
        let tag_derived = id_of_local_tag(&parts[Text::LocalTag as usize]) == Some(self.id);
        if tag_derived {
            parts[Text::LocalTag as usize] = Cow::Borrowed("");
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > usize::from(u16::MAX) {
            return Err(RecordTooLarge);
        }
        let mut text = String::with_capacity(len);
        let mut ends = [0u16; TEXT_FIELDS];
        for (end, part) in ends.iter_mut().zip(&parts) {
            text.push_str(part);
            // Checked above: the whole text fits in 16 bits.
            *end = text.len() as u16;
        }
        self.text = text.into_boxed_str();
        self.ends = ends;
        self.set_flag(REMOTE_URI_DERIVED, derived);
        self.set_flag(LOCAL_TAG_DERIVED, tag_derived);
        Ok(())
    }

    fn get(&self, field: Text) -> &str {
        self.get_at(field as usize)
    }

    fn get_at(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[usize::from(start)..usize::from(self.ends[i])]
    }

    fn flag(&self, bit: u8) -> bool {
        self.flags & bit != 0
    }

    fn set_flag(&mut self, bit: u8, on: bool) {
        if on {
            self.flags |= bit;
        } else {
            self.flags &= !bit;
        }
    }

    /// Every field's text as it reads (a derived one spelled out), to
    /// pack again with one of them changed.
    fn parts(&self) -> [Cow<'_, str>; TEXT_FIELDS] {
        std::array::from_fn(|i| match i {
            i if i == Text::RemoteUri as usize => self.remote_uri(),
            i if i == Text::LocalTag as usize => self.local_tag(),
            i => Cow::Borrowed(self.get_at(i)),
        })
    }

    /// Packs again with `field` set to `value`.
    fn replace(&mut self, field: Text, value: &str) -> Result<(), RecordTooLarge> {
        let mut parts = self.parts().map(|p| Cow::Owned(p.into_owned()));
        parts[field as usize] = Cow::Borrowed(value);
        self.pack(parts)
    }

    /// The event package (`presence`, `presence.winfo`, `xcap-diff`).
    pub fn package(&self) -> &str {
        match self.package {
            0 => self.get(Text::Package),
            code => PACKAGES[usize::from(code - 1)],
        }
    }
    pub fn event_id(&self) -> Option<&str> {
        self.flag(HAS_EVENT_ID).then(|| self.get(Text::EventId))
    }
    /// The watcher's AOR.
    pub fn watcher(&self) -> &str {
        self.get(Text::Watcher)
    }
    pub fn watcher_display(&self) -> Option<&str> {
        self.flag(HAS_DISPLAY)
            .then(|| self.get(Text::WatcherDisplay))
    }
    pub fn call_id(&self) -> &str {
        self.get(Text::CallId)
    }
    pub fn remote_tag(&self) -> &str {
        self.get(Text::RemoteTag)
    }
    pub fn local_tag(&self) -> Cow<'_, str> {
        if self.flag(LOCAL_TAG_DERIVED) {
            Cow::Owned(local_tag_of(self.id))
        } else {
            Cow::Borrowed(self.get(Text::LocalTag))
        }
    }
    /// Whether `tag` is this dialog's local tag (without spelling out a
    /// derived one).
    pub fn has_local_tag(&self, tag: &str) -> bool {
        if self.flag(LOCAL_TAG_DERIVED) {
            id_of_local_tag(tag) == Some(self.id)
        } else {
            self.get(Text::LocalTag) == tag
        }
    }
    /// From of the SUBSCRIBE (the watcher, with its tag).
    pub fn remote_uri(&self) -> Cow<'_, str> {
        if self.flag(REMOTE_URI_DERIVED) {
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
    /// The route set, in order (RFC 3261 §12.1.1).
    pub fn route_set(&self) -> impl Iterator<Item = &str> + Clone {
        self.get(Text::RouteSet).split_terminator('\n')
    }
    /// xcap-diff only: the selectors the subscriber watches (none: all).
    pub fn watched(&self) -> impl Iterator<Item = &str> + Clone {
        self.get(Text::Watched).split_terminator('\n')
    }
    /// The flow NOTIFYs go over, as its token's text.
    pub fn flow(&self) -> &str {
        self.get(Text::Flow)
    }
    pub fn flow_token(&self) -> FlowToken {
        FlowToken(self.flow().to_string())
    }
    /// Whether `flow` is a connection (the subscription ends with it).
    pub fn connection(&self) -> bool {
        self.flag(CONNECTION)
    }
    /// Waiting for authorization (RFC 6665 pending).
    pub fn pending(&self) -> bool {
        self.flag(PENDING)
    }
    /// Last RFC 3857 event of this watcher.
    pub fn last_event(&self) -> &str {
        match self.last_event {
            0 => self.get(Text::LastEvent),
            code => WINFO_EVENTS[usize::from(code - 1)],
        }
    }

    /// A target refresh (RFC 6665 §4.1.2.1).
    pub fn set_remote_target(&mut self, target: &str) -> Result<(), RecordTooLarge> {
        self.replace(Text::RemoteTarget, target)
    }

    /// The watcher came back over another flow (a connection or not).
    pub fn set_flow(&mut self, flow: &FlowToken, connection: bool) -> Result<(), RecordTooLarge> {
        self.replace(Text::Flow, &flow.0)?;
        self.set_flag(CONNECTION, connection);
        Ok(())
    }

    pub fn set_pending(&mut self, pending: bool) {
        self.set_flag(PENDING, pending);
    }

    pub fn set_last_event(&mut self, event: &str) -> Result<(), RecordTooLarge> {
        let code = code_of(&WINFO_EVENTS, event);
        self.replace(Text::LastEvent, if code == 0 { event } else { "" })?;
        self.last_event = code;
        Ok(())
    }
}

impl fmt::Debug for SubscriptionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionRecord")
            .field("id", &self.id)
            .field("package", &self.package())
            .field("event_id", &self.event_id())
            .field("watcher", &self.watcher())
            .field("watcher_display", &self.watcher_display())
            .field("call_id", &self.call_id())
            .field("remote_tag", &self.remote_tag())
            .field("local_tag", &self.local_tag())
            .field("remote_uri", &self.remote_uri())
            .field("local_uri", &self.local_uri())
            .field("remote_target", &self.remote_target())
            .field("route_set", &self.route_set().collect::<Vec<_>>())
            .field("flow", &self.flow())
            .field("connection", &self.connection())
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("pending", &self.pending())
            .field("last_event", &self.last_event())
            .field("notify_cseq", &self.notify_cseq)
            .field("winfo_version", &self.winfo_version)
            .field("watched", &self.watched().collect::<Vec<_>>())
            .finish()
    }
}

/// The JSON form of a [`SubscriptionRecord`] (the Redis store's encoding):
/// one member per field, in this order, as records were written before the
/// strings were packed. Written borrowed, read owned.
#[derive(Serialize)]
struct Out<'a> {
    id: u64,
    package: &'a str,
    event_id: Option<&'a str>,
    watcher: &'a str,
    watcher_display: Option<&'a str>,
    call_id: &'a str,
    remote_tag: &'a str,
    local_tag: Cow<'a, str>,
    remote_uri: Cow<'a, str>,
    local_uri: &'a str,
    remote_target: &'a str,
    route_set: Vec<&'a str>,
    flow: &'a str,
    connection: bool,
    created_at: UnixTime,
    expires_at: UnixTime,
    pending: bool,
    last_event: &'a str,
    notify_cseq: u32,
    winfo_version: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    watched: Vec<&'a str>,
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
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Out {
            id: self.id,
            package: self.package(),
            event_id: self.event_id(),
            watcher: self.watcher(),
            watcher_display: self.watcher_display(),
            call_id: self.call_id(),
            remote_tag: self.remote_tag(),
            local_tag: self.local_tag(),
            remote_uri: self.remote_uri(),
            local_uri: self.local_uri(),
            remote_target: self.remote_target(),
            route_set: self.route_set().collect(),
            flow: self.flow(),
            connection: self.connection(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            pending: self.pending(),
            last_event: self.last_event(),
            notify_cseq: self.notify_cseq,
            winfo_version: self.winfo_version,
            watched: self.watched().collect(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SubscriptionRecord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = In::deserialize(d)?;
        SubscriptionRecord::try_from(SubscriptionFields {
            id: r.id,
            package: &r.package,
            event_id: r.event_id.as_deref(),
            watcher: &r.watcher,
            watcher_display: r.watcher_display.as_deref(),
            call_id: &r.call_id,
            remote_tag: &r.remote_tag,
            local_tag: &r.local_tag,
            remote_uri: &r.remote_uri,
            local_uri: &r.local_uri,
            remote_target: &r.remote_target,
            route_set: &r.route_set,
            flow: &r.flow,
            connection: r.connection,
            created_at: r.created_at,
            expires_at: r.expires_at,
            pending: r.pending,
            last_event: &r.last_event,
            notify_cseq: r.notify_cseq,
            winfo_version: r.winfo_version,
            watched: &r.watched,
        })
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_record_is_one_96_byte_allocation_behind_its_arc() {
        // The Arc's two counters plus the record: jemalloc's 96-byte class.
        assert!(std::mem::size_of::<SubscriptionRecord>() <= 80);
    }

    #[test]
    fn stored_subscriptions_decode_and_encode_unchanged() {
        let r: SubscriptionRecord = serde_json::from_str(STORED_SUBSCRIPTION).unwrap();
        assert_eq!(r.id, 7);
        assert_eq!(r.package(), "presence");
        assert_eq!(r.event_id(), Some("e1"));
        assert_eq!(r.watcher(), "sip:w@example.com");
        assert_eq!(r.watcher_display(), Some("W \"x\""));
        assert_eq!(r.call_id(), "c@h");
        assert_eq!(r.remote_tag(), "r1");
        assert_eq!(r.local_tag(), "l1");
        assert_eq!(r.remote_uri(), "\"W\" <sip:w@example.com>;tag=r1");
        assert_eq!(r.local_uri(), "<sip:p@example.com>");
        assert_eq!(r.remote_target(), "sip:w@127.0.0.1:5070");
        assert_eq!(r.route_set().collect::<Vec<_>>(), ["<sip:proxy;lr>"]);
        assert_eq!(r.flow_token(), FlowToken("udp/x".into()));
        assert!(!r.connection() && r.pending());
        assert_eq!((r.created_at, r.expires_at), (UnixTime(100), UnixTime(700)));
        assert_eq!(r.last_event(), "subscribe");
        assert_eq!((r.notify_cseq, r.winfo_version), (3, 1));
        assert_eq!(r.watched().count(), 0);
        assert_eq!(serde_json::to_string(&r).unwrap(), STORED_SUBSCRIPTION);

        // Optional fields absent, and xcap-diff's selectors present.
        let json = STORED_SUBSCRIPTION
            .replace(r#""e1""#, "null")
            .replace(r#""W \"x\"""#, "null")
            .replace(
                r#""winfo_version":1}"#,
                r#""winfo_version":1,"watched":["a/b","c/"]}"#,
            );
        let r: SubscriptionRecord = serde_json::from_str(&json).unwrap();
        assert_eq!((r.event_id(), r.watcher_display()), (None, None));
        assert_eq!(r.watcher(), "sip:w@example.com");
        assert_eq!(r.watched().collect::<Vec<_>>(), ["a/b", "c/"]);
        assert_eq!(serde_json::to_string(&r).unwrap(), json);

        // The usual From (`<watcher>;tag=remote-tag`) is not kept twice
        // but reads, encodes and survives a refresh as it came.
        let json = STORED_SUBSCRIPTION.replace(r#"\"W\" <sip:w"#, "<sip:w");
        let mut r: SubscriptionRecord = serde_json::from_str(&json).unwrap();
        assert!(r.flag(REMOTE_URI_DERIVED));
        assert_eq!(r.remote_uri(), "<sip:w@example.com>;tag=r1");
        assert_eq!(serde_json::to_string(&r).unwrap(), json);
        r.set_flow(&FlowToken("tcp/1".into()), true).unwrap();
        assert_eq!(r.remote_uri(), "<sip:w@example.com>;tag=r1");
        assert_eq!((r.remote_tag(), r.flow()), ("r1", "tcp/1"));
        assert!(r.connection() && r.pending());

        // A local tag that is the id in hex (the tag presence gives) is not
        // kept either, and still reads, compares and encodes as it came.
        let json = STORED_SUBSCRIPTION.replace(r#""l1""#, r#""0000000000000007""#);
        let mut r: SubscriptionRecord = serde_json::from_str(&json).unwrap();
        assert!(r.flag(LOCAL_TAG_DERIVED));
        assert_eq!(r.local_tag(), "0000000000000007");
        assert!(r.has_local_tag("0000000000000007"));
        assert!(!r.has_local_tag("0000000000000008") && !r.has_local_tag("7"));
        assert_eq!(serde_json::to_string(&r).unwrap(), json);
        r.set_remote_target("sip:w@h").unwrap();
        assert_eq!(r.local_tag(), "0000000000000007");
        let other: SubscriptionRecord = serde_json::from_str(STORED_SUBSCRIPTION).unwrap();
        assert!(!other.flag(LOCAL_TAG_DERIVED));
        assert!(other.has_local_tag("l1") && !other.has_local_tag("l2"));
    }

    #[test]
    fn local_tags_name_their_subscription() {
        assert_eq!(local_tag_of(0xab), "00000000000000ab");
        assert_eq!(id_of_local_tag("00000000000000ab"), Some(0xab));
        assert_eq!(id_of_local_tag(&local_tag_of(u64::MAX)), Some(u64::MAX));
        for bad in [
            "ab",
            "00000000000000AB",
            "+000000000000000",
            "00000000000000ag",
            "",
        ] {
            assert_eq!(id_of_local_tag(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_without_a_code_are_kept_as_text() {
        let json = STORED_SUBSCRIPTION
            .replace(r#""package":"presence""#, r#""package":"dialog""#)
            .replace(r#""last_event":"subscribe""#, r#""last_event":"later""#);
        let mut r: SubscriptionRecord = serde_json::from_str(&json).unwrap();
        assert_eq!((r.package(), r.last_event()), ("dialog", "later"));
        assert_eq!(serde_json::to_string(&r).unwrap(), json);
        r.set_last_event("approved").unwrap();
        assert_eq!((r.package(), r.last_event()), ("dialog", "approved"));
        r.set_last_event("other").unwrap();
        assert_eq!(r.last_event(), "other");
        assert_eq!(r.call_id(), "c@h");
    }

    #[test]
    fn a_refresh_changes_only_target_and_flow() {
        let mut r: SubscriptionRecord = serde_json::from_str(STORED_SUBSCRIPTION).unwrap();
        let before = r.clone();
        r.set_remote_target("sip:w@[2001:db8::1]:5071;transport=tcp")
            .unwrap();
        r.set_flow(&FlowToken("tcp/9".into()), true).unwrap();
        assert_eq!(r.remote_target(), "sip:w@[2001:db8::1]:5071;transport=tcp");
        assert_eq!(r.flow(), "tcp/9");
        let mut back = r.clone();
        back.set_remote_target(before.remote_target()).unwrap();
        back.set_flow(&before.flow_token(), false).unwrap();
        assert_eq!(back, before);
        assert_eq!(r.call_id(), "c@h");
        assert_eq!(r.local_uri(), "<sip:p@example.com>");
        assert_eq!(r.watcher_display(), Some("W \"x\""));
        assert_eq!(r.route_set().collect::<Vec<_>>(), ["<sip:proxy;lr>"]);
    }

    #[test]
    fn text_past_the_offsets_reach_is_refused_and_changes_nothing() {
        let long = "x".repeat(70_000);
        let json = STORED_SUBSCRIPTION.replace("c@h", &long);
        assert!(serde_json::from_str::<SubscriptionRecord>(&json).is_err());

        let mut r: SubscriptionRecord = serde_json::from_str(STORED_SUBSCRIPTION).unwrap();
        let before = r.clone();
        assert_eq!(r.set_remote_target(&long), Err(RecordTooLarge));
        assert_eq!(r, before);

        let json = STORED_SUBSCRIPTION.replace("<sip:proxy;lr>", "a\\nb");
        assert!(serde_json::from_str::<SubscriptionRecord>(&json).is_err());
    }
}
