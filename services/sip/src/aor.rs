//! Address of record.

use std::fmt;
use std::str::FromStr;

use crate::error::CodecError;
use crate::grammar::{hex_val, is_unreserved, trim_ws};
use crate::uri::{Scheme, Uri};

/// An address of record: `sip:user@host` in canonical form so that equal
/// AORs per RFC 3261 §19.1.4 have equal `Aor` values: scheme and host
/// lower-cased, `%XX` escapes of unreserved characters decoded in the user
/// part (user stays case-sensitive), port, parameters and headers dropped
/// (§10.3 step 5: the AOR of a To header is its URI without them), `sips`
/// folded to `sip` (one user, two ways to reach it).
///
/// A `%00` in the user part is kept escaped (RFC 4475 §3.1.1.4 escnull:
/// it must not truncate the user).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aor(String);

impl Aor {
    /// The AOR a URI names. Errors on a URI with no host or a tel URI
    /// (Herald does not map numbers to users).
    pub fn from_uri(uri: &Uri) -> Result<Aor, CodecError> {
        if uri.scheme == Scheme::Tel {
            return Err(CodecError::InvalidUri("a tel URI is not an AOR".into()));
        }
        if uri.host.is_empty() {
            return Err(CodecError::InvalidUri("no host".into()));
        }
        let mut s =
            String::with_capacity(uri.host.len() + 5 + uri.user.as_ref().map_or(0, String::len));
        s.push_str("sip:");
        if let Some(user) = &uri.user {
            push_canonical_user(&mut s, user);
            s.push('@');
        }
        s.push_str(&uri.host.to_ascii_lowercase());
        Ok(Aor(s))
    }

    /// `sip:user@host`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The user part (decoded), if any.
    pub fn user(&self) -> Option<&str> {
        // The canonical user keeps `@` escaped, so the last `@` ends it.
        let rest = self.0.strip_prefix("sip:").unwrap_or(&self.0);
        rest.rfind('@').map(|at| &rest[..at])
    }

    /// The host (domain) part, lower case.
    pub fn domain(&self) -> &str {
        let rest = self.0.strip_prefix("sip:").unwrap_or(&self.0);
        match rest.rfind('@') {
            Some(at) => &rest[at + 1..],
            None => rest,
        }
    }
}

impl fmt::Display for Aor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Aor {
    type Err = CodecError;
    /// Accepts `sip:u@h`, `sips:u@h`, or `<sip:u@h>`; canonicalizes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = trim_ws(s);
        let s = s
            .strip_prefix('<')
            .and_then(|r| r.strip_suffix('>'))
            .unwrap_or(s);
        Aor::from_uri(&Uri::parse(s)?)
    }
}

/// Appends `user` with `%XX` escapes of unreserved characters decoded and
/// the others kept escaped with upper-case hex (RFC 3261 §19.1.4: an
/// escaped unreserved character equals the character; hex is case-blind).
/// `%00` is therefore kept, never decoded into a NUL.
fn push_canonical_user(out: &mut String, user: &str) {
    let b = user.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c != b'%' {
            i += 1;
            continue;
        }
        let (Some(h), Some(l)) = (
            b.get(i + 1).copied().and_then(hex_val),
            b.get(i + 2).copied().and_then(hex_val),
        ) else {
            i += 1;
            continue;
        };
        // `%` and the hex digits are ASCII: slicing here keeps char boundaries.
        out.push_str(&user[start..i]);
        let decoded = h * 16 + l;
        if is_unreserved(decoded) {
            out.push(char::from(decoded));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(h)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(l)]));
        }
        i += 3;
        start = i;
    }
    out.push_str(user.get(start..).unwrap_or(""));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aor(s: &str) -> Aor {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn rfc3261_19_1_4_equal() {
        // Examples of equivalent URIs from RFC 3261 §19.1.4 (AOR view).
        assert_eq!(
            aor("sip:%61lice@atlanta.com;transport=TCP"),
            aor("sip:alice@AtLanTa.CoM;Transport=tcp")
        );
        assert_eq!(
            aor("sip:carol@chicago.com"),
            aor("sip:carol@chicago.com;newparam=5")
        );
        assert_eq!(
            aor("sip:carol@chicago.com"),
            aor("sip:carol@chicago.com;security=on")
        );
        assert_eq!(
            aor("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com"),
            aor("sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com")
        );
        assert_eq!(
            aor("sip:alice@atlanta.com?subject=project%20x&priority=urgent"),
            aor("sip:alice@atlanta.com?priority=urgent&subject=project%20x")
        );
        // Port, password and sips are dropped by the AOR rules of this type.
        assert_eq!(
            aor("sips:alice:pw@atlanta.com:5061"),
            aor("sip:alice@atlanta.com")
        );
        assert_eq!(
            aor("<sip:alice@atlanta.com>").as_str(),
            "sip:alice@atlanta.com"
        );
        // Hex case of kept escapes does not matter.
        assert_eq!(aor("sip:a%2cb@x"), aor("sip:a%2Cb@x"));
    }

    #[test]
    fn rfc3261_19_1_4_not_equal() {
        // User is case-sensitive.
        assert_ne!(aor("sip:ALICE@AtLanTa.CoM"), aor("sip:alice@atlanta.com"));
        // Escaped reserved characters are not their literal form.
        assert_ne!(aor("sip:a%3Bb@x"), aor("sip:a;b@x"));
        assert_ne!(aor("sip:bob@biloxi.com"), aor("sip:bob@biloxi.com.example"));
    }

    #[test]
    fn escnull_is_kept() {
        let a = aor("sip:null-%00-null@example.com");
        assert_eq!(a.as_str(), "sip:null-%00-null@example.com");
        assert_eq!(a.user(), Some("null-%00-null"));
        assert_ne!(
            aor("sip:%00@host5.example.com"),
            aor("sip:%00%00@host5.example.com")
        );
    }

    #[test]
    fn parts() {
        let a = aor("sip:%75se%72@Example.COM:5060;user=phone");
        assert_eq!(a.as_str(), "sip:user@example.com");
        assert_eq!(a.user(), Some("user"));
        assert_eq!(a.domain(), "example.com");
        let d = aor("sip:example.com");
        assert_eq!(d.user(), None);
        assert_eq!(d.domain(), "example.com");
        assert_eq!(d.to_string(), "sip:example.com");
        assert!("tel:+123".parse::<Aor>().is_err());
        assert!("http://x".parse::<Aor>().is_err());
    }
}
