//! Typed views of the headers Herald uses. Each accessor on [`Headers`]
//! parses on demand and reports a grammar error as
//! [`CodecError::InvalidHeader`] (400).

use std::fmt;

use crate::error::CodecError;
use crate::header::Headers;
use crate::message::Method;
use crate::uri::Uri;

/// A `name-addr` or `addr-spec` with header parameters: From, To, Contact,
/// Route, Record-Route (RFC 3261 §20.10, §25.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name without quotes (unescaped), if any.
    pub display: Option<String>,
    pub uri: Uri,
    /// Header parameters after the URI (`;tag=..;expires=..`), names as
    /// received, values unquoted.
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    /// Parses one value (not a comma list).
    pub fn parse(s: &str) -> Result<NameAddr, CodecError> {
        todo!()
    }
    /// Header parameter, name compared case-insensitively.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }
    /// Sets or replaces a header parameter.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        todo!()
    }
}

impl fmt::Display for NameAddr {
    /// Always writes the `<uri>` form (safe whatever the URI holds), with
    /// the display name quoted when present, then the parameters (values
    /// that need it quoted again).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!()
    }
}

/// One Contact value of a REGISTER or dialog request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact(pub NameAddr);

impl Contact {
    /// `expires` parameter (RFC 3261 §10.2.1.1), if present and numeric.
    pub fn expires(&self) -> Option<u32> {
        todo!()
    }
    /// `q` parameter as thousandths (q=0.7 -> 700); `None` if absent.
    /// Errors on a malformed value.
    pub fn q(&self) -> Result<Option<u16>, CodecError> {
        todo!()
    }
    /// `+sip.instance` (RFC 5626 §4.1), unquoted (`<urn:uuid:...>`).
    pub fn sip_instance(&self) -> Option<&str> {
        todo!()
    }
    /// `reg-id` (RFC 5626 §4.2).
    pub fn reg_id(&self) -> Option<u32> {
        todo!()
    }
}

/// The Contact header of a request: `*` or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactList {
    /// `Contact: *` (RFC 3261 §10.2.2: only with Expires: 0 in REGISTER).
    Star,
    List(Vec<Contact>),
}

/// One Via value (RFC 3261 §20.42).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// `UDP`, `TCP`, `TLS`, `WS`, `WSS`, ... upper-cased.
    pub transport: String,
    /// sent-by host as written (IPv6 with brackets).
    pub host: String,
    pub port: Option<u16>,
    /// Parameters in order, names as received.
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    pub fn parse(s: &str) -> Result<Via, CodecError> {
        todo!()
    }
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }
    /// Sets or replaces a parameter (used for `received` and `rport`).
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        todo!()
    }
    /// sent-by as `host:port` or `host`.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }
}

impl fmt::Display for Via {
    /// `SIP/2.0/UDP host:port;params`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!()
    }
}

/// CSeq (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// 32-bit unsigned, < 2^31 for requests (RFC 3261 §8.1.1.5).
    pub seq: u32,
    pub method: Method,
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Event header (RFC 6665 §8.2.1): `presence;id=7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHeader {
    /// Package name with template (`presence.winfo`), lower-cased.
    pub package: String,
    pub id: Option<String>,
    pub params: Vec<(String, Option<String>)>,
}

impl EventHeader {
    pub fn parse(s: &str) -> Result<EventHeader, CodecError> {
        todo!()
    }
}

impl fmt::Display for EventHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!()
    }
}

/// Subscription-State (RFC 6665 §8.2.3), for building NOTIFYs and reading
/// them in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionState {
    Active {
        expires: u32,
    },
    Pending {
        expires: u32,
    },
    Terminated {
        reason: Option<String>,
        retry_after: Option<u32>,
    },
}

impl SubscriptionState {
    pub fn parse(s: &str) -> Result<SubscriptionState, CodecError> {
        todo!()
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!()
    }
}

/// Typed accessors. List headers may arrive as several lines or as one
/// comma-joined line; both read the same.
impl Headers {
    /// Every Via value, topmost first. Error if none (mandatory).
    pub fn vias(&self) -> Result<Vec<Via>, CodecError> {
        todo!()
    }
    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via, CodecError> {
        todo!()
    }
    pub fn from_addr(&self) -> Result<NameAddr, CodecError> {
        todo!()
    }
    pub fn to_addr(&self) -> Result<NameAddr, CodecError> {
        todo!()
    }
    pub fn call_id(&self) -> Result<&str, CodecError> {
        todo!()
    }
    pub fn cseq(&self) -> Result<CSeq, CodecError> {
        todo!()
    }
    /// Max-Forwards, `None` if absent; error if not a number 0..=255.
    pub fn max_forwards(&self) -> Result<Option<u8>, CodecError> {
        todo!()
    }
    /// Contact header(s); `None` if absent.
    pub fn contacts(&self) -> Result<Option<ContactList>, CodecError> {
        todo!()
    }
    /// Expires as delta-seconds; `None` if absent. RFC 3261 §20.19 allows
    /// values up to 2^32-1; larger ones read as u32::MAX (§10.2.1.1 says
    /// treat them as a large value, see RFC 4475 scalarlg).
    pub fn expires(&self) -> Result<Option<u32>, CodecError> {
        todo!()
    }
    pub fn event(&self) -> Result<Option<EventHeader>, CodecError> {
        todo!()
    }
    /// Content-Type media type, lower-cased, without parameters
    /// (`application/pidf+xml`).
    pub fn content_type(&self) -> Option<String> {
        todo!()
    }
    /// Accept media ranges, lower-cased, without parameters.
    pub fn accept(&self) -> Vec<String> {
        todo!()
    }
    /// Allow-Events tokens.
    pub fn allow_events(&self) -> Vec<String> {
        todo!()
    }
    pub fn routes(&self) -> Result<Vec<NameAddr>, CodecError> {
        todo!()
    }
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, CodecError> {
        todo!()
    }
    /// Supported option tags (lower-cased).
    pub fn supported(&self) -> Vec<String> {
        todo!()
    }
    /// Require option tags (lower-cased).
    pub fn require(&self) -> Vec<String> {
        todo!()
    }
    /// Proxy-Require option tags (lower-cased).
    pub fn proxy_require(&self) -> Vec<String> {
        todo!()
    }
}
