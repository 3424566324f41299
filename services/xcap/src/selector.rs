//! XCAP node selectors (RFC 4825 §6.3) and the `xmlns()` query that binds
//! their prefixes (§6.4).
//!
//! A node selector is a small subset of XPath: a path of element steps,
//! each a name (or `*`) with an optional position and an optional
//! attribute test, then optionally an attribute (`@name`) or the namespace
//! selector (`namespace::*`). The input here is already percent-decoded.
//!
//! Parsing never panics and is bounded ([`MAX_SELECTOR_LEN`],
//! [`MAX_STEPS`]): it runs on untrusted request URIs (and is fuzzed).

use std::fmt;

use thiserror::Error;

/// Longest node selector accepted, in bytes.
pub const MAX_SELECTOR_LEN: usize = 4096;
/// Most element steps in one node selector.
pub const MAX_STEPS: usize = 64;

/// Why a node selector or `xmlns()` query cannot be used (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SelectorError {
    #[error("node selector is empty")]
    Empty,
    #[error("node selector longer than {MAX_SELECTOR_LEN} bytes")]
    TooLong,
    #[error("node selector has more than {MAX_STEPS} steps")]
    TooManySteps,
    #[error("invalid name at byte {0} of the node selector")]
    BadName(usize),
    #[error("invalid predicate at byte {0} of the node selector")]
    BadPredicate(usize),
    #[error("position must be a number of 1 or more (byte {0})")]
    BadPosition(usize),
    #[error("unterminated attribute value at byte {0}")]
    UnterminatedValue(usize),
    #[error("invalid character reference in an attribute value")]
    BadReference,
    #[error("an attribute or namespace selector must be the last step")]
    TerminalNotLast,
    #[error("invalid xmlns() query")]
    BadQuery,
}

/// A possibly prefixed XML name as written in the selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QName {
    pub prefix: Option<String>,
    pub local: String,
}

impl fmt::Display for QName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.prefix {
            Some(p) => write!(f, "{p}:{}", self.local),
            None => f.write_str(&self.local),
        }
    }
}

/// `*` or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameTest {
    Any,
    Name(QName),
}

/// `[@name="value"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrTest {
    pub name: QName,
    /// The value with character and entity references resolved.
    pub value: String,
}

/// One element step: `name`, `name[n]`, `name[@a="v"]` or `name[n][@a="v"]`.
/// As in XPath, the position counts the children that match the name, and
/// the attribute test then filters that one (§6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: NameTest,
    pub position: Option<usize>,
    pub attr: Option<AttrTest>,
}

/// What follows the element steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Terminal {
    /// `@name`: an attribute of the selected element.
    Attribute(QName),
    /// `namespace::*`: the namespace bindings in scope at the element.
    Namespaces,
}

/// A parsed node selector. The first step matches the document's root
/// element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSelector {
    pub steps: Vec<Step>,
    pub terminal: Option<Terminal>,
}

impl NodeSelector {
    /// The selector of the parent element: the steps but the last, no
    /// terminal (`None` when the selector is the root element alone).
    pub fn parent(&self) -> Option<NodeSelector> {
        if self.steps.len() < 2 {
            return None;
        }
        Some(NodeSelector {
            steps: self.steps[..self.steps.len() - 1].to_vec(),
            terminal: None,
        })
    }
}

impl fmt::Display for NodeSelector {
    /// The selector in the form [`parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            match &step.name {
                NameTest::Any => f.write_str("*")?,
                NameTest::Name(q) => write!(f, "{q}")?,
            }
            if let Some(n) = step.position {
                write!(f, "[{n}]")?;
            }
            if let Some(a) = &step.attr {
                let value = a
                    .value
                    .replace('&', "&amp;")
                    .replace('"', "&quot;")
                    .replace('<', "&lt;");
                write!(f, "[@{}=\"{value}\"]", a.name)?;
            }
        }
        match &self.terminal {
            Some(Terminal::Attribute(q)) => write!(f, "/@{q}"),
            Some(Terminal::Namespaces) => f.write_str("/namespace::*"),
            None => Ok(()),
        }
    }
}

