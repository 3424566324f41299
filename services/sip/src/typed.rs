//! Typed views of the headers Herald uses. Each accessor on [`Headers`]
//! parses on demand and reports a grammar error as
//! [`CodecError::InvalidHeader`] (400).

use std::borrow::Cow;
use std::fmt;

use crate::error::CodecError;
use crate::grammar::{
    is_token_byte, is_ws, parse_digits, parse_params, parse_quoted, parse_u32_saturating,
    scan_params, set_param, split_top_level, trim_ws, trim_ws_start, write_params, write_quoted,
};
use crate::header::{HeaderName, Headers};
use crate::message::Method;
use crate::uri::{is_scheme, take_host, Uri};

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
        let parts = split_name_addr(s).map_err(|r| invalid("name-addr", r))?;
        let uri = Uri::parse(parts.uri)?;
        let params = parse_params(parts.params).map_err(|r| invalid("name-addr", r))?;
        Ok(NameAddr {
            display: parts.display.map(Cow::into_owned),
            uri,
            params,
        })
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
        set_param(&mut self.params, name, value)
    }
}

impl fmt::Display for NameAddr {
    /// Always writes the `<uri>` form (safe whatever the URI holds), with
    /// the display name quoted when present, then the parameters (values
    /// that need it quoted again).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write_quoted(f, d)?;
            f.write_str(" ")?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

/// One Contact value of a REGISTER or dialog request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact(pub NameAddr);

impl Contact {
    /// `expires` parameter (RFC 3261 §10.2.1.1), if present and numeric.
    /// Overlarge values read as `u32::MAX` (as [`Headers::expires`]).
    pub fn expires(&self) -> Option<u32> {
        self.0
            .param("expires")
            .flatten()
            .and_then(|v| parse_u32_saturating(trim_ws(v)))
    }
    /// `q` parameter as thousandths (q=0.7 -> 700); `None` if absent.
    /// Errors on a malformed value.
    pub fn q(&self) -> Result<Option<u16>, CodecError> {
        match self.0.param("q") {
            None => Ok(None),
            Some(v) => v
                .and_then(parse_qvalue)
                .map(Some)
                .ok_or_else(|| invalid("Contact", "bad q value")),
        }
    }
    /// `+sip.instance` (RFC 5626 §4.1), unquoted (`<urn:uuid:...>`).
    pub fn sip_instance(&self) -> Option<&str> {
        self.0.param("+sip.instance").flatten()
    }
    /// `reg-id` (RFC 5626 §4.2).
    pub fn reg_id(&self) -> Option<u32> {
        self.0.param("reg-id").flatten().and_then(parse_digits)
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
        let bad = |r: &str| invalid("Via", r);
        // sent-protocol = name SLASH version SLASH transport, SLASH = SWS "/" SWS
        // (RFC 4475 wsinv folds inside it).
        let (name, r) = take_token(trim_ws(s));
        let r = trim_ws_start(r)
            .strip_prefix('/')
            .ok_or_else(|| bad("expected '/'"))?;
        let (version, r) = take_token(trim_ws_start(r));
        let r = trim_ws_start(r)
            .strip_prefix('/')
            .ok_or_else(|| bad("expected '/'"))?;
        let (transport, r) = take_token(trim_ws_start(r));
        if name.is_empty() || version.is_empty() || transport.is_empty() {
            return Err(bad("bad sent-protocol"));
        }
        if !r.starts_with([' ', '\t']) {
            return Err(bad("expected LWS before sent-by"));
        }
        let (host, r) = take_host(trim_ws_start(r)).map_err(|_| bad("bad sent-by host"))?;
        let after = trim_ws_start(r);
        let (port, r) = match after.strip_prefix(':') {
            Some(p) => {
                let p = trim_ws_start(p);
                let len = p.bytes().take_while(u8::is_ascii_digit).count();
                let port = parse_digits::<u16>(&p[..len]).ok_or_else(|| bad("bad port"))?;
                (Some(port), &p[len..])
            }
            None => (None, r),
        };
        let params = parse_params(r).map_err(bad)?;
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            host: host.to_owned(),
            port,
            params,
        })
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
        set_param(&mut self.params, name, value)
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
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write_params(f, &self.params)
    }
}

