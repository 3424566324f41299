//! Raw header fields: canonical names (compact forms expanded, RFC 3261
//! §7.3.3) and values kept verbatim so unknown headers pass through intact.

use std::fmt;

use crate::grammar::{find_top_level, split_top_level, trim_ws};

/// A header field name in canonical form. Known names compare by variant;
/// others keep their spelling and compare case-insensitively (RFC 3261 §7.3.1).
#[derive(Debug, Clone)]
pub enum HeaderName {
    Accept,
    AllowEvents,
    Allow,
    Authorization,
    CallId,
    Contact,
    ContentLength,
    ContentType,
    ContentEncoding,
    CSeq,
    Event,
    Expires,
    From,
    MaxForwards,
    MinExpires,
    ProxyAuthenticate,
    ProxyAuthorization,
    ProxyRequire,
    RecordRoute,
    Require,
    RetryAfter,
    Route,
    Server,
    SipETag,
    SipIfMatch,
    SubscriptionState,
    Supported,
    To,
    Unsupported,
    UserAgent,
    Via,
    WwwAuthenticate,
    /// Any other header, spelled as received.
    Other(String),
}

impl HeaderName {
    /// Maps a received name (any case, compact form allowed) to its
    /// canonical form. Compact forms per RFC 3261 §7.3.3, RFC 3265 (o, u),
    /// RFC 3515 (r) and RFC 4028 (x).
    pub fn parse(name: &str) -> HeaderName {
        use HeaderName::*;
        // Lower-case into a stack buffer so the match below needs no allocation.
        let mut buf = [0u8; 20];
        let bytes = name.as_bytes();
        if bytes.len() > buf.len() {
            return Other(name.to_owned());
        }
        for (d, s) in buf.iter_mut().zip(bytes) {
            *d = s.to_ascii_lowercase();
        }
        let lower = buf.get(..bytes.len()).unwrap_or(&[]);
        let other = |s: &str| Other(s.to_owned());
        match lower {
            b"via" | b"v" => Via,
            b"from" | b"f" => From,
            b"to" | b"t" => To,
            b"call-id" | b"i" => CallId,
            b"cseq" => CSeq,
            b"contact" | b"m" => Contact,
            b"content-length" | b"l" => ContentLength,
            b"content-type" | b"c" => ContentType,
            b"content-encoding" | b"e" => ContentEncoding,
            b"max-forwards" => MaxForwards,
            b"expires" => Expires,
            b"min-expires" => MinExpires,
            b"event" | b"o" => Event,
            b"allow-events" | b"u" => AllowEvents,
            b"allow" => Allow,
            b"accept" => Accept,
            b"authorization" => Authorization,
            b"proxy-authenticate" => ProxyAuthenticate,
            b"proxy-authorization" => ProxyAuthorization,
            b"proxy-require" => ProxyRequire,
            b"record-route" => RecordRoute,
            b"require" => Require,
            b"retry-after" => RetryAfter,
            b"route" => Route,
            b"server" => Server,
            b"sip-etag" => SipETag,
            b"sip-if-match" => SipIfMatch,
            b"subscription-state" => SubscriptionState,
            b"supported" | b"k" => Supported,
            b"unsupported" => Unsupported,
            b"user-agent" => UserAgent,
            b"www-authenticate" => WwwAuthenticate,
            // Compact forms of headers without a variant: expand the name.
            b"s" => other("Subject"),
            b"r" => other("Refer-To"),
            b"x" => other("Session-Expires"),
            b"b" => other("Referred-By"),
            b"a" => other("Accept-Contact"),
            b"j" => other("Reject-Contact"),
            b"d" => other("Request-Disposition"),
            b"y" => other("Identity"),
            _ => Other(name.to_owned()),
        }
    }

    /// The canonical spelling used when serializing.
    pub fn as_str(&self) -> &str {
        use HeaderName::*;
        match self {
            Accept => "Accept",
            AllowEvents => "Allow-Events",
            Allow => "Allow",
            Authorization => "Authorization",
            CallId => "Call-ID",
            Contact => "Contact",
            ContentLength => "Content-Length",
            ContentType => "Content-Type",
            ContentEncoding => "Content-Encoding",
            CSeq => "CSeq",
            Event => "Event",
            Expires => "Expires",
            From => "From",
            MaxForwards => "Max-Forwards",
            MinExpires => "Min-Expires",
            ProxyAuthenticate => "Proxy-Authenticate",
            ProxyAuthorization => "Proxy-Authorization",
            ProxyRequire => "Proxy-Require",
            RecordRoute => "Record-Route",
            Require => "Require",
            RetryAfter => "Retry-After",
            Route => "Route",
            Server => "Server",
            SipETag => "SIP-ETag",
            SipIfMatch => "SIP-If-Match",
            SubscriptionState => "Subscription-State",
            Supported => "Supported",
            To => "To",
            Unsupported => "Unsupported",
            UserAgent => "User-Agent",
            Via => "Via",
            WwwAuthenticate => "WWW-Authenticate",
            Other(s) => s,
        }
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}
impl Eq for HeaderName {}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header field line (after unfolding), value trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub value: String,
}

