//! Reading and changing parts of a document by node selector
//! (RFC 4825 §7 and §8).
//!
//! Changes are byte splices on the stored text at the ranges roxmltree
//! reports, followed by a re-parse: everything the client wrote outside
//! the changed node (unknown elements, comments, prefixes, whitespace)
//! stays byte for byte. After each change the selector is evaluated again
//! on the new text: a PUT must be readable back by a GET of the same URI
//! (§8.2.5, else cannot-insert) and a DELETE must leave nothing selected
//! (§8.3, else cannot-delete).

use std::ops::Range;

use roxmltree::{Document, Node, ParsingOptions};

use crate::error::{escape, Conflict, XcapError};
use crate::selector::{NameTest, NodeSelector, QName, Step, Terminal};

/// Most XML nodes in one document (a bound on the memory a parse takes).
const NODES_LIMIT: u32 = 200_000;

/// How names without a prefix and the `xmlns()` prefixes resolve.
pub(crate) struct Bindings<'a> {
    /// The application usage's default namespace (§6.4): unprefixed element
    /// names in a selector are in it.
    pub default_ns: &'a str,
    /// Prefixes bound by the request's `xmlns()` query.
    pub prefixes: &'a [(String, String)],
}

impl Bindings<'_> {
    fn element_ns(&self, q: &QName) -> Result<String, XcapError> {
        match &q.prefix {
            None => Ok(self.default_ns.to_string()),
            Some(p) => self.prefix(p),
        }
    }

    /// Unprefixed attributes are in no namespace (XML Namespaces §6.2).
    fn attribute_ns(&self, q: &QName) -> Result<Option<String>, XcapError> {
        if q.local == "xmlns" && q.prefix.is_none() || q.prefix.as_deref() == Some("xmlns") {
            return Err(XcapError::BadRequest(
                "namespace declarations are not attributes",
            ));
        }
        q.prefix.as_ref().map(|p| self.prefix(p)).transpose()
    }

    fn prefix(&self, p: &str) -> Result<String, XcapError> {
        self.prefixes
            .iter()
            .find(|(prefix, _)| prefix == p)
            .map(|(_, ns)| ns.clone())
            .ok_or(XcapError::BadRequest(
                "node selector prefix not bound by an xmlns() query",
            ))
    }
}

/// Parses a stored or candidate document; DTDs are refused.
pub(crate) fn parse(text: &str) -> Result<Document<'_>, Conflict> {
    Document::parse_with_options(
        text,
        ParsingOptions {
            allow_dtd: false,
            nodes_limit: NODES_LIMIT,
            ..ParsingOptions::default()
        },
    )
    .map_err(|_| Conflict::NotWellFormed)
}

/// The elements `steps` select, in document order.
fn select<'a, 'i>(
    doc: &'a Document<'i>,
    steps: &[Step],
    bindings: &Bindings<'_>,
) -> Result<Vec<Node<'a, 'i>>, XcapError> {
    let mut current: Vec<Node<'a, 'i>> = vec![doc.root()];
    for step in steps {
        let ns = match &step.name {
            NameTest::Any => None,
            NameTest::Name(q) => Some((bindings.element_ns(q)?, q.local.as_str())),
        };
        let attr = match &step.attr {
            Some(a) => Some((bindings.attribute_ns(&a.name)?, a)),
            None => None,
        };
        let mut next = Vec::new();
        for node in current {
            let named = node.children().filter(|c| {
                c.is_element()
                    && match &ns {
                        None => true,
                        Some((ns, local)) => {
                            c.tag_name().name() == *local
                                && c.tag_name().namespace().unwrap_or("") == ns
                        }
                    }
            });
            let positioned: Vec<Node<'a, 'i>> = match step.position {
                Some(n) => named.skip(n - 1).take(1).collect(),
                None => named.collect(),
            };
            next.extend(positioned.into_iter().filter(|c| {
                match &attr {
                    None => true,
                    Some((ns, test)) => attribute(c, ns.as_deref(), &test.name.local)
                        .is_some_and(|a| a.value() == test.value),
                }
            }));
        }
        current = next;
    }
    Ok(current)
}

fn attribute<'a, 'i>(
    node: &Node<'a, 'i>,
    ns: Option<&str>,
    local: &str,
) -> Option<roxmltree::Attribute<'a, 'i>> {
    node.attributes()
        .find(|a| a.name() == local && a.namespace() == ns)
}

fn one<'a, 'i>(nodes: Vec<Node<'a, 'i>>) -> Result<Node<'a, 'i>, XcapError> {
    match nodes.as_slice() {
        [node] => Ok(*node),
        _ => Err(XcapError::NotFound),
    }
}