/// CSeq (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// 32-bit unsigned, < 2^31 for requests (RFC 3261 §8.1.1.5).
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`. The number must fit 32 bits (RFC 3261
    /// §8.1.1.5, RFC 4475 scalar02/scalarlg).
    pub fn parse(s: &str) -> Result<CSeq, CodecError> {
        let s = trim_ws(s);
        let len = s.bytes().take_while(u8::is_ascii_digit).count();
        let seq = parse_digits::<u32>(&s[..len])
            .ok_or_else(|| invalid("CSeq", "sequence number is not a 32-bit number"))?;
        let rest = &s[len..];
        if !rest.starts_with([' ', '\t']) {
            return Err(invalid("CSeq", "expected LWS after the number"));
        }
        let method = Method::parse(trim_ws(rest)).ok_or_else(|| invalid("CSeq", "bad method"))?;
        Ok(CSeq { seq, method })
    }
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
        let (package, rest) = take_token(trim_ws(s));
        if package.is_empty() {
            return Err(invalid("Event", "missing event type"));
        }
        let mut params = parse_params(rest).map_err(|r| invalid("Event", r))?;
        let id = params
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case("id"))
            .map(|i| params.remove(i).1)
            .map(|v| v.unwrap_or_default());
        Ok(EventHeader {
            package: package.to_ascii_lowercase(),
            id,
            params,
        })
    }
}

impl fmt::Display for EventHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.package)?;
        if let Some(id) = &self.id {
            write_params(f, &[("id".to_owned(), Some(id.clone()))])?;
        }
        write_params(f, &self.params)
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
    /// `active` and `pending` must carry `expires` (RFC 6665 §4.1.3 SHOULD;
    /// Herald always sends it).
    pub fn parse(s: &str) -> Result<SubscriptionState, CodecError> {
        let bad = |r: &str| invalid("Subscription-State", r);
        let (state, rest) = take_token(trim_ws(s));
        let params = parse_params(rest).map_err(bad)?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.as_deref())
        };
        let num = |name: &str| -> Result<Option<u32>, CodecError> {
            match get(name) {
                None => Ok(None),
                Some(v) => parse_u32_saturating(v)
                    .map(Some)
                    .ok_or_else(|| bad("bad number")),
            }
        };
        if state.eq_ignore_ascii_case("active") {
            let expires = num("expires")?.ok_or_else(|| bad("missing expires"))?;
            Ok(SubscriptionState::Active { expires })
        } else if state.eq_ignore_ascii_case("pending") {
            let expires = num("expires")?.ok_or_else(|| bad("missing expires"))?;
            Ok(SubscriptionState::Pending { expires })
        } else if state.eq_ignore_ascii_case("terminated") {
            Ok(SubscriptionState::Terminated {
                reason: get("reason").map(str::to_owned),
                retry_after: num("retry-after")?,
            })
        } else {
            Err(bad("unknown substate"))
        }
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscriptionState::Active { expires } => write!(f, "active;expires={expires}"),
            SubscriptionState::Pending { expires } => write!(f, "pending;expires={expires}"),
            SubscriptionState::Terminated {
                reason,
                retry_after,
            } => {
                f.write_str("terminated")?;
                if let Some(r) = reason {
                    write_params(f, &[("reason".to_owned(), Some(r.clone()))])?;
                }
                if let Some(r) = retry_after {
                    write!(f, ";retry-after={r}")?;
                }
                Ok(())
            }
        }
    }
}

/// Typed accessors. List headers may arrive as several lines or as one
/// comma-joined line; both read the same.
impl Headers {
    /// Every Via value, topmost first. Error if none (mandatory).
    pub fn vias(&self) -> Result<Vec<Via>, CodecError> {
        let values = self.strict_values(&HeaderName::Via, "Via")?;
        if values.is_empty() {
            return Err(CodecError::MissingHeader("Via"));
        }
        values.into_iter().map(Via::parse).collect()
    }
    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via, CodecError> {
        let line = self
            .get(&HeaderName::Via)
            .ok_or(CodecError::MissingHeader("Via"))?;
        let first = split_top_level(line, b',').into_iter().next().unwrap_or("");
        Via::parse(first)
    }
    pub fn from_addr(&self) -> Result<NameAddr, CodecError> {
        let v = self
            .get(&HeaderName::From)
            .ok_or(CodecError::MissingHeader("From"))?;
        NameAddr::parse(v).map_err(|e| rename(e, "From"))
    }
    pub fn to_addr(&self) -> Result<NameAddr, CodecError> {
        let v = self
            .get(&HeaderName::To)
            .ok_or(CodecError::MissingHeader("To"))?;
        NameAddr::parse(v).map_err(|e| rename(e, "To"))
    }
    pub fn call_id(&self) -> Result<&str, CodecError> {
        let v = self
            .get(&HeaderName::CallId)
            .ok_or(CodecError::MissingHeader("Call-ID"))?;
        let v = trim_ws(v);
        if v.is_empty() || v.bytes().any(is_ws) {
            return Err(invalid("Call-ID", "empty or contains whitespace"));
        }
        Ok(v)
    }
    pub fn cseq(&self) -> Result<CSeq, CodecError> {
        let v = self
            .get(&HeaderName::CSeq)
            .ok_or(CodecError::MissingHeader("CSeq"))?;
        CSeq::parse(v)
    }
    /// Max-Forwards, `None` if absent; error if not a number 0..=255.
    pub fn max_forwards(&self) -> Result<Option<u8>, CodecError> {
        match self.get(&HeaderName::MaxForwards) {
            None => Ok(None),
            Some(v) => parse_digits::<u8>(trim_ws(v))
                .map(Some)
                .ok_or_else(|| invalid("Max-Forwards", "not a number 0..=255")),
        }
    }
    /// Contact header(s); `None` if absent.
    pub fn contacts(&self) -> Result<Option<ContactList>, CodecError> {
        if !self.contains(&HeaderName::Contact) {
            return Ok(None);
        }
        let values = self.strict_values(&HeaderName::Contact, "Contact")?;
        if values.contains(&"*") {
            // RFC 3261 §10.2.2: `*` stands alone.
            return if values.len() == 1 {
                Ok(Some(ContactList::Star))
            } else {
                Err(invalid("Contact", "'*' mixed with other contacts"))
            };
        }
        values
            .into_iter()
            .map(|v| {
                NameAddr::parse(v)
                    .map(Contact)
                    .map_err(|e| rename(e, "Contact"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|l| Some(ContactList::List(l)))
    }
    /// Expires as delta-seconds; `None` if absent. RFC 3261 §20.19 allows
    /// values up to 2^32-1; larger ones read as u32::MAX (§10.2.1.1 says
    /// treat them as a large value, see RFC 4475 scalarlg).
    pub fn expires(&self) -> Result<Option<u32>, CodecError> {
        match self.get(&HeaderName::Expires) {
            None => Ok(None),
            Some(v) => parse_u32_saturating(trim_ws(v))
                .map(Some)
                .ok_or_else(|| invalid("Expires", "not delta-seconds")),
        }
    }
    pub fn event(&self) -> Result<Option<EventHeader>, CodecError> {
        self.get(&HeaderName::Event)
            .map(EventHeader::parse)
            .transpose()
    }
    /// Content-Type media type, lower-cased, without parameters
    /// (`application/pidf+xml`).
    pub fn content_type(&self) -> Option<String> {
        self.get(&HeaderName::ContentType)
            .map(media_type)
            .filter(|m| !m.is_empty())
    }
    /// Accept media ranges, lower-cased, without parameters.
    pub fn accept(&self) -> Vec<String> {
        self.get_list(&HeaderName::Accept)
            .into_iter()
            .map(media_type)
            .filter(|m| !m.is_empty())
            .collect()
    }
    /// Allow-Events tokens (lower-cased, as [`EventHeader::package`]).
    pub fn allow_events(&self) -> Vec<String> {
        self.lower_tokens(&HeaderName::AllowEvents)
    }
    pub fn routes(&self) -> Result<Vec<NameAddr>, CodecError> {
        self.name_addrs(&HeaderName::Route, "Route")
    }
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, CodecError> {
        self.name_addrs(&HeaderName::RecordRoute, "Record-Route")
    }
    /// Supported option tags (lower-cased).
    pub fn supported(&self) -> Vec<String> {
        self.lower_tokens(&HeaderName::Supported)
    }
    /// Require option tags (lower-cased).
    pub fn require(&self) -> Vec<String> {
        self.lower_tokens(&HeaderName::Require)
    }
    /// Proxy-Require option tags (lower-cased).
    pub fn proxy_require(&self) -> Vec<String> {
        self.lower_tokens(&HeaderName::ProxyRequire)
    }

    /// Every element of every line of a list header; an empty element
    /// (`a,,b`, RFC 4475 badinv01) is an error.
    fn strict_values(
        &self,
        name: &HeaderName,
        hname: &'static str,
    ) -> Result<Vec<&str>, CodecError> {
        let mut out = Vec::new();
        for h in self.iter().filter(|h| &h.name == name) {
            for v in split_top_level(&h.value, b',') {
                if v.is_empty() {
                    return Err(invalid(hname, "empty list element"));
                }
                out.push(v);
            }
        }
        Ok(out)
    }

    fn name_addrs(
        &self,
        name: &HeaderName,
        hname: &'static str,
    ) -> Result<Vec<NameAddr>, CodecError> {
        self.strict_values(name, hname)?
            .into_iter()
            .map(|v| NameAddr::parse(v).map_err(|e| rename(e, hname)))
            .collect()
    }

    fn lower_tokens(&self, name: &HeaderName) -> Vec<String> {
        self.get_list(name)
            .into_iter()
            .map(str::to_ascii_lowercase)
            .collect()
    }
}

fn invalid(header: &'static str, reason: &str) -> CodecError {
    CodecError::InvalidHeader {
        header,
        reason: reason.to_owned(),
    }
}

/// Reports a value error under the header it came from (400).
fn rename(e: CodecError, header: &'static str) -> CodecError {
    match e {
        CodecError::InvalidHeader { reason, .. } => CodecError::InvalidHeader { header, reason },
        CodecError::InvalidUri(r) => CodecError::InvalidHeader {
            header,
            reason: format!("invalid URI: {r}"),
        },
        CodecError::UnsupportedScheme(sch) => CodecError::InvalidHeader {
            header,
            reason: format!("unsupported URI scheme {sch}"),
        },
        other => other,
    }
}

fn take_token(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(|&b| is_token_byte(b)).count();
    (&s[..n], &s[n..])
}

/// `type/subtype` lower-cased, parameters and whitespace dropped.
fn media_type(v: &str) -> String {
    let main = v.find(';').map_or(v, |i| &v[..i]);
    match main.split_once('/') {
        Some((t, st)) => format!("{}/{}", trim_ws(t), trim_ws(st)).to_ascii_lowercase(),
        None => trim_ws(main).to_ascii_lowercase(),
    }
}

/// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), as thousandths.
fn parse_qvalue(v: &str) -> Option<u16> {
    let v = trim_ws(v);
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    let mut mul: u16 = 100;
    for b in frac.bytes() {
        thousandths += u16::from(b - b'0') * mul;
        mul /= 10;
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The pieces of a `name-addr` / `addr-spec` value, URI not yet parsed.
struct NameAddrParts<'a> {
    display: Option<Cow<'a, str>>,
    uri: &'a str,
    params: &'a str,
}

fn split_name_addr(s: &str) -> Result<NameAddrParts<'_>, &'static str> {
    let s = trim_ws(s);
    if s.is_empty() {
        return Err("empty value");
    }
    if s.starts_with('"') {
        let (display, rest) = parse_quoted(s)?;
        // RFC 4475 lwsdisp: LWS before `<` is optional in practice.
        let (uri, params) = bracketed(trim_ws_start(rest))?;
        return Ok(NameAddrParts {
            display: Some(display),
            uri,
            params,
        });
    }
    // display-name as tokens: everything up to `<` must be token or LWS
    // (RFC 4475 baddn: "Bell, Alexander" unquoted is rejected here). UTF-8
    // letters are let through: clients send `Jörg <sip:...>` unquoted.
    let stop = s
        .bytes()
        .position(|b| !(is_token_byte(b) || is_ws(b) || b >= 0x80));
    if let Some(i) = stop {
        if s.as_bytes().get(i) == Some(&b'<') {
            let d = trim_ws(&s[..i]);
            let (uri, params) = bracketed(&s[i..])?;
            return Ok(NameAddrParts {
                display: (!d.is_empty()).then_some(Cow::Borrowed(d)),
                uri,
                params,
            });
        }
    }
    // addr-spec: RFC 3261 §20.10, its `;` parameters are header parameters,
    // and a URI with `?` or `,` must be inside `<>` (RFC 4475 regbadct).
    let end = s.find([';', ' ', '\t']).unwrap_or(s.len());
    let uri = &s[..end];
    if uri.contains(['?', ',', '<', '>', '"']) {
        return Err("addr-spec with reserved characters must be enclosed in <>");
    }
    Ok(NameAddrParts {
        display: None,
        uri,
        params: &s[end..],
    })
}

fn bracketed(s: &str) -> Result<(&str, &str), &'static str> {
    let r = s.strip_prefix('<').ok_or("expected '<'")?;
    let end = r.find('>').ok_or("missing '>'")?;
    Ok((&r[..end], &r[end + 1..]))
}

/// Checks a From/To value against the name-addr grammar with any URI
/// scheme (RFC 4475 unksm2: `To: isbn:...` parses; the registrar rejects
/// it later).
pub(crate) fn check_name_addr(s: &str) -> Result<(), &'static str> {
    let parts = split_name_addr(s)?;
    let u = parts.uri;
    let colon = u.find(':').ok_or("URI without scheme")?;
    if !is_scheme(&u[..colon]) || colon + 1 == u.len() {
        return Err("bad URI");
    }
    if u.bytes()
        .any(|b| b <= b' ' || b >= 0x7f || matches!(b, b'<' | b'>' | b'"'))
    {
        return Err("bad character in URI");
    }
    scan_params(parts.params, |_, _| {})
}

/// Whether a name-addr value carries the header parameter `name`
/// (lenient: an unparsable value reads as not having it).
pub(crate) fn header_param_present(value: &str, name: &str) -> bool {
    let Ok(parts) = split_name_addr(value) else {
        return false;
    };
    let mut found = false;
    let _ = scan_params(parts.params, |n, _| {
        found |= n.eq_ignore_ascii_case(name);
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.push(HeaderName::parse(n), *v);
        }
        h
    }

    #[test]
    fn via_ipv6_received_rport() {
        let mut v = Via::parse("SIP/2.0/tcp [2001:db8::1]:5060;branch=z9hG4bKabc;rport").unwrap();
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.host, "[2001:db8::1]");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.sent_by(), "[2001:db8::1]:5060");
        assert_eq!(v.branch(), Some("z9hG4bKabc"));
        assert_eq!(v.param("rport"), Some(None));
        v.set_param("received", Some("2001:db8::9"));
        v.set_param("rport", Some("40000"));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bKabc;rport=40000;received=2001:db8::9"
        );
        assert_eq!(Via::parse(&v.to_string()).unwrap(), v);
    }

    #[test]
    fn via_with_lws_everywhere() {
        let v = Via::parse("SIP  /   2.0  /UDP    192.0.2.2 : 5062 ; branch = 390skdjuw").unwrap();
        assert_eq!(
            (v.transport.as_str(), v.host.as_str(), v.port),
            ("UDP", "192.0.2.2", Some(5062))
        );
        assert_eq!(v.branch(), Some("390skdjuw"));
        for bad in [
            "SIP/2.0/UDP 192.0.2.15;;",
            "SIP/2.0/UDP",
            "SIP/2.0 host",
            "SIP/2.0/UDPhost",
            "SIP/2.0/UDP host:70000",
            "SIP/2.0/UDP [::1",
            "SIP/2.0/UDP host junk",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn via_list_split() {
        let h = headers(&[
            ("v", "SIP/2.0/TCP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com;branch=z9hG4bK2"),
            ("Via", "SIP/2.0/UDP c.example.com;branch=z9hG4bK3;received=\"x,y\""),
        ]);
        let vias = h.vias().unwrap();
        assert_eq!(
            vias.iter().map(|v| v.host.as_str()).collect::<Vec<_>>(),
            ["a.example.com", "b.example.com", "c.example.com"]
        );
        assert_eq!(vias[2].param("received"), Some(Some("x,y")));
        assert_eq!(h.top_via().unwrap().branch(), Some("z9hG4bK1"));
        assert!(headers(&[("Via", "SIP/2.0/UDP a;branch=1,,SIP/2.0/UDP b")])
            .vias()
            .is_err());
        assert_eq!(Headers::new().vias(), Err(CodecError::MissingHeader("Via")));
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(n.display.as_deref(), Some("J Rosenberg \\\""));
        assert_eq!(n.tag(), Some("98asjd8"));
        assert_eq!(
            n.to_string(),
            r#""J Rosenberg \\\"" <sip:jdrosen@example.com>;tag=98asjd8"#
        );
        assert_eq!(NameAddr::parse(&n.to_string()).unwrap(), n);

        // addr-spec: URI parameters after it are header parameters (RFC 3261 §20.10).
        let n = NameAddr::parse("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert!(n.uri.params.is_empty());
        assert_eq!(n.param("unknownparam"), Some(None));
        let n = NameAddr::parse("<sip:+19725552222@gw1.example.net;unknownparam>").unwrap();
        assert_eq!(n.uri.param("unknownparam"), Some(None));
        assert!(n.params.is_empty());

        let n = NameAddr::parse("Jörg Müller <sip:j@example.com>").unwrap();
        assert_eq!(n.display.as_deref(), Some("Jörg Müller"));
        assert_eq!(n.to_string(), "\"Jörg Müller\" <sip:j@example.com>");
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        let n = NameAddr::parse("token1~` token2'+_ <sip:mundane@example.com>").unwrap();
        assert_eq!(n.display.as_deref(), Some("token1~` token2'+_"));

        let mut n = NameAddr::parse("<sip:a@b>").unwrap();
        n.set_param("tag", Some("x"));
        n.set_param("TAG", Some("y"));
        assert_eq!(n.to_string(), "<sip:a@b>;tag=y");

        for bad in [
            "\"Mr. J. User <sip:j.user@example.com>",
            "Bell, Alexander <sip:a.g.bell@example.com>",
            "\"Watson, Thomas\" < sip:t.watson@example.org >",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "<sip:a@b>;;;",
            "<sip:a@b",
            "",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn contacts() {
        let h = headers(&[
            (
                "m",
                r#""Quoted string \"\"" <sip:jdrosen@example.com> ; newparam = newvalue ; secondparam ; q = 0.33"#,
            ),
            (
                "Contact",
                r#"<sip:a@192.0.2.1;transport=tcp;ob>;expires=600;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1, <sip:b@h>;q=1"#,
            ),
        ]);
        let Some(ContactList::List(list)) = h.contacts().unwrap() else {
            panic!("list expected")
        };
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].q().unwrap(), Some(330));
        assert_eq!(list[0].0.param("newparam"), Some(Some("newvalue")));
        assert_eq!(list[1].expires(), Some(600));
        assert_eq!(
            list[1].sip_instance(),
            Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>")
        );
        assert_eq!(list[1].reg_id(), Some(1));
        assert_eq!(list[1].q().unwrap(), None);
        assert_eq!(list[2].q().unwrap(), Some(1000));
        assert!(list[1]
            .0
            .to_string()
            .contains(r#";+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>""#));

        assert_eq!(
            headers(&[("Contact", " * ")]).contacts().unwrap(),
            Some(ContactList::Star)
        );
        assert!(headers(&[("Contact", "*, <sip:a@b>")]).contacts().is_err());
        assert_eq!(Headers::new().contacts().unwrap(), None);

        let big = headers(&[("Contact", "<sip:a@b>;expires=280297596632815;q=2")]);
        let Some(ContactList::List(l)) = big.contacts().unwrap() else {
            panic!()
        };
        assert_eq!(l[0].expires(), Some(u32::MAX));
        assert!(l[0].q().is_err());
        for (q, want) in [
            ("0", Some(0)),
            ("0.5", Some(500)),
            ("0.001", Some(1)),
            ("1.000", Some(1000)),
            ("1.5", None),
            ("0.0001", None),
            ("x", None),
        ] {
            assert_eq!(parse_qvalue(q), want, "{q}");
        }
    }

    #[test]
    fn scalars() {
        let h = headers(&[
            ("Expires", "10000000000000000000000"),
            ("Max-Forwards", "0068"),
            ("cseq", "0009 INVITE"),
            ("i", " abc@def "),
        ]);
        assert_eq!(h.expires().unwrap(), Some(u32::MAX));
        assert_eq!(h.max_forwards().unwrap(), Some(68));
        assert_eq!(
            h.cseq().unwrap(),
            CSeq {
                seq: 9,
                method: Method::Invite
            }
        );
        assert_eq!(h.call_id().unwrap(), "abc@def");
        assert!(headers(&[("Max-Forwards", "300")]).max_forwards().is_err());
        assert!(headers(&[("Expires", "soon")]).expires().is_err());
        assert!(headers(&[("CSeq", "36893488147419103232 REGISTER")])
            .cseq()
            .is_err());
        assert!(headers(&[("CSeq", "1REGISTER")]).cseq().is_err());
        assert_eq!(
            CSeq {
                seq: 4,
                method: Method::Notify
            }
            .to_string(),
            "4 NOTIFY"
        );
        assert_eq!(Headers::new().expires().unwrap(), None);
        assert_eq!(
            Headers::new().cseq(),
            Err(CodecError::MissingHeader("CSeq"))
        );
    }

    #[test]
    fn from_to_errors_name_the_header() {
        let h = headers(&[
            ("To", "isbn:2983792873"),
            ("From", "<http://www.example.com>;tag=1"),
        ]);
        assert!(matches!(
            h.to_addr(),
            Err(CodecError::InvalidHeader { header: "To", .. })
        ));
        assert!(matches!(
            h.from_addr(),
            Err(CodecError::InvalidHeader { header: "From", .. })
        ));
        assert_eq!(
            Headers::new().to_addr(),
            Err(CodecError::MissingHeader("To"))
        );
        assert!(check_name_addr("isbn:2983792873").is_ok());
        assert!(check_name_addr("<http://www.example.com>;tag=3234233").is_ok());
    }

    #[test]
    fn event_and_subscription_state() {
        let e = EventHeader::parse("Presence.WINFO ; id=7;foo").unwrap();
        assert_eq!(e.package, "presence.winfo");
        assert_eq!(e.id.as_deref(), Some("7"));
        assert_eq!(e.params, vec![("foo".to_owned(), None)]);
        assert_eq!(e.to_string(), "presence.winfo;id=7;foo");
        assert!(EventHeader::parse(";id=1").is_err());
        assert_eq!(
            headers(&[("o", "presence")])
                .event()
                .unwrap()
                .unwrap()
                .package,
            "presence"
        );

        for (s, want) in [
            (
                "active;expires=3600",
                SubscriptionState::Active { expires: 3600 },
            ),
            (
                "pending; expires = 10",
                SubscriptionState::Pending { expires: 10 },
            ),
            (
                "terminated;reason=timeout",
                SubscriptionState::Terminated {
                    reason: Some("timeout".into()),
                    retry_after: None,
                },
            ),
            (
                "terminated;reason=probation;retry-after=30",
                SubscriptionState::Terminated {
                    reason: Some("probation".into()),
                    retry_after: Some(30),
                },
            ),
            (
                "terminated",
                SubscriptionState::Terminated {
                    reason: None,
                    retry_after: None,
                },
            ),
        ] {
            let got = SubscriptionState::parse(s).unwrap();
            assert_eq!(got, want, "{s}");
            assert_eq!(SubscriptionState::parse(&got.to_string()).unwrap(), want);
        }
        assert!(SubscriptionState::parse("active").is_err());
        assert!(SubscriptionState::parse("bogus;expires=1").is_err());
    }

    #[test]
    fn token_and_media_lists() {
        let h = headers(&[
            ("Accept", "application/sdp, Application/PIDF+XML;q=0.5,"),
            ("Accept", "multipart/related"),
            ("c", "Application / PIDF+xml ; charset=utf-8"),
            ("u", "presence, Dialog"),
            ("k", "path, GRUU,outbound"),
            ("Require", "100rel"),
            (
                "Proxy-Require",
                "noProxiesSupportThis, norDoAnyProxiesSupportThis",
            ),
            ("Route", "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"),
            ("Record-Route", "<sip:rr.example.com;lr>"),
        ]);
        assert_eq!(
            h.accept(),
            [
                "application/sdp",
                "application/pidf+xml",
                "multipart/related"
            ]
        );
        assert_eq!(h.content_type().as_deref(), Some("application/pidf+xml"));
        assert_eq!(h.allow_events(), ["presence", "dialog"]);
        assert_eq!(h.supported(), ["path", "gruu", "outbound"]);
        assert_eq!(h.require(), ["100rel"]);
        assert_eq!(
            h.proxy_require(),
            ["noproxiessupportthis", "nordoanyproxiessupportthis"]
        );
        let routes = h.routes().unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[1].uri.host, "p2.example.com");
        assert_eq!(h.record_routes().unwrap().len(), 1);
        assert!(Headers::new().routes().unwrap().is_empty());
        assert_eq!(Headers::new().content_type(), None);
    }
}
