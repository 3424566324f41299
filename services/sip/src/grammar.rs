//! Character classes and small lexers of RFC 3261 §25.1 shared by the
//! URI, header and typed parsers.
//!
//! Hand-written instead of rsip's grammar: rsip 0.4.0 reads `sip:t.watson@example.org`
//! as a host named `t.watson@example.org`, cuts users at `;` (RFC 4475 semiuri),
//! drops URI headers, and rejects IPv6 hosts, tel URIs and IPv6 Via sent-by (checked
//! on this machine). Every helper here works on `&str` and only slices at
//! positions of ASCII bytes, so no slice can split a UTF-8 character.

use std::borrow::Cow;
use std::fmt;

/// `token` characters (RFC 3261 §25.1).
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// `unreserved` = alphanum / mark.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// SP or HTAB.
pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(crate) fn trim_ws(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

pub(crate) fn trim_ws_start(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// True when every byte of `s` is allowed by `allowed` or is part of a
/// well-formed `%HH` escape.
pub(crate) fn all_escaped_or(s: &str, allowed: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let ok = matches!(
                (
                    b.get(i + 1).copied().and_then(hex_val),
                    b.get(i + 2).copied().and_then(hex_val)
                ),
                (Some(_), Some(_))
            );
            if !ok {
                return false;
            }
            i += 3;
        } else if allowed(c) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Reads a quoted-string at the start of `s` (which begins with `"`).
/// Returns the unescaped content and the rest after the closing quote.
/// quoted-pair (`\x`) may escape any character but CR and LF, including
/// NUL (RFC 4475 intmeth).
pub(crate) fn parse_quoted(s: &str) -> Result<(Cow<'_, str>, &str), &'static str> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return Err("expected a quoted string");
    }
    let mut i = 1;
    let mut escaped = false;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => {
                // Both ends are ASCII quotes: char boundaries.
                let inner = &s[1..i];
                let rest = &s[i + 1..];
                let value = if escaped {
                    let mut out = String::with_capacity(inner.len());
                    let mut chars = inner.chars();
                    while let Some(ch) = chars.next() {
                        if ch == '\\' {
                            if let Some(n) = chars.next() {
                                out.push(n);
                            }
                        } else {
                            out.push(ch);
                        }
                    }
                    Cow::Owned(out)
                } else {
                    Cow::Borrowed(inner)
                };
                return Ok((value, rest));
            }
            b'\\' => {
                escaped = true;
                match b.get(i + 1) {
                    Some(b'\r') | Some(b'\n') | None => return Err("bad quoted-pair"),
                    // Skipping one byte is enough: a UTF-8 continuation byte
                    // is never `"` or `\`.
                    Some(_) => i += 2,
                }
            }
            b'\r' | b'\n' => return Err("line end inside a quoted string"),
            _ => i += 1,
        }
    }
    Err("unterminated quoted string")
}