/// What a GET of a node selector returns: the body and its MIME type.
pub(crate) fn get(
    text: &str,
    selector: &NodeSelector,
    bindings: &Bindings<'_>,
) -> Result<(String, &'static str), XcapError> {
    let doc =
        parse(text).map_err(|_| XcapError::Unavailable("stored document unreadable".into()))?;
    let element = one(select(&doc, &selector.steps, bindings)?)?;
    match &selector.terminal {
        None => Ok((text[element.range()].to_string(), crate::ELEMENT_MIME)),
        Some(Terminal::Attribute(q)) => {
            let ns = bindings.attribute_ns(q)?;
            let attr = attribute(&element, ns.as_deref(), &q.local).ok_or(XcapError::NotFound)?;
            Ok((escape(attr.value()), crate::ATTRIBUTE_MIME))
        }
        Some(Terminal::Namespaces) => {
            Ok((namespaces_document(text, &element), crate::NAMESPACE_MIME))
        }
    }
}

/// §7.4 / §8.1.3: an empty element named like the selected one, declaring
/// every namespace binding in scope there.
fn namespaces_document(text: &str, element: &Node<'_, '_>) -> String {
    let name = raw_tag_name(text, element.range().start);
    let mut out = format!("<{name}");
    for ns in element.namespaces() {
        match ns.name() {
            Some("xml") => {}
            Some(prefix) => out.push_str(&format!(" xmlns:{prefix}=\"{}\"", escape(ns.uri()))),
            None => out.push_str(&format!(" xmlns=\"{}\"", escape(ns.uri()))),
        }
    }
    out.push_str("/>");
    out
}

/// The element's name as written in its start tag at `start` (`<p:name`).
fn raw_tag_name(text: &str, start: usize) -> &str {
    let after = &text[start + 1..];
    let end = after
        .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
        .unwrap_or(after.len());
    &after[..end]
}

/// The result of a change: the new document text and whether the node
/// was created (201) rather than replaced (200).
pub(crate) struct Changed {
    pub text: String,
    pub created: bool,
}

fn splice(text: &str, range: Range<usize>, with: &str) -> String {
    let mut out = String::with_capacity(text.len() - range.len() + with.len());
    out.push_str(&text[..range.start]);
    out.push_str(with);
    out.push_str(&text[range.end..]);
    out
}

/// §8.2.3: PUT of an element (insert or replace).
pub(crate) fn put_element(
    text: &str,
    selector: &NodeSelector,
    bindings: &Bindings<'_>,
    body: &str,
    ancestor_uri: &dyn Fn(Option<&NodeSelector>) -> String,
) -> Result<Changed, XcapError> {
    let body = body.trim();
    if body.starts_with("<?") {
        return Err(Conflict::NotXmlFrag.into());
    }
    let doc =
        parse(text).map_err(|_| XcapError::Unavailable("stored document unreadable".into()))?;
    let found = select(&doc, &selector.steps, bindings)?;
    let (new_text, offset, created) = match found.as_slice() {
        [existing] => {
            check_fragment(body, existing.parent_element())?;
            let range = existing.range();
            (splice(text, range.clone(), body), range.start, false)
        }
        [] => {
            let parent_sel = selector.parent().ok_or(Conflict::CannotInsert)?;
            let parent = match select(&doc, &parent_sel.steps, bindings)?.as_slice() {
                [parent] => *parent,
                _ => {
                    return Err(Conflict::NoParent {
                        ancestor: Some(closest_ancestor(&doc, selector, bindings, ancestor_uri)),
                    }
                    .into())
                }
            };
            check_fragment(body, Some(parent))?;
            let last = selector.steps.last().ok_or(Conflict::CannotInsert)?;
            let (t, offset) = insert_child(text, &parent, last, bindings, body)?;
            (t, offset, true)
        }
        _ => return Err(Conflict::CannotInsert.into()),
    };
    // §8.2.5: a GET of the same URI must now return exactly what was put.
    let new_doc = parse(&new_text).map_err(|_| Conflict::NotXmlFrag)?;
    let again = select(&new_doc, &selector.steps, bindings)?;
    match again.as_slice() {
        [node] if node.range() == (offset..offset + body.len()) => {}
        _ => return Err(Conflict::CannotInsert.into()),
    }
    Ok(Changed {
        text: new_text,
        created,
    })
}

