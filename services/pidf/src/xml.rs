//! The XML layer under every document type of this crate: a checked, namespace-aware event
//! cursor over quick-xml's `NsReader`, the kept-fragment type, and escaping.
//!
//! Fragments are cut from the input so extension elements pass through byte for byte; what
//! makes them portable is that their root start tag is rebuilt with every namespace binding
//! that was in scope where they were found (see [`Fragment`]).

use std::borrow::Cow;
use std::sync::Arc;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{NamespaceError, PrefixDeclaration, ResolveResult};
use quick_xml::reader::NsReader;
use quick_xml::XmlVersion;

use crate::{PidfError, XmlLimits};

/// RFC 3863 PIDF.
pub const PIDF_NS: &str = "urn:ietf:params:xml:ns:pidf";
/// RFC 4479 data model (person, device, deviceID).
pub const DATA_MODEL_NS: &str = "urn:ietf:params:xml:ns:pidf:data-model";
/// RFC 4480 RPID.
pub const RPID_NS: &str = "urn:ietf:params:xml:ns:pidf:rpid";
/// RFC 3858 watcher information.
pub const WATCHERINFO_NS: &str = "urn:ietf:params:xml:ns:watcherinfo";

/// The namespaces this crate gives meaning to; everything else is [`Ns::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ns {
    Pidf,
    DataModel,
    Watcherinfo,
    Other,
    /// No namespace (unprefixed name with no default namespace in scope).
    Unbound,
}

impl Ns {
    fn of(uri: &str) -> Ns {
        match uri {
            PIDF_NS => Ns::Pidf,
            DATA_MODEL_NS => Ns::DataModel,
            WATCHERINFO_NS => Ns::Watcherinfo,
            _ => Ns::Other,
        }
    }
}

/// A start tag (`<a>` or `<a/>`) with its namespace resolved.
pub(crate) struct Element<'a> {
    pub(crate) start: BytesStart<'a>,
    pub(crate) ns: Ns,
    /// The namespace URI, `None` when unbound.
    pub(crate) ns_uri: Option<String>,
    pub(crate) empty: bool,
}

impl Element<'_> {
    pub(crate) fn local_name(&self) -> &str {
        self.start.local_name().into_inner()
    }

    pub(crate) fn is(&self, ns: Ns, local: &str) -> bool {
        self.ns == ns && self.local_name() == local
    }

    /// The value of the unprefixed attribute `name`, entity references resolved.
    pub(crate) fn attr(&self, name: &str) -> Option<String> {
        // Attributes were all checked when the element was read, so errors cannot occur here;
        // skipping them keeps this total anyway.
        self.start
            .attributes()
            .flatten()
            .find(|a| a.key.as_ref() == name)
            .and_then(|a| a.normalized_value(XmlVersion::Implicit1_0).ok())
            .map(Cow::into_owned)
    }
}

/// What the cursor yields: elements, their end, and character data (text, CDATA and
/// references already resolved). Comments and processing instructions are skipped here but
/// stay inside kept fragments, which are copied from the input.
pub(crate) enum Item<'a> {
    Start(Element<'a>),
    End,
    Text(Cow<'a, str>),
    Eof,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Prolog,
    Root,
    Epilog,
}

/// A namespace-aware reader that enforces [`XmlLimits`] and the well-formedness rules
/// quick-xml leaves to its user (one root, no DOCTYPE, legal characters and names, known
/// entities, bound prefixes), so that any slice it accepts can be copied into another document.
pub(crate) struct XmlCursor<'a> {
    reader: NsReader<&'a [u8]>,
    input: &'a str,
    limits: XmlLimits,
    depth: usize,
    elements: usize,
    phase: Phase,
    event_start: usize,
}