/// Splits `s` on `sep` outside quoted strings and `<...>`, trimming each
/// piece. Empty pieces are kept (callers decide whether they are errors).
pub(crate) fn split_top_level(s: &str, sep: u8) -> Vec<&str> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut start = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if in_quotes {
            match c {
                b'\\' => i += 1,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => in_quotes = true,
                b'<' => in_angle = true,
                b'>' => in_angle = false,
                _ if c == sep && !in_angle => {
                    out.push(trim_ws(&s[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    out.push(trim_ws(s.get(start..).unwrap_or("")));
    out
}

/// Index of the first top-level `sep` (outside quotes and `<...>`).
pub(crate) fn find_top_level(s: &str, sep: u8) -> Option<usize> {
    let b = s.as_bytes();
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if in_quotes {
            match c {
                b'\\' => i += 1,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => in_quotes = true,
                b'<' => in_angle = true,
                b'>' => in_angle = false,
                _ if c == sep && !in_angle => return Some(i),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Bytes a `gen-value` may hold unquoted: token or host (`[`, `]`, `:` for IPv6).
fn is_gen_value_byte(b: u8) -> bool {
    is_token_byte(b) || matches!(b, b':' | b'[' | b']')
}

/// Reads `*( SEMI generic-param )` (RFC 3261 §25.1, SEMI and EQUAL with SWS
/// around them) and calls `f` for each parameter. `s` must hold nothing
/// else but whitespace.
pub(crate) fn scan_params<'a>(
    s: &'a str,
    mut f: impl FnMut(&'a str, Option<Cow<'a, str>>),
) -> Result<(), &'static str> {
    let mut rest = trim_ws_start(s);
    while !rest.is_empty() {
        rest = match rest.strip_prefix(';') {
            Some(r) => trim_ws_start(r),
            None => return Err("expected ';' before a parameter"),
        };
        let name_len = rest.bytes().take_while(|&b| is_token_byte(b)).count();
        if name_len == 0 {
            return Err("empty parameter name");
        }
        let name = &rest[..name_len];
        rest = trim_ws_start(&rest[name_len..]);
        if let Some(r) = rest.strip_prefix('=') {
            let r = trim_ws_start(r);
            if r.starts_with('"') {
                let (v, after) = parse_quoted(r)?;
                f(name, Some(v));
                rest = trim_ws_start(after);
            } else {
                let vlen = r.bytes().take_while(|&b| is_gen_value_byte(b)).count();
                if vlen == 0 {
                    return Err("empty parameter value");
                }
                f(name, Some(Cow::Borrowed(&r[..vlen])));
                rest = trim_ws_start(&r[vlen..]);
            }
        } else {
            f(name, None);
        }
    }
    Ok(())
}

/// Parses parameters into owned pairs (see [`scan_params`]).
pub(crate) fn parse_params(s: &str) -> Result<Vec<(String, Option<String>)>, &'static str> {
    let mut out = Vec::new();
    scan_params(s, |n, v| out.push((n.to_owned(), v.map(Cow::into_owned))))?;
    Ok(out)
}

/// Writes `;name[=value]` for each parameter, quoting values that are not
/// a token or host, and values of feature tags (`+sip.instance`, RFC 3840
/// §9: their values are always quoted strings).
pub(crate) fn write_params(
    f: &mut fmt::Formatter<'_>,
    params: &[(String, Option<String>)],
) -> fmt::Result {
    for (n, v) in params {
        f.write_str(";")?;
        f.write_str(n)?;
        if let Some(v) = v {
            f.write_str("=")?;
            if n.starts_with('+') || v.is_empty() || !v.bytes().all(is_gen_value_byte) {
                write_quoted(f, v)?;
            } else {
                f.write_str(v)?;
            }
        }
    }
    Ok(())
}

/// Writes `"s"` escaping `"` and `\`.
pub(crate) fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c == '"' || c == '\\' {
            f.write_str(&s[start..i])?;
            f.write_str("\\")?;
            start = i;
        }
    }
    f.write_str(&s[start..])?;
    f.write_str("\"")
}

/// Replaces or appends a parameter.
pub(crate) fn set_param(
    params: &mut Vec<(String, Option<String>)>,
    name: &str,
    value: Option<&str>,
) {
    let value = value.map(str::to_owned);
    match params
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        Some(p) => p.1 = value,
        None => params.push((name.to_owned(), value)),
    }
}

/// Parses decimal digits into a u32, saturating at `u32::MAX` (RFC 3261
/// §10.2.1.1 / RFC 4475 scalar02: treat overlarge delta-seconds as large).
/// `None` when `s` is not all digits.
pub(crate) fn parse_u32_saturating(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: u32 = 0;
    for b in s.bytes() {
        v = match v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u32::from(b - b'0')))
        {
            Some(v) => v,
            None => return Some(u32::MAX),
        };
    }
    Some(v)
}

/// Parses decimal digits, `None` on anything else or on overflow.
pub(crate) fn parse_digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings() {
        let (v, rest) = parse_quoted(r#""J Rosenberg \\\"" <sip:x@y>"#).unwrap();
        assert_eq!(v, "J Rosenberg \\\"");
        assert_eq!(rest, " <sip:x@y>");
        assert!(parse_quoted("\"open").is_err());
        let (v, _) = parse_quoted("\"NUL:\\\0 ok\"").unwrap();
        assert_eq!(v, "NUL:\0 ok");
    }

    #[test]
    fn split_respects_quotes_and_angles() {
        let parts = split_top_level(r#""a, b" <sip:x@y;p=1,2>;q=1 , <sip:z@w>"#, b',');
        assert_eq!(parts, vec![r#""a, b" <sip:x@y;p=1,2>;q=1"#, "<sip:z@w>"]);
        let parts = split_top_level(r#""esc \", still" <sip:a@b>,c"#, b',');
        assert_eq!(parts.len(), 2);
        assert_eq!(split_top_level("a,,b", b','), vec!["a", "", "b"]);
    }

    #[test]
    fn params_with_sws() {
        let p = parse_params(" ;  tag = 98asjd8 ; lr; q=0.33;x=\"<urn:a>\"").unwrap();
        assert_eq!(p[0], ("tag".into(), Some("98asjd8".into())));
        assert_eq!(p[1], ("lr".into(), None));
        assert_eq!(p[3], ("x".into(), Some("<urn:a>".into())));
        assert!(parse_params(";;").is_err());
        assert!(parse_params(";a=").is_err());
        assert!(parse_params("junk").is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u32_saturating("0068"), Some(68));
        assert_eq!(parse_u32_saturating("99999999999999999999"), Some(u32::MAX));
        assert_eq!(parse_u32_saturating("-1"), None);
        assert_eq!(parse_digits::<u16>("70000"), None);
    }

    #[test]
    fn escapes() {
        assert!(all_escaped_or("a%41b", is_unreserved));
        assert!(!all_escaped_or("a%4", is_unreserved));
        assert!(!all_escaped_or("a%zzb", is_unreserved));
        assert!(!all_escaped_or("a b", is_unreserved));
    }
}
