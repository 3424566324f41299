//! Reading the Digest credentials of an Authorization or
//! Proxy-Authorization header (RFC 3261 §25.1 `digest-response`,
//! RFC 7616 §3.4).

use thiserror::Error;

use crate::Algorithm;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CredentialsError {
    #[error("not a Digest credential")]
    NotDigest,
    #[error("malformed parameter list")]
    Syntax,
    #[error("missing parameter {0}")]
    Missing(&'static str),
    #[error("bad nonce-count")]
    BadNonceCount,
}

/// One Digest response as the client sent it, unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    /// `None` when the client named an algorithm we do not offer.
    pub algorithm: Option<Algorithm>,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<u32>,
}

impl DigestCredentials {
    /// Parses `Digest username="...", realm="...", ...`.
    pub fn parse(value: &str) -> Result<Self, CredentialsError> {
        let value = value.trim();
        let scheme_end = value.find(char::is_whitespace).unwrap_or(value.len());
        if !value[..scheme_end].eq_ignore_ascii_case("digest") {
            return Err(CredentialsError::NotDigest);
        }
        let params = params(&value[scheme_end..])?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let need = |name: &'static str| get(name).ok_or(CredentialsError::Missing(name));
        let nc = match get("nc") {
            // RFC 7616 §3.4: exactly 8 hex digits.
            Some(nc) if nc.len() == 8 => {
                Some(u32::from_str_radix(&nc, 16).map_err(|_| CredentialsError::BadNonceCount)?)
            }
            Some(_) => return Err(CredentialsError::BadNonceCount),
            None => None,
        };
        Ok(DigestCredentials {
            username: need("username")?,
            realm: need("realm")?,
            nonce: need("nonce")?,
            uri: need("uri")?,
            response: need("response")?,
            // Absent means MD5 (RFC 7616 §3.3).
            algorithm: match get("algorithm") {
                None => Some(Algorithm::Md5),
                Some(a) => Algorithm::from_token(&a),
            },
            cnonce: get("cnonce"),
            opaque: get("opaque"),
            qop: get("qop"),
            nc,
        })
    }
}

/// `name=value` pairs separated by commas; values are tokens or quoted
/// strings. A closing quote is one followed by a comma or the end, so an
/// unescaped quote inside a value (XCAP clients put node selectors such as
/// `[@id="x"]` into `uri=` as they are) does not end it early.
fn params(s: &str) -> Result<Vec<(String, String)>, CredentialsError> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or(CredentialsError::Syntax)?;
        let name = rest[..eq].trim();
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ',') {
            return Err(CredentialsError::Syntax);
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = closing_quote(quoted).ok_or(CredentialsError::Syntax)?;
            value = unescape(&quoted[..end]);
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.push((name.to_string(), value));
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => {}
            None => return Err(CredentialsError::Syntax),
        }
    }
    Ok(out)
}

/// Index of the quote that closes a quoted string starting after its
/// opening quote: not escaped, and followed by optional space then a comma
/// or the end.
fn closing_quote(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => {
                let after = s[i + 1..].trim_start();
                if after.is_empty() || after.starts_with(',') {
                    return Some(i);
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// RFC 3261 §25.1 quoted-pair: `\x` stands for `x`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Quotes `s` as a quoted-string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_sip_authorization() {
        let c = DigestCredentials::parse(
            r#"Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        assert_eq!(c.username, "bob");
        assert_eq!(c.realm, "biloxi.com");
        assert_eq!(c.uri, "sip:bob@biloxi.com");
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.nc, Some(1));
        assert_eq!(c.algorithm, Some(Algorithm::Md5));
        assert_eq!(c.cnonce.as_deref(), Some("0a4f113b"));
    }

    #[test]
    fn unescaped_quotes_inside_a_uri_do_not_end_it() {
        let c = DigestCredentials::parse(
            r#"digest username="a", realm="r", nonce="n", uri="/xcap-root/pres-rules/users/sip:a@x/index/~~/ruleset/rule[@id="x"]", response="00", algorithm=SHA-256"#,
        )
        .unwrap();
        assert_eq!(
            c.uri,
            r#"/xcap-root/pres-rules/users/sip:a@x/index/~~/ruleset/rule[@id="x"]"#
        );
        assert_eq!(c.algorithm, Some(Algorithm::Sha256));
    }

    #[test]
    fn escapes_unknown_algorithms_and_errors() {
        let c = DigestCredentials::parse(
            r#"Digest username="a\"b", realm="r", nonce="n", uri="u", response="x", algorithm=SHA-512-256"#,
        )
        .unwrap();
        assert_eq!(c.username, "a\"b");
        assert_eq!(c.algorithm, None);
        assert_eq!(
            DigestCredentials::parse("Basic YWxhZGRpbjpvcGVuc2VzYW1l"),
            Err(CredentialsError::NotDigest)
        );
        assert_eq!(
            DigestCredentials::parse(r#"Digest realm="r", nonce="n", uri="u", response="x""#),
            Err(CredentialsError::Missing("username"))
        );
        assert_eq!(
            DigestCredentials::parse(r#"Digest username "a""#),
            Err(CredentialsError::Syntax)
        );
        assert!(matches!(
            DigestCredentials::parse(
                r#"Digest username="a", realm="r", nonce="n", uri="u", response="x", nc=1"#
            ),
            Err(CredentialsError::BadNonceCount)
        ));
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