impl<'a> XmlCursor<'a> {
    /// Opens a document whose root must be `name` in namespace `ns`
    /// (`ns_uri` names it in the error): the cursor, positioned after the
    /// root's start tag, and the root element.
    pub(crate) fn open_root(
        bytes: &'a [u8],
        limits: &XmlLimits,
        ns: Ns,
        ns_uri: &'static str,
        name: &'static str,
    ) -> Result<(XmlCursor<'a>, Element<'a>), PidfError> {
        let mut cur = XmlCursor::new(bytes, limits)?;
        let root = loop {
            match cur.next()? {
                Item::Start(el) => break el,
                // The cursor yields no text before the root and no end before a start.
                Item::Text(_) | Item::End => continue,
                Item::Eof => {
                    return Err(PidfError::NotWellFormed {
                        offset: 0,
                        detail: "no root element".into(),
                    })
                }
            }
        };
        if root.ns != ns {
            return Err(PidfError::WrongNamespace {
                expected: ns_uri,
                found: root.ns_uri.clone(),
            });
        }
        if root.local_name() != name {
            return Err(PidfError::WrongRootElement {
                expected: name,
                found: root.local_name().to_owned(),
            });
        }
        Ok((cur, root))
    }

    pub(crate) fn new(bytes: &'a [u8], limits: &XmlLimits) -> Result<Self, PidfError> {
        if bytes.len() > limits.max_bytes {
            return Err(PidfError::TooLarge {
                size: bytes.len(),
                limit: limits.max_bytes,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| PidfError::NotUtf8)?;
        let input = text.strip_prefix('\u{feff}').unwrap_or(text);
        if let Some((offset, c)) = input.char_indices().find(|&(_, c)| !is_xml_char(c)) {
            return Err(PidfError::NotWellFormed {
                offset: offset as u64,
                detail: format!("character U+{:04X} is not allowed in XML", u32::from(c)),
            });
        }
        let mut reader = NsReader::from_str(input);
        reader.config_mut().check_comments = true;
        reader.config_mut().check_end_names = true;
        reader
            .resolver_mut()
            .set_max_namespace_bindings(limits.max_namespace_bindings);
        Ok(XmlCursor {
            reader,
            input,
            limits: limits.clone(),
            depth: 0,
            elements: 0,
            phase: Phase::Prolog,
            event_start: 0,
        })
    }

    /// The document text (after any byte-order mark).
    pub(crate) fn input(&self) -> &'a str {
        self.input
    }

    /// Offset just after the last item read.
    pub(crate) fn position(&self) -> usize {
        usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX)
    }

    /// Offset where the last item read began (for an end tag, its `<`).
    pub(crate) fn event_start(&self) -> usize {
        self.event_start
    }

    /// The user-declared namespace bindings in scope after the last start tag read,
    /// as (prefix, URI) with `""` for the default namespace.
    pub(crate) fn bindings(&self) -> Vec<(String, String)> {
        self.reader
            .resolver()
            .bindings()
            .map(|(prefix, ns)| {
                let prefix = match prefix {
                    PrefixDeclaration::Default => String::new(),
                    PrefixDeclaration::Named(p) => p.to_owned(),
                };
                (prefix, ns.into_inner().to_owned())
            })
            .collect()
    }

    fn not_well_formed(&self, offset: usize, detail: impl Into<String>) -> PidfError {
        PidfError::NotWellFormed {
            offset: offset as u64,
            detail: detail.into(),
        }
    }

    fn map_error(&self, e: quick_xml::Error) -> PidfError {
        match e {
            quick_xml::Error::Namespace(NamespaceError::TooManyBindings(limit)) => {
                PidfError::TooManyNamespaces { limit }
            }
            quick_xml::Error::Namespace(NamespaceError::TooDeeplyNested(_)) => PidfError::TooDeep {
                limit: self.limits.max_depth,
            },
            other => PidfError::NotWellFormed {
                offset: self.reader.error_position(),
                detail: other.to_string(),
            },
        }
    }