/// The body must be one element, well-formed where it will sit: parsed
/// inside a wrapper that declares the namespaces in scope at `parent`.
fn check_fragment(body: &str, parent: Option<Node<'_, '_>>) -> Result<(), XcapError> {
    const WRAPPER_NS: &str = "urn:x-herald:xcap-fragment";
    let mut wrapper =
        format!("<herald-fragment-wrapper:w xmlns:herald-fragment-wrapper=\"{WRAPPER_NS}\"");
    if let Some(parent) = parent {
        for ns in parent.namespaces() {
            match ns.name() {
                Some("xml") => {}
                Some(p) => wrapper.push_str(&format!(" xmlns:{p}=\"{}\"", escape(ns.uri()))),
                None => wrapper.push_str(&format!(" xmlns=\"{}\"", escape(ns.uri()))),
            }
        }
    }
    wrapper.push('>');
    wrapper.push_str(body);
    wrapper.push_str("</herald-fragment-wrapper:w>");
    let doc = parse(&wrapper).map_err(|_| Conflict::NotXmlFrag)?;
    let mut elements = 0;
    for child in doc.root_element().children() {
        if child.is_element() {
            elements += 1;
        } else if !(child.is_text() && child.text().unwrap_or("").trim().is_empty()) {
            return Err(Conflict::NotXmlFrag.into());
        }
    }
    if elements != 1 || !body.starts_with('<') || !body.ends_with('>') {
        return Err(Conflict::NotXmlFrag.into());
    }
    Ok(())
}

/// Inserts `body` as a new child of `parent` (§8.2.3): after the
/// (n-1)th sibling matching the step's name when the step has a position
/// n > 1, else after the last element child, else as the only content.
/// Returns the new text and the offset where `body` starts.
fn insert_child(
    text: &str,
    parent: &Node<'_, '_>,
    step: &Step,
    bindings: &Bindings<'_>,
    body: &str,
) -> Result<(String, usize), XcapError> {
    let name = match &step.name {
        NameTest::Any => None,
        NameTest::Name(q) => Some((bindings.element_ns(q)?, q.local.clone())),
    };
    let matching: Vec<Node<'_, '_>> = parent
        .children()
        .filter(|c| {
            c.is_element()
                && name.as_ref().is_none_or(|(ns, local)| {
                    c.tag_name().name() == local && c.tag_name().namespace().unwrap_or("") == ns
                })
        })
        .collect();
    let after = match step.position {
        Some(n) if n > 1 => Some(
            matching
                .get(n - 2)
                .ok_or(Conflict::CannotInsert)?
                .range()
                .end,
        ),
        _ => parent
            .children()
            .rev()
            .find(|c| c.is_element())
            .map(|c| c.range().end),
    };
    if let Some(at) = after {
        return Ok((splice(text, at..at, body), at));
    }
    let range = parent.range();
    let element_text = &text[range.clone()];
    if element_text.ends_with("/>") {
        // `<list/>` becomes `<list>body</list>`.
        let name = raw_tag_name(text, range.start);
        let replacement = format!(">{body}</{name}>");
        let at = range.end - 2;
        Ok((splice(text, at..range.end, &replacement), at + 1))
    } else {
        let end_tag = element_text.rfind("</").ok_or(Conflict::CannotInsert)?;
        let at = range.start + end_tag;
        Ok((splice(text, at..at, body), at))
    }
}

/// The URI of the deepest existing element on the selector's path, or of
/// the document when not even the root matches (for no-parent, §11).
fn closest_ancestor(
    doc: &Document<'_>,
    selector: &NodeSelector,
    bindings: &Bindings<'_>,
    uri: &dyn Fn(Option<&NodeSelector>) -> String,
) -> String {
    for depth in (1..selector.steps.len()).rev() {
        let steps = &selector.steps[..depth];
        if matches!(select(doc, steps, bindings).as_deref(), Ok([_])) {
            return uri(Some(&NodeSelector {
                steps: steps.to_vec(),
                terminal: None,
            }));
        }
    }
    uri(None)
}

/// §8.3: DELETE of an element.
pub(crate) fn delete_element(
    text: &str,
    selector: &NodeSelector,
    bindings: &Bindings<'_>,
) -> Result<String, XcapError> {
    let doc =
        parse(text).map_err(|_| XcapError::Unavailable("stored document unreadable".into()))?;
    let element = one(select(&doc, &selector.steps, bindings)?)?;
    if element.parent_element().is_none() {
        // The root element: the document would not be XML any more.
        return Err(Conflict::CannotDelete.into());
    }
    let new_text = splice(text, element.range(), "");
    let new_doc = parse(&new_text).map_err(|_| Conflict::CannotDelete)?;
    if !select(&new_doc, &selector.steps, bindings)?.is_empty() {
        // e.g. `entry[1]` while a second entry exists: it would become
        // entry[1], so the DELETE would not be idempotent.
        return Err(Conflict::CannotDelete.into());
    }
    Ok(new_text)
}