/// The header fields of a message in received order. A comma-separated
/// line of a list header (Via, Contact, Route, ...) stays one `Header`;
/// the typed accessors split it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    pub(crate) fn from_vec(v: Vec<Header>) -> Self {
        Headers(v)
    }

    /// Value of the first field with this name.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0
            .iter()
            .find(|h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    /// Values of every field with this name, in order (lines, not split on commas).
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    /// Values of every field with this name split on top-level commas
    /// (commas inside quotes or `<>` do not split), in order.
    /// Empty elements (`a,,b`) are skipped.
    pub fn get_list(&self, name: &HeaderName) -> Vec<&str> {
        self.0
            .iter()
            .filter(|h| &h.name == name)
            .flat_map(|h| split_top_level(&h.value, b','))
            .filter(|v| !v.is_empty())
            .collect()
    }

    pub fn contains(&self, name: &HeaderName) -> bool {
        self.0.iter().any(|h| &h.name == name)
    }

    /// Appends a field.
    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.push(Header {
            name,
            value: value.into(),
        });
    }

    /// Inserts a field before all others (used for Via and Route).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.insert(
            0,
            Header {
                name,
                value: value.into(),
            },
        );
    }

    /// Replaces every field with this name by one field (appended if absent).
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        if let Some(pos) = self.0.iter().position(|h| h.name == name) {
            self.0[pos].value = value;
            let mut i = pos + 1;
            while i < self.0.len() {
                if self.0[i].name == name {
                    self.0.remove(i);
                } else {
                    i += 1;
                }
            }
        } else {
            self.push(name, value);
        }
    }

    /// Removes every field with this name.
    pub fn remove(&mut self, name: &HeaderName) {
        self.0.retain(|h| &h.name != name);
    }

    /// Removes the first value of a list header (the topmost Via or Route),
    /// keeping the rest of a comma-joined line.
    pub fn pop_first_value(&mut self, name: &HeaderName) -> Option<String> {
        let pos = self.0.iter().position(|h| &h.name == name)?;
        let value = &self.0.get(pos)?.value;
        match find_top_level(value, b',') {
            Some(comma) => {
                let first = trim_ws(&value[..comma]).to_owned();
                let rest = trim_ws(&value[comma + 1..]).to_owned();
                if rest.is_empty() {
                    self.0.remove(pos);
                } else if let Some(h) = self.0.get_mut(pos) {
                    h.value = rest;
                }
                Some(first)
            }
            None => Some(self.0.remove(pos).value),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case() {
        let pairs = [
            ("i", HeaderName::CallId),
            ("m", HeaderName::Contact),
            ("e", HeaderName::ContentEncoding),
            ("l", HeaderName::ContentLength),
            ("c", HeaderName::ContentType),
            ("f", HeaderName::From),
            ("k", HeaderName::Supported),
            ("t", HeaderName::To),
            ("v", HeaderName::Via),
            ("o", HeaderName::Event),
            ("u", HeaderName::AllowEvents),
            ("MaX-fOrWaRdS", HeaderName::MaxForwards),
            ("CALL-ID", HeaderName::CallId),
            ("sip-etag", HeaderName::SipETag),
        ];
        for (raw, want) in pairs {
            assert_eq!(HeaderName::parse(raw), want, "{raw}");
        }
        assert_eq!(HeaderName::parse("s").as_str(), "Subject");
        assert_eq!(HeaderName::parse("r").as_str(), "Refer-To");
        assert_eq!(HeaderName::parse("x").as_str(), "Session-Expires");
        assert_eq!(HeaderName::parse("X-Custom").as_str(), "X-Custom");
        assert_eq!(HeaderName::parse("x-custom"), HeaderName::parse("X-CUSTOM"));
        assert_ne!(HeaderName::parse("x-custom"), HeaderName::Via);
        assert_eq!(
            HeaderName::parse("www-authenticate").as_str(),
            "WWW-Authenticate"
        );
        assert_eq!(HeaderName::CallId.to_string(), "Call-ID");
    }

    #[test]
    fn lists_split_at_top_level() {
        let mut h = Headers::new();
        h.push(
            HeaderName::Contact,
            r#""Doe, John" <sip:a@b;x=1,2>;q=0.5, <sip:c@d>"#,
        );
        h.push(HeaderName::Contact, "<sip:e@f>");
        assert_eq!(
            h.get_list(&HeaderName::Contact),
            vec![
                r#""Doe, John" <sip:a@b;x=1,2>;q=0.5"#,
                "<sip:c@d>",
                "<sip:e@f>"
            ]
        );
        assert_eq!(h.get_all(&HeaderName::Contact).count(), 2);
    }

    #[test]
    fn pop_first_value_keeps_rest() {
        let mut h = Headers::new();
        h.push(HeaderName::Route, "<sip:a;lr>, <sip:b;lr>");
        h.push(HeaderName::Route, "<sip:c;lr>");
        assert_eq!(
            h.pop_first_value(&HeaderName::Route).as_deref(),
            Some("<sip:a;lr>")
        );
        assert_eq!(
            h.pop_first_value(&HeaderName::Route).as_deref(),
            Some("<sip:b;lr>")
        );
        assert_eq!(h.len(), 1);
        assert_eq!(
            h.pop_first_value(&HeaderName::Route).as_deref(),
            Some("<sip:c;lr>")
        );
        assert_eq!(h.pop_first_value(&HeaderName::Route), None);
        assert!(h.is_empty());
    }

    #[test]
    fn set_replaces_all() {
        let mut h = Headers::new();
        h.push(HeaderName::Expires, "1");
        h.push(HeaderName::To, "<sip:a@b>");
        h.push(HeaderName::Expires, "2");
        h.set(HeaderName::Expires, "3");
        assert_eq!(
            h.get_all(&HeaderName::Expires).collect::<Vec<_>>(),
            vec!["3"]
        );
        h.push_front(HeaderName::Via, "SIP/2.0/UDP x");
        assert_eq!(h.iter().next().map(|h| &h.name), Some(&HeaderName::Via));
    }
}