    pub(crate) fn next(&mut self) -> Result<Item<'a>, PidfError> {
        loop {
            let before = self.position();
            let event = self.reader.read_event().map_err(|e| self.map_error(e))?;
            self.event_start = before;
            match event {
                Event::Decl(decl) => {
                    if before != 0 {
                        return Err(self.not_well_formed(before, "XML declaration not at start"));
                    }
                    if let Err(e) = decl.version() {
                        return Err(self.not_well_formed(before, e.to_string()));
                    }
                    if let Some(encoding) = decl.encoding() {
                        let encoding =
                            encoding.map_err(|e| self.not_well_formed(before, e.to_string()))?;
                        if !encoding.eq_ignore_ascii_case("utf-8")
                            && !encoding.eq_ignore_ascii_case("utf8")
                        {
                            return Err(PidfError::UnsupportedEncoding {
                                declared: encoding.into_owned(),
                            });
                        }
                    }
                }
                Event::DocType(_) => return Err(PidfError::DoctypeNotAllowed),
                Event::PI(_) | Event::Comment(_) => {}
                Event::Text(text) => {
                    if self.phase == Phase::Root {
                        return Ok(Item::Text(text.xml10_content()));
                    }
                    if !is_xml_whitespace(&text) {
                        return Err(self.not_well_formed(before, "text outside the root element"));
                    }
                }
                Event::CData(data) => {
                    if self.phase != Phase::Root {
                        return Err(self.not_well_formed(before, "CDATA outside the root element"));
                    }
                    return Ok(Item::Text(data.xml10_content()));
                }
                Event::GeneralRef(reference) => {
                    if self.phase != Phase::Root {
                        return Err(
                            self.not_well_formed(before, "reference outside the root element")
                        );
                    }
                    let text = match reference.resolve_char_ref() {
                        Ok(Some(c)) if is_xml_char(c) => Cow::Owned(c.to_string()),
                        Ok(Some(c)) => {
                            return Err(self.not_well_formed(
                                before,
                                format!("character reference to U+{:04X}", u32::from(c)),
                            ))
                        }
                        Ok(None) => match resolve_predefined_entity(&reference) {
                            Some(s) => Cow::Borrowed(s),
                            None => {
                                return Err(self.not_well_formed(
                                    before,
                                    format!("undefined entity &{};", &*reference),
                                ))
                            }
                        },
                        Err(e) => return Err(self.not_well_formed(before, e.to_string())),
                    };
                    return Ok(Item::Text(text));
                }
                Event::Start(start) => return self.element(start, false, before).map(Item::Start),
                Event::Empty(start) => return self.element(start, true, before).map(Item::Start),
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.phase = Phase::Epilog;
                    }
                    return Ok(Item::End);
                }
                Event::Eof => {
                    return match self.phase {
                        Phase::Epilog => Ok(Item::Eof),
                        Phase::Prolog => Err(self.not_well_formed(before, "no root element")),
                        Phase::Root => Err(self.not_well_formed(before, "unclosed element")),
                    };
                }
            }
        }
    }

    fn element(
        &mut self,
        start: BytesStart<'a>,
        empty: bool,
        offset: usize,
    ) -> Result<Element<'a>, PidfError> {
        if self.phase == Phase::Epilog {
            return Err(self.not_well_formed(offset, "a second root element"));
        }
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(PidfError::TooManyElements {
                limit: self.limits.max_elements,
            });
        }
        if self.depth + 1 > self.limits.max_depth {
            return Err(PidfError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        let name = start.name().into_inner();
        if !is_qname(name) {
            return Err(self.not_well_formed(offset, format!("invalid element name {name:?}")));
        }
        self.check_attributes(&start, offset)?;
        let (ns, ns_uri) = match self.reader.resolver().resolve_element(start.name()).0 {
            ResolveResult::Bound(uri) => {
                (Ns::of(uri.into_inner()), Some(uri.into_inner().to_owned()))
            }
            ResolveResult::Unbound => (Ns::Unbound, None),
            ResolveResult::Unknown(prefix) => {
                return Err(self.not_well_formed(offset, format!("unbound prefix {prefix:?}")))
            }
        };
        if empty {
            if self.depth == 0 {
                self.phase = Phase::Epilog;
            }
        } else {
            self.depth += 1;
            self.phase = Phase::Root;
        }
        Ok(Element {
            start,
            ns,
            ns_uri,
            empty,
        })
    }

    fn check_attributes(&self, start: &BytesStart<'_>, offset: usize) -> Result<(), PidfError> {
        let mut count = 0;
        for attr in start.attributes() {
            let attr = attr.map_err(|e| self.not_well_formed(offset, e.to_string()))?;
            count += 1;
            if count > self.limits.max_attributes {
                return Err(PidfError::TooManyAttributes {
                    limit: self.limits.max_attributes,
                });
            }
            let key = attr.key.into_inner();
            if !is_qname(key) {
                return Err(self.not_well_formed(offset, format!("invalid attribute name {key:?}")));
            }
            if attr.value.contains('<') {
                return Err(self.not_well_formed(offset, "'<' in an attribute value"));
            }
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| self.not_well_formed(offset, e.to_string()))?;
            if value.chars().any(|c| !is_xml_char(c)) {
                return Err(self.not_well_formed(offset, "illegal character in an attribute value"));
            }
            if let ResolveResult::Unknown(prefix) =
                self.reader.resolver().resolve_attribute(attr.key).0
            {
                return Err(self.not_well_formed(offset, format!("unbound prefix {prefix:?}")));
            }
        }
        Ok(())
    }
}

