//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966).

use std::fmt;
use std::str::FromStr;

use crate::error::CodecError;
use crate::grammar::{all_escaped_or, is_unreserved, parse_digits};

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
        // Hand-written (see grammar.rs for why not rsip's URI parser).
        let colon = s
            .find(':')
            .ok_or_else(|| CodecError::InvalidUri("no scheme".into()))?;
        let scheme_str = &s[..colon];
        if !is_scheme(scheme_str) {
            return Err(CodecError::InvalidUri("bad scheme".into()));
        }
        let scheme = if scheme_str.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme_str.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme_str.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            return Err(CodecError::UnsupportedScheme(scheme_str.to_owned()));
        };
        let rest = &s[colon + 1..];
        match scheme {
            Scheme::Tel => parse_tel(rest),
            _ => parse_sip(scheme, rest),
        }
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

impl Scheme {
    pub fn as_str(&self) -> &'static str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme.as_str())?;
        f.write_str(":")?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(pw) = &self.password {
                f.write_str(":")?;
                f.write_str(pw)?;
            }
            if self.scheme != Scheme::Tel {
                f.write_str("@")?;
            }
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for (n, v) in &self.params {
            f.write_str(";")?;
            f.write_str(n)?;
            if let Some(v) = v {
                f.write_str("=")?;
                f.write_str(v)?;
            }
        }
        if let Some(h) = &self.headers {
            f.write_str("?")?;
            f.write_str(h)?;
        }
        Ok(())
    }
}

/// scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3261 §25.1).
pub(crate) fn is_scheme(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

fn bad(reason: &str) -> CodecError {
    CodecError::InvalidUri(reason.to_owned())
}

/// user-unreserved plus unreserved (RFC 3261 §25.1). `#` is also taken:
/// phones send it unescaped in dial strings and it is harmless here.
fn is_user_byte(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/' | b'#'
        )
}

fn is_password_byte(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',')
}

/// paramchar = param-unreserved / unreserved (escapes checked apart).
fn is_param_byte(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}

/// hname / hvalue characters plus the `=` and `&` that join them.
fn is_header_byte(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$' | b'=' | b'&'
        )
}

fn is_hostname_byte(b: u8) -> bool {
    // `_` is not in RFC 3261 hostnames but appears in real DNS names.
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
}

/// Reads a host (domain, IPv4, or bracketed IPv6 reference kept with its
/// brackets) at the start of `s`; returns it and the rest.
pub(crate) fn take_host(s: &str) -> Result<(&str, &str), CodecError> {
    if s.starts_with('[') {
        let end = s.find(']').ok_or_else(|| bad("unclosed IPv6 reference"))?;
        let inner = &s[1..end];
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            || !inner.contains(':')
        {
            return Err(bad("bad IPv6 reference"));
        }
        Ok((&s[..end + 1], &s[end + 1..]))
    } else {
        let len = s.bytes().take_while(|&b| is_hostname_byte(b)).count();
        if len == 0 {
            return Err(bad("empty host"));
        }
        Ok((&s[..len], &s[len..]))
    }
}

/// Reads `host [":" port]` at the start of `s`; returns host, port and the
/// rest (starting at `;`, `?` or end).
fn parse_host_port(s: &str) -> Result<(&str, Option<u16>, &str), CodecError> {
    let (host, rest) = take_host(s)?;
    if let Some(r) = rest.strip_prefix(':') {
        let len = r.bytes().take_while(u8::is_ascii_digit).count();
        let port = parse_digits::<u16>(&r[..len]).ok_or_else(|| bad("bad port"))?;
        Ok((host, Some(port), &r[len..]))
    } else {
        Ok((host, None, rest))
    }
}

/// Reads `*( ";" uri-parameter ) [ "?" headers ]`.
#[allow(clippy::type_complexity)]
fn parse_uri_tail(s: &str) -> Result<(Vec<(String, Option<String>)>, Option<String>), CodecError> {
    let (params_part, headers) = match s.find('?') {
        Some(q) => (&s[..q], Some(&s[q + 1..])),
        None => (s, None),
    };
    let mut params = Vec::new();
    if !params_part.is_empty() {
        let body = params_part
            .strip_prefix(';')
            .ok_or_else(|| bad("junk after host"))?;
        for p in body.split(';') {
            let (n, v) = match p.find('=') {
                Some(e) => (&p[..e], Some(&p[e + 1..])),
                None => (p, None),
            };
            if n.is_empty() || !all_escaped_or(n, is_param_byte) {
                return Err(bad("bad parameter name"));
            }
            if let Some(v) = v {
                if v.is_empty() || !all_escaped_or(v, is_param_byte) {
                    return Err(bad("bad parameter value"));
                }
            }
            params.push((n.to_owned(), v.map(str::to_owned)));
        }
    }
    let headers = match headers {
        Some(h) if h.is_empty() || !all_escaped_or(h, is_header_byte) => {
            return Err(bad("bad headers"))
        }
        Some(h) => Some(h.to_owned()),
        None => None,
    };
    Ok((params, headers))
}

