//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966).

use std::fmt;
use std::str::FromStr;

use crate::error::CodecError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
}

/// A parsed URI. `user` is kept as received (escapes intact) so the URI
/// serializes back unchanged; [`crate::Aor`] does the comparison rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub scheme: Scheme,
    /// User part (or the tel number), escapes as received.
    pub user: Option<String>,
    /// Password of `user:password@` (deprecated but legal).
    pub password: Option<String>,
    /// Host: domain name, IPv4, or IPv6 reference with brackets (`[::1]`).
    pub host: String,
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr;ob`), names as received, value
    /// `None` for flags.
    pub params: Vec<(String, Option<String>)>,
    /// Header part after `?`, verbatim without the `?`.
    pub headers: Option<String>,
}

impl Uri {
    /// Parses a URI as it appears in a Request-URI or in `<...>`.
    pub fn parse(s: &str) -> Result<Uri, CodecError> {
        todo!()
    }

    /// Value of a URI parameter, names compared case-insensitively.
    /// `Some(None)` for a flag such as `lr`.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// `host:port` or `host` as written in the URI.
    pub fn host_port(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!()
    }
}

impl FromStr for Uri {
    type Err = CodecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uri::parse(s)
    }
}