/// An element kept as XML so that whatever a client put in it (RPID, CIPID, capabilities,
/// vendor extensions, comments) reaches watchers unchanged.
///
/// The start tag is rebuilt: its attributes (namespace declarations aside) are re-escaped,
/// and every namespace binding in scope where the element was found is declared on it,
/// including those inherited from ancestors. Declaring all of them, not only the prefixes
/// element and attribute names use, also keeps prefixes that appear in content (an
/// `xsi:type` value, a QName in text) resolvable. An unprefixed name with no default
/// namespace in scope gets `xmlns=""` so that moving it under a default namespace does not
/// change its meaning. The content after the start tag is copied from the input, which the
/// reader has checked.
///
/// [`Fragment::to_xml`] is therefore a standalone, namespace-well-formed document; inside a
/// composed document the declarations its new root already makes are left out.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fragment {
    name: String,
    /// Bindings in scope at the parent, shared by all siblings: a hostile body with many
    /// declarations and many small elements costs one `Arc` per element, not a copy.
    inherited: Arc<[(String, String)]>,
    /// Declarations on the element itself (and `xmlns=""` where needed); these override
    /// `inherited`.
    own: Vec<(String, String)>,
    attributes: String,
    content: Option<String>,
}

impl Fragment {
    /// The element's qualified name as the publisher wrote it (`tuple`, `dm:person`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace declarations the start tag carries, as (prefix, URI); prefix `""` is the
    /// default namespace and URI `""` un-declares it.
    pub fn namespace_declarations(&self) -> impl Iterator<Item = (&str, &str)> {
        self.inherited
            .iter()
            .filter(|(prefix, _)| !self.own.iter().any(|(p, _)| p == prefix))
            .chain(self.own.iter())
            .map(|(p, u)| (p.as_str(), u.as_str()))
    }

    /// The element as a standalone XML string (no XML declaration).
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write_into(&mut out, &|_, _| false);
        out
    }

    /// Writes the element, leaving out declarations for which `inherited(prefix, uri)` says
    /// the enclosing element already makes the same binding.
    pub(crate) fn write_into(&self, out: &mut String, inherited: &dyn Fn(&str, &str) -> bool) {
        out.push('<');
        out.push_str(&self.name);
        for (prefix, uri) in self.namespace_declarations() {
            if inherited(prefix, uri) {
                continue;
            }
            write_namespace_declaration(out, prefix, uri);
        }
        out.push_str(&self.attributes);
        match &self.content {
            None => out.push_str("/>"),
            Some(content) => {
                out.push('>');
                out.push_str(content);
                out.push_str("</");
                out.push_str(&self.name);
                out.push('>');
            }
        }
    }

    /// A fragment built by this crate (the offline tuple); `content` must be well-formed.
    pub(crate) fn built(
        name: &str,
        namespaces: Vec<(String, String)>,
        attributes: &[(&str, &str)],
        content: Option<String>,
    ) -> Fragment {
        let mut attrs = String::new();
        for (key, value) in attributes {
            write_attribute(&mut attrs, key, value);
        }
        Fragment {
            name: name.to_owned(),
            inherited: Arc::from(Vec::new()),
            own: namespaces,
            attributes: attrs,
            content,
        }
    }
}