fn parse_sip(scheme: Scheme, rest: &str) -> Result<Uri, CodecError> {
    // Neither user, host, parameters nor headers may hold a bare `@`, so the
    // first one ends the userinfo even when the user holds `;` or `?`
    // (RFC 4475 semiuri, intmeth).
    let (userinfo, hostpart) = match rest.find('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (user, password) = match userinfo {
        Some(ui) => {
            let (u, p) = match ui.find(':') {
                Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                None => (ui, None),
            };
            if u.is_empty() || !all_escaped_or(u, is_user_byte) {
                return Err(bad("bad user part"));
            }
            if let Some(p) = p {
                if !all_escaped_or(p, is_password_byte) {
                    return Err(bad("bad password"));
                }
            }
            (Some(u.to_owned()), p.map(str::to_owned))
        }
        None => (None, None),
    };
    let (host, port, tail) = parse_host_port(hostpart)?;
    let (params, headers) = parse_uri_tail(tail)?;
    Ok(Uri {
        scheme,
        user,
        password,
        host: host.to_owned(),
        port,
        params,
        headers,
    })
}

/// tel URIs (RFC 3966): the number goes to `user`, `host` stays empty.
fn parse_tel(rest: &str) -> Result<Uri, CodecError> {
    let end = rest.find([';', '?']).unwrap_or(rest.len());
    let number = &rest[..end];
    let ok = !number.is_empty()
        && number.bytes().all(|b| {
            b.is_ascii_hexdigit()
                || matches!(
                    b,
                    b'*' | b'#' | b'+' | b'-' | b'.' | b'(' | b')' | b'p' | b'w'
                )
        });
    if !ok {
        return Err(bad("bad telephone number"));
    }
    let (params, headers) = parse_uri_tail(&rest[end..])?;
    Ok(Uri {
        scheme: Scheme::Tel,
        user: Some(number.to_owned()),
        password: None,
        host: String::new(),
        port: None,
        params,
        headers,
    })
}

impl FromStr for Uri {
    type Err = CodecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uri::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> Uri {
        let u = Uri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(u.to_string(), s, "round trip");
        u
    }

    #[test]
    fn basic_sip() {
        let u = rt("sip:alice:secret@Example.COM:5070;transport=tcp;lr?Subject=hi&Priority=urgent");
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert_eq!(u.host, "Example.COM");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.param("TRANSPORT"), Some(Some("tcp")));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.headers.as_deref(), Some("Subject=hi&Priority=urgent"));
        assert_eq!(u.host_port(), "Example.COM:5070");
    }

    #[test]
    fn torture_users() {
        let u = rt("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert!(u.params.is_empty());
        let u = rt("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com");
        assert_eq!(
            u.user.as_deref(),
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(u.host, "example.com");
        let u = rt("sip:null-%00-null@example.com");
        assert_eq!(u.user.as_deref(), Some("null-%00-null"));
        rt("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
        rt("sips:t.watson@example.org");
    }

    #[test]
    fn ipv6_and_tel() {
        let u = rt("sip:[2001:db8::1]:5060;transport=udp");
        assert_eq!(u.host, "[2001:db8::1]");
        assert_eq!(u.port, Some(5060));
        let u = rt("tel:+1-201-555-0123;phone-context=example.com");
        assert_eq!(u.scheme, Scheme::Tel);
        assert_eq!(u.user.as_deref(), Some("+1-201-555-0123"));
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent"),
            Err(CodecError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            Uri::parse("soap.beep://192.0.2.103:3002"),
            Err(CodecError::UnsupportedScheme(_))
        ));
        for bad in [
            "<sip:user@example.com>",
            "sip:user@example.com; lr",
            "sip:@example.com",
            "sip:user@",
            "sip:user@host:99999",
            "sip:user@[::1",
            "sip:user@host;;lr",
            "sip:a b@host",
            "sip:a%zz@host",
            "sip:user@host?",
            "",
            ":",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