/// §8.2.4: PUT of an attribute; `value` is the body, an XML attribute
/// value (references allowed, no `<`).
pub(crate) fn put_attribute(
    text: &str,
    selector: &NodeSelector,
    name: &QName,
    bindings: &Bindings<'_>,
    value: &str,
    ancestor_uri: &dyn Fn(Option<&NodeSelector>) -> String,
) -> Result<Changed, XcapError> {
    if value.contains('<') {
        return Err(Conflict::NotXmlAttValue.into());
    }
    let value = crate::selector::unescape(value).ok_or(Conflict::NotXmlAttValue)?;
    let ns = bindings.attribute_ns(name)?;
    let doc =
        parse(text).map_err(|_| XcapError::Unavailable("stored document unreadable".into()))?;
    let element = match select(&doc, &selector.steps, bindings)?.as_slice() {
        [e] => *e,
        [] => {
            return Err(Conflict::NoParent {
                ancestor: Some(closest_ancestor(
                    &doc,
                    &full(selector),
                    bindings,
                    ancestor_uri,
                )),
            }
            .into())
        }
        _ => return Err(Conflict::CannotInsert.into()),
    };
    let escaped = escape(&value).replace('\'', "&apos;");
    let (new_text, created) = match attribute(&element, ns.as_deref(), &name.local) {
        Some(existing) => (splice(text, existing.range_value(), &escaped), false),
        None => {
            let qname = match (&ns, &name.prefix) {
                (None, _) => (name.local.clone(), String::new()),
                (Some(uri), prefix) => match element.lookup_prefix(uri) {
                    Some(p) => (format!("{p}:{}", name.local), String::new()),
                    None => {
                        let p = prefix.as_deref().unwrap_or("ns");
                        (
                            format!("{p}:{}", name.local),
                            format!(" xmlns:{p}=\"{}\"", escape(uri)),
                        )
                    }
                },
            };
            let at = element.range().start + 1 + raw_tag_name(text, element.range().start).len();
            let insert = format!("{} {}=\"{escaped}\"", qname.1, qname.0);
            (splice(text, at..at, &insert), true)
        }
    };
    let new_doc = parse(&new_text).map_err(|_| Conflict::NotXmlAttValue)?;
    let readable = select(&new_doc, &selector.steps, bindings)?
        .first()
        .and_then(|e| attribute(e, ns.as_deref(), &name.local))
        .is_some_and(|a| a.value() == value);
    if !readable {
        // e.g. changing the attribute the step's own predicate tests.
        return Err(Conflict::CannotInsert.into());
    }
    Ok(Changed {
        text: new_text,
        created,
    })
}

/// The selector of the element steps (the terminal dropped), for the
/// no-parent ancestor search which looks at strict prefixes of it.
fn full(selector: &NodeSelector) -> NodeSelector {
    let mut steps = selector.steps.clone();
    // A placeholder last step so the search includes the element itself.
    steps.push(Step {
        name: NameTest::Any,
        position: None,
        attr: None,
    });
    NodeSelector {
        steps,
        terminal: None,
    }
}

/// §8.3: DELETE of an attribute.
pub(crate) fn delete_attribute(
    text: &str,
    selector: &NodeSelector,
    name: &QName,
    bindings: &Bindings<'_>,
) -> Result<String, XcapError> {
    let ns = bindings.attribute_ns(name)?;
    let doc =
        parse(text).map_err(|_| XcapError::Unavailable("stored document unreadable".into()))?;
    let element = one(select(&doc, &selector.steps, bindings)?)?;
    let attr = attribute(&element, ns.as_deref(), &name.local).ok_or(XcapError::NotFound)?;
    let mut range = attr.range();
    // Take the whitespace before it too, so `<a b="1"/>` becomes `<a/>`.
    let before = text[..range.start].trim_end_matches(|c: char| c.is_ascii_whitespace());
    range.start = before.len();
    let new_text = splice(text, range, "");
    let new_doc = parse(&new_text).map_err(|_| Conflict::CannotDelete)?;
    let still = select(&new_doc, &selector.steps, bindings)?
        .first()
        .and_then(|e| attribute(e, ns.as_deref(), &name.local))
        .is_some();
    if still {
        return Err(Conflict::CannotDelete.into());
    }
    Ok(new_text)
}