pub(crate) fn write_namespace_declaration(out: &mut String, prefix: &str, uri: &str) {
    if prefix.is_empty() {
        write_attribute(out, "xmlns", uri);
    } else {
        out.push_str(" xmlns:");
        out.push_str(prefix);
        out.push_str("=\"");
        escape_attr_into(out, uri);
        out.push('"');
    }
}

/// ` key="value"` with the value escaped.
pub(crate) fn write_attribute(out: &mut String, key: &str, value: &str) {
    out.push(' ');
    out.push_str(key);
    out.push_str("=\"");
    escape_attr_into(out, value);
    out.push('"');
}

/// A path below a captured element, as (namespace, local name) steps; empty is the element.
pub(crate) type Path = &'static [(Ns, &'static str)];

/// A kept element and the text of the first element found at each wanted path
/// (`None` when no element is at that path).
pub(crate) struct Capture {
    pub(crate) fragment: Fragment,
    pub(crate) fields: Vec<Option<String>>,
}

struct Level {
    /// Wanted paths this element is a prefix of (bit i for `wanted[i]`).
    matching: u64,
    /// Fields this element's direct text goes to.
    collecting: u64,
}

/// Reads the element just returned by `cur` through its end and keeps it as a [`Fragment`],
/// collecting the direct text of the elements at `wanted` paths (at most 64) on the way.
/// `inherited` is [`XmlCursor::bindings`] taken at the element's parent.
pub(crate) fn capture(
    cur: &mut XmlCursor<'_>,
    root: &Element<'_>,
    inherited: &Arc<[(String, String)]>,
    wanted: &[Path],
) -> Result<Capture, PidfError> {
    let mut own = Vec::new();
    let name = root.start.name().into_inner().to_owned();
    let mut attributes = String::new();
    for attr in root.start.attributes().flatten() {
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .unwrap_or_default();
        match attr.key.as_namespace_binding() {
            Some(PrefixDeclaration::Default) => own.push((String::new(), value.into_owned())),
            Some(PrefixDeclaration::Named(prefix)) => {
                own.push((prefix.to_owned(), value.into_owned()))
            }
            None => write_attribute(&mut attributes, attr.key.into_inner(), &value),
        }
    }
    let mut uses_default = root.start.name().prefix().is_none();
    let mut fields: Vec<Option<String>> = vec![None; wanted.len()];
    let all: u64 = if wanted.len() >= 64 {
        u64::MAX
    } else {
        (1u64 << wanted.len()) - 1
    };
    let mut collecting = 0;
    for (i, path) in wanted.iter().enumerate().take(64) {
        if path.is_empty() {
            fields[i] = Some(String::new());
            collecting |= 1 << i;
        }
    }
    let content = if root.empty {
        None
    } else {
        let inner_start = cur.position();
        let mut stack = vec![Level {
            matching: all,
            collecting,
        }];
        loop {
            match cur.next()? {
                Item::Start(el) => {
                    uses_default |= el.start.name().prefix().is_none();
                    let level = stack.len(); // 1-based step index of this element
                    let parent = stack.last().map_or(0, |l| l.matching);
                    let mut matching = 0;
                    let mut collecting = 0;
                    for (i, path) in wanted.iter().enumerate().take(64) {
                        let bit = 1u64 << i;
                        if parent & bit == 0 {
                            continue;
                        }
                        if let Some(&(ns, local)) = path.get(level - 1) {
                            if el.is(ns, local) {
                                matching |= bit;
                                if path.len() == level && fields[i].is_none() {
                                    fields[i] = Some(String::new());
                                    collecting |= bit;
                                }
                            }
                        }
                    }
                    if !el.empty {
                        stack.push(Level {
                            matching,
                            collecting,
                        });
                    }
                }
                Item::Text(text) => {
                    let bits = stack.last().map_or(0, |l| l.collecting);
                    if bits != 0 {
                        for (i, field) in fields.iter_mut().enumerate().take(64) {
                            if bits & (1 << i) != 0 {
                                if let Some(field) = field {
                                    field.push_str(&text);
                                }
                            }
                        }
                    }
                }
                Item::End => {
                    stack.pop();
                    if stack.is_empty() {
                        let inner_end = cur.event_start();
                        let inner = cur.input().get(inner_start..inner_end).ok_or(
                            PidfError::NotWellFormed {
                                offset: inner_end as u64,
                                detail: "element content out of range".into(),
                            },
                        )?;
                        break Some(inner.to_owned());
                    }
                }
                Item::Eof => {
                    return Err(PidfError::NotWellFormed {
                        offset: cur.position() as u64,
                        detail: "unclosed element".into(),
                    })
                }
            }
        }
    };
    let default_declared = own
        .iter()
        .chain(inherited.iter())
        .any(|(p, _)| p.is_empty());
    if uses_default && !default_declared {
        own.push((String::new(), String::new()));
    }
    Ok(Capture {
        fragment: Fragment {
            name,
            inherited: Arc::clone(inherited),
            own,
            attributes,
            content,
        },
        fields,
    })
}

