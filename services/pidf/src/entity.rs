//! Comparing a document's `entity` with the presentity it is about.

/// Whether a PIDF `entity` (RFC 3863 §4.1.1: a `pres:` URI, in practice often a `sip:` or
/// `sips:` URI) names `presentity` (the caller's `sip:user@host`).
///
/// Only user and host are compared: the scheme (`pres`, `sip`, `sips`), a password, the
/// port, URI parameters and headers are ignored, so `pres:alice@example.com` matches
/// `sip:alice@example.com;transport=tcp`. The host is compared case-insensitively, the user
/// case-sensitively after decoding `%XX` escapes (RFC 3261 §19.1.4). Any other scheme, or
/// a URI without a host, matches nothing.
pub fn entity_matches(doc_entity: &str, presentity: &str) -> bool {
    match (UserHost::of(doc_entity), UserHost::of(presentity)) {
        (Some(a), Some(b)) => a.user == b.user && a.host.eq_ignore_ascii_case(b.host),
        _ => false,
    }
}

struct UserHost<'a> {
    /// Decoded user part; `None` when the URI has none.
    user: Option<Vec<u8>>,
    host: &'a str,
}

impl<'a> UserHost<'a> {
    fn of(uri: &'a str) -> Option<UserHost<'a>> {
        let (scheme, rest) = uri.trim().split_once(':')?;
        if !["pres", "sip", "sips"]
            .iter()
            .any(|s| scheme.eq_ignore_ascii_case(s))
        {
            return None;
        }
        // The user part may itself contain ';' and '?' (RFC 3261 user-unreserved), so split
        // at '@' before cutting parameters and headers off the host part.
        let (user, hostport) = match rest.split_once('@') {
            Some((userinfo, hostport)) => {
                let user = userinfo
                    .split_once(':')
                    .map_or(userinfo, |(u, _password)| u);
                (Some(percent_decode(user)), hostport)
            }
            None => (None, rest),
        };
        let hostport = hostport.split([';', '?']).next().unwrap_or_default();
        let host = if hostport.starts_with('[') {
            // IPv6 reference: keep the brackets, drop a port after them.
            match hostport.find(']') {
                Some(end) => &hostport[..=end],
                None => return None,
            }
        } else {
            hostport.split(':').next().unwrap_or_default()
        };
        if host.is_empty() {
            return None;
        }
        Some(UserHost { user, host })
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::entity_matches;

    #[test]
    fn pres_matches_sip() {
        assert!(entity_matches(
            "pres:alice@example.com",
            "sip:alice@example.com"
        ));
        assert!(entity_matches(
            "sip:alice@example.com",
            "sip:alice@example.com"
        ));
        assert!(entity_matches(
            "sips:alice@example.com",
            "sip:alice@example.com"
        ));
    }

    #[test]
    fn host_case_insensitive_user_case_sensitive() {
        assert!(entity_matches(
            "pres:alice@EXAMPLE.com",
            "sip:alice@example.COM"
        ));
        assert!(!entity_matches(
            "pres:Alice@example.com",
            "sip:alice@example.com"
        ));
        assert!(!entity_matches(
            "PRES:Alice@example.com",
            "sip:alice@example.com"
        ));
        assert!(entity_matches(
            "PRES:alice@example.com",
            "SIP:alice@example.com"
        ));
    }

    #[test]
    fn params_port_and_headers_ignored() {
        assert!(entity_matches(
            "sip:alice@example.com:5061;transport=tls",
            "sip:alice@example.com"
        ));
        assert!(entity_matches(
            "pres:alice@example.com?subject=x",
            "sip:alice@example.com"
        ));
        assert!(entity_matches(
            "sip:alice:secret@example.com",
            "sip:alice@example.com"
        ));
        assert!(entity_matches(
            "sip:alice@[2001:db8::1]:5060",
            "sip:alice@[2001:db8::1]"
        ));
    }

    #[test]
    fn escapes_decoded() {
        assert!(entity_matches(
            "sip:al%69ce@example.com",
            "sip:alice@example.com"
        ));
        assert!(!entity_matches(
            "sip:al%49ce@example.com",
            "sip:alice@example.com"
        ));
    }

    #[test]
    fn mismatches() {
        assert!(!entity_matches(
            "pres:bob@example.com",
            "sip:alice@example.com"
        ));
        assert!(!entity_matches(
            "pres:alice@example.org",
            "sip:alice@example.com"
        ));
        assert!(!entity_matches(
            "mailto:alice@example.com",
            "sip:alice@example.com"
        ));
        assert!(!entity_matches(
            "alice@example.com",
            "sip:alice@example.com"
        ));
        assert!(!entity_matches("sip:example.com", "sip:alice@example.com"));
        assert!(!entity_matches("sip:alice@", "sip:alice@"));
        assert!(!entity_matches("", ""));
        assert!(!entity_matches("sip:alice@[::1", "sip:alice@[::1"));
    }
}
