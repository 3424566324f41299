//! Raw header fields: canonical names (compact forms expanded, RFC 3261
//! §7.3.3) and values kept verbatim so unknown headers pass through intact.

use std::fmt;

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
        todo!("sip helper: case-insensitive match incl. compact forms i m e l c f s k t v o u")
    }

    /// The canonical spelling used when serializing.
    pub fn as_str(&self) -> &str {
        todo!()
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
    pub fn get_list(&self, name: &HeaderName) -> Vec<&str> {
        todo!()
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
        todo!()
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