/// Parses a percent-decoded node selector.
pub fn parse(input: &str) -> Result<NodeSelector, SelectorError> {
    if input.is_empty() {
        return Err(SelectorError::Empty);
    }
    if input.len() > MAX_SELECTOR_LEN {
        return Err(SelectorError::TooLong);
    }
    let mut p = Parser { s: input, pos: 0 };
    let mut steps = Vec::new();
    let mut terminal = None;
    loop {
        if terminal.is_some() {
            return Err(SelectorError::TerminalNotLast);
        }
        if p.rest().starts_with("namespace::*") {
            p.pos += "namespace::*".len();
            terminal = Some(Terminal::Namespaces);
        } else if p.eat('@') {
            terminal = Some(Terminal::Attribute(p.qname()?));
        } else {
            if steps.len() == MAX_STEPS {
                return Err(SelectorError::TooManySteps);
            }
            steps.push(p.step()?);
        }
        if p.pos == p.s.len() {
            break;
        }
        if !p.eat('/') {
            return Err(SelectorError::BadName(p.pos));
        }
    }
    if steps.is_empty() {
        // A terminal needs an element to apply to.
        return Err(SelectorError::Empty);
    }
    Ok(NodeSelector { steps, terminal })
}

/// Parses the query of an XCAP URI: `xmlns(p=urn:x)xmlns(q=urn:y)` (§6.4),
/// into (prefix, namespace) pairs. An empty query gives no bindings.
pub fn parse_xmlns_query(query: &str) -> Result<Vec<(String, String)>, SelectorError> {
    let mut out = Vec::new();
    let mut rest = query.trim();
    while !rest.is_empty() {
        let body = rest.strip_prefix("xmlns(").ok_or(SelectorError::BadQuery)?;
        let close = body.find(')').ok_or(SelectorError::BadQuery)?;
        let (binding, after) = (&body[..close], &body[close + 1..]);
        let (prefix, ns) = binding.split_once('=').ok_or(SelectorError::BadQuery)?;
        let (prefix, ns) = (prefix.trim(), ns.trim());
        if !is_ncname(prefix) || ns.is_empty() {
            return Err(SelectorError::BadQuery);
        }
        out.push((prefix.to_string(), ns.to_string()));
        rest = after.trim_start();
        if out.len() > MAX_STEPS {
            return Err(SelectorError::BadQuery);
        }
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn eat(&mut self, c: char) -> bool {
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn step(&mut self) -> Result<Step, SelectorError> {
        let name = if self.eat('*') {
            NameTest::Any
        } else {
            NameTest::Name(self.qname()?)
        };
        let mut position = None;
        let mut attr = None;
        if self.rest().starts_with('[') && !self.rest()[1..].starts_with('@') {
            self.pos += 1;
            let start = self.pos;
            let digits = self.rest().bytes().take_while(u8::is_ascii_digit).count();
            let n: usize = self.rest()[..digits]
                .parse()
                .map_err(|_| SelectorError::BadPosition(start))?;
            if n == 0 {
                return Err(SelectorError::BadPosition(start));
            }
            self.pos += digits;
            if !self.eat(']') {
                return Err(SelectorError::BadPredicate(self.pos));
            }
            position = Some(n);
        }
        if self.rest().starts_with("[@") {
            self.pos += 2;
            let name = self.qname()?;
            if !self.eat('=') {
                return Err(SelectorError::BadPredicate(self.pos));
            }
            let value = self.att_value()?;
            if !self.eat(']') {
                return Err(SelectorError::BadPredicate(self.pos));
            }
            attr = Some(AttrTest { name, value });
        }
        Ok(Step {
            name,
            position,
            attr,
        })
    }

    fn ncname(&mut self) -> Result<&str, SelectorError> {
        let start = self.pos;
        let len: usize = self
            .rest()
            .char_indices()
            .take_while(|&(i, c)| {
                if i == 0 {
                    is_name_start(c)
                } else {
                    is_name_char(c)
                }
            })
            .map(|(_, c)| c.len_utf8())
            .sum();
        if len == 0 {
            return Err(SelectorError::BadName(start));
        }
        self.pos += len;
        Ok(&self.s[start..start + len])
    }

    fn qname(&mut self) -> Result<QName, SelectorError> {
        let first = self.ncname()?.to_string();
        if self.rest().starts_with(':') && !self.rest().starts_with("::") {
            self.pos += 1;
            let local = self.ncname()?.to_string();
            return Ok(QName {
                prefix: Some(first),
                local,
            });
        }
        Ok(QName {
            prefix: None,
            local: first,
        })
    }

    /// An XML AttValue: `"..."` or `'...'`, no `<`, references resolved.
    fn att_value(&mut self) -> Result<String, SelectorError> {
        let start = self.pos;
        let quote = match self.rest().chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => return Err(SelectorError::BadPredicate(start)),
        };
        self.pos += 1;
        let end = self
            .rest()
            .find(quote)
            .ok_or(SelectorError::UnterminatedValue(start))?;
        let raw = &self.rest()[..end];
        if raw.contains('<') {
            return Err(SelectorError::BadPredicate(start));
        }
        let value = unescape(raw).ok_or(SelectorError::BadReference)?;
        self.pos += end + 1;
        Ok(value)
    }
}

/// Resolves the five predefined entities and character references; `None`
/// for a bare `&` or an unknown reference.
pub(crate) fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';')?;
        let name = &after[..semi];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()?
                } else if let Some(dec) = name.strip_prefix('#') {
                    dec.parse().ok()?
                } else {
                    return None;
                };
                char::from_u32(code)?
            }
        };
        out.push(c);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Some(out)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (!c.is_ascii() && c.is_alphanumeric())
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == '-' || c == '.'
}

fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(local: &str) -> NameTest {
        NameTest::Name(QName {
            prefix: None,
            local: local.into(),
        })
    }

    #[test]
    fn every_step_kind() {
        let s = parse(
            r#"resource-lists/list[@name="friends"]/*[2]/rl:entry[1][@uri='sip:a@b/c']/@uri"#,
        )
        .unwrap();
        assert_eq!(s.steps.len(), 4);
        assert_eq!(s.steps[0].name, name("resource-lists"));
        assert_eq!(s.steps[1].attr.as_ref().unwrap().value, "friends");
        assert_eq!(s.steps[2].name, NameTest::Any);
        assert_eq!(s.steps[2].position, Some(2));
        let last = &s.steps[3];
        assert_eq!(
            last.name.clone(),
            NameTest::Name(QName {
                prefix: Some("rl".into()),
                local: "entry".into()
            })
        );
        assert_eq!(last.position, Some(1));
        assert_eq!(last.attr.as_ref().unwrap().value, "sip:a@b/c");
        assert_eq!(
            s.terminal,
            Some(Terminal::Attribute(QName {
                prefix: None,
                local: "uri".into()
            }))
        );
        assert_eq!(parse(&s.to_string()).unwrap(), s, "{s}");
        let ns = parse("a/b/namespace::*").unwrap();
        assert_eq!(ns.terminal, Some(Terminal::Namespaces));
        assert_eq!(
            parse(r#"a[@x="&lt;&#65;&#x42;"]"#).unwrap().steps[0]
                .attr
                .as_ref()
                .unwrap()
                .value,
            "<AB"
        );
    }

    #[test]
    fn bad_selectors_are_errors() {
        for bad in [
            "",
            "/",
            "a/",
            "a//b",
            "a[0]",
            "a[",
            "a[1",
            "a[@x]",
            "a[@x=\"v]",
            "a/@x/b",
            "a/namespace::*/b",
            "@x",
            "1a",
            "a[@x=\"<\"]",
            "a[@x=\"&bogus;\"]",
            "a[x]",
            "a b",
            "a[99999999999999999999999]",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse(&"a/".repeat(65)[..129]),
            Err(SelectorError::TooManySteps)
        );
    }

    #[test]
    fn truncated_and_mutated_selectors_never_panic_and_round_trip() {
        let seeds = [
            r#"rl:resource-lists/rl:list[@name="a&amp;b"]/*[12][@x:uri='sip:é@b']/@y:z"#,
            "a/b[3]/namespace::*",
        ];
        for seed in seeds {
            let cuts = seed.char_indices().map(|(i, _)| i).chain([seed.len()]);
            for cut in cuts {
                for mutation in ["", "/", "[", "]", "\"", "@", "*", ":", "1"] {
                    let input = format!("{}{mutation}{}", &seed[..cut], &seed[cut..]);
                    if let Ok(parsed) = parse(&input) {
                        assert_eq!(parse(&parsed.to_string()), Ok(parsed), "{input}");
                    }
                }
            }
        }
    }

    #[test]
    fn xmlns_query() {
        assert_eq!(
            parse_xmlns_query("xmlns(p=urn:a)xmlns(q=urn:b)").unwrap(),
            vec![("p".into(), "urn:a".into()), ("q".into(), "urn:b".into())]
        );
        assert!(parse_xmlns_query("").unwrap().is_empty());
        assert!(parse_xmlns_query("xmlns(p)").is_err());
        assert!(parse_xmlns_query("foo").is_err());
    }
}