/// Reads through the end of the element just returned by `cur`, keeping nothing.
pub(crate) fn skip(cur: &mut XmlCursor<'_>, el: &Element<'_>) -> Result<(), PidfError> {
    if el.empty {
        return Ok(());
    }
    let mut open = 1usize;
    loop {
        match cur.next()? {
            Item::Start(child) if !child.empty => open += 1,
            Item::End => {
                open -= 1;
                if open == 0 {
                    return Ok(());
                }
            }
            Item::Eof => {
                return Err(PidfError::NotWellFormed {
                    offset: cur.position() as u64,
                    detail: "unclosed element".into(),
                })
            }
            _ => {}
        }
    }
}

/// Reads through the end of the element just returned by `cur`, returning its direct text.
pub(crate) fn text_of(cur: &mut XmlCursor<'_>, el: &Element<'_>) -> Result<String, PidfError> {
    let mut text = String::new();
    if el.empty {
        return Ok(text);
    }
    let mut open = 1usize;
    loop {
        match cur.next()? {
            Item::Start(child) if !child.empty => open += 1,
            Item::Start(_) => {}
            Item::Text(t) if open == 1 => text.push_str(&t),
            Item::Text(_) => {}
            Item::End => {
                open -= 1;
                if open == 0 {
                    return Ok(text);
                }
            }
            Item::Eof => {
                return Err(PidfError::NotWellFormed {
                    offset: cur.position() as u64,
                    detail: "unclosed element".into(),
                })
            }
        }
    }
}

fn is_xml_whitespace(s: &str) -> bool {
    s.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

/// Trims XML whitespace (not Unicode whitespace).
pub(crate) fn trim_xml(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

/// XML 1.0 §2.2 `Char`.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// XML 1.0 (5th edition) §2.3 `NameStartChar`, without ':' (names here are namespace NCNames).
fn is_name_start_char(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

/// A namespace-valid name: `NCName` or `NCName:NCName`.
fn is_qname(s: &str) -> bool {
    match s.split_once(':') {
        Some((prefix, local)) => is_ncname(prefix) && is_ncname(local),
        None => is_ncname(s),
    }
}

/// Escapes character data. Characters XML cannot carry at all become U+FFFD, so text from
/// SIP headers (display names) can never make a document ill-formed; `\r` is written as a
/// reference so that a reader's end-of-line normalization does not change it.
pub(crate) fn escape_text_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if !is_xml_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// Escapes a double-quoted attribute value; whitespace other than space is written as a
/// reference so that attribute-value normalization keeps it.
pub(crate) fn escape_attr_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if !is_xml_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_qname("dm:person"));
        assert!(is_qname("a-b.c_d"));
        assert!(!is_qname("1abc"));
        assert!(!is_qname("a:b:c"));
        assert!(!is_qname(":a"));
        assert!(!is_qname("a\"b"));
    }

    #[test]
    fn escaping() {
        let mut out = String::new();
        escape_attr_into(&mut out, "a\"<&>\n\u{1}");
        assert_eq!(out, "a&quot;&lt;&amp;&gt;&#10;\u{FFFD}");
        let mut out = String::new();
        escape_text_into(&mut out, "x<y & z\r");
        assert_eq!(out, "x&lt;y &amp; z&#13;");
    }
}
