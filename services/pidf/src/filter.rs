//! Presence authorization transformations (RFC 5025 §3.3): what one watcher may see of a
//! composed document.
//!
//! A [`Transformations`] value is the permission set that pres-rules grant a watcher (the
//! union over every rule that matched, RFC 4745 §10.2); [`filter`] applies it to a composed
//! PIDF document. The presence service evaluates the rules; this module only knows what each
//! permission means for the elements of a document.
//!
//! Filtering cuts elements out of the document text and copies everything else byte for
//! byte: start tags (and so every namespace declaration, whatever the prefixes) stay as they
//! were, and a removed element takes only itself with it, never a binding another element
//! needs.

use std::collections::BTreeSet;

use crate::xml::{skip, trim_xml, Element, Item, Ns, XmlCursor, PIDF_NS, RPID_NS};
use crate::{PidfError, XmlLimits};

/// Selects tuples, persons or devices (RFC 5025 §3.3.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Selector {
    /// `<class>`: the element's `<rpid:class>` value.
    Class(String),
    /// `<occurrence-id>`: the element's `id` attribute.
    OccurrenceId(String),
    /// `<deviceID>`: a device's `<dm:deviceID>` (devices only).
    DeviceId(String),
    /// `<service-uri>`: a tuple's `<contact>` URI (services only).
    ServiceUri(String),
    /// `<service-uri-scheme>`: the scheme of a tuple's `<contact>` (services only).
    ServiceUriScheme(String),
}

/// One of `provide-devices`, `provide-persons`, `provide-services`: every element of the kind
/// (`all-*`), or those any selector matches. The default provides none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Provide {
    pub all: bool,
    pub selectors: BTreeSet<Selector>,
}

impl Provide {
    /// Every element of the kind.
    pub fn all() -> Provide {
        Provide {
            all: true,
            selectors: BTreeSet::new(),
        }
    }

    fn union(&mut self, other: &Provide) {
        self.all |= other.all;
        if self.all {
            self.selectors.clear();
        } else {
            self.selectors.extend(other.selectors.iter().cloned());
        }
    }
}

/// The individual `provide-*` attribute permissions (RFC 5025 §3.3.2 to §3.3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attribute {
    Activities,
    Class,
    /// A tuple's `<dm:deviceID>` (a device always keeps its own).
    DeviceId,
    Mood,
    PlaceIs,
    PlaceType,
    Privacy,
    Relationship,
    StatusIcon,
    Sphere,
    TimeOffset,
    /// `provide-user-input` other than `false`; `bare` and `thresholds` are given as `full`.
    UserInput,
    /// Notes in tuples, persons, devices and at the top.
    Note,
}

impl Attribute {
    /// The permission for an RPID element, by local name.
    fn of_rpid(local: &str) -> Option<Attribute> {
        Some(match local {
            "activities" => Attribute::Activities,
            "class" => Attribute::Class,
            "mood" => Attribute::Mood,
            "place-is" => Attribute::PlaceIs,
            "place-type" => Attribute::PlaceType,
            "privacy" => Attribute::Privacy,
            "relationship" => Attribute::Relationship,
            "status-icon" => Attribute::StatusIcon,
            "sphere" => Attribute::Sphere,
            "time-offset" => Attribute::TimeOffset,
            "user-input" => Attribute::UserInput,
            _ => return None,
        })
    }
}

/// A permission set: what a watcher may see (RFC 5025 §3.3). The default shows nothing but
/// the document itself; rules add to it. Ordered and hashable so a service can keep one
/// filtered document per distinct set rather than per watcher.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Transformations {
    pub services: Provide,
    pub persons: Provide,
    pub devices: Provide,
    /// `provide-all-attributes`.
    pub all_attributes: bool,
    pub attributes: BTreeSet<Attribute>,
    /// `provide-unknown-attribute`: (namespace URI, local name) of elements outside PIDF, the
    /// data model and RPID.
    pub unknown: BTreeSet<(String, String)>,
}

impl Transformations {
    /// Everything: the presentity's own view, or a service without rules.
    pub fn everything() -> Transformations {
        Transformations {
            services: Provide::all(),
            persons: Provide::all(),
            devices: Provide::all(),
            all_attributes: true,
            attributes: BTreeSet::new(),
            unknown: BTreeSet::new(),
        }
    }

    /// Adds what `other` grants (RFC 4745 §10.2: transformations combine by union).
    pub fn union(&mut self, other: &Transformations) {
        self.services.union(&other.services);
        self.persons.union(&other.persons);
        self.devices.union(&other.devices);
        self.all_attributes |= other.all_attributes;
        self.attributes.extend(other.attributes.iter().copied());
        self.unknown.extend(other.unknown.iter().cloned());
    }

    fn attribute(&self, a: Attribute) -> bool {
        self.all_attributes || self.attributes.contains(&a)
    }

    /// May a child element of a tuple, person or device (or of a tuple's status) be shown?
    fn child(&self, node: &Node, in_device: bool) -> bool {
        match node.ns {
            Ns::Pidf => match node.local.as_str() {
                // RFC 5025 §3.3: the status, contact and timestamp are what a provided
                // tuple is; notes need provide-note.
                "status" | "basic" | "contact" | "timestamp" => true,
                "note" => self.attribute(Attribute::Note),
                _ => self.all_attributes,
            },
            Ns::DataModel => match node.local.as_str() {
                "timestamp" => true,
                "deviceID" => in_device || self.attribute(Attribute::DeviceId),
                "note" => self.attribute(Attribute::Note),
                _ => self.all_attributes,
            },
            Ns::Other if node.ns_uri.as_deref() == Some(RPID_NS) => {
                match Attribute::of_rpid(&node.local) {
                    Some(a) => self.attribute(a),
                    None => self.all_attributes,
                }
            }
            _ => self.unknown_allowed(node),
        }
    }

    fn unknown_allowed(&self, node: &Node) -> bool {
        self.all_attributes
            || self
                .unknown
                .contains(&(node.ns_uri.clone().unwrap_or_default(), node.local.clone()))
    }
}

/// An element of the document with its byte span, read a few levels deep.
struct Node {
    ns: Ns,
    ns_uri: Option<String>,
    local: String,
    id: Option<String>,
    /// Offset of `<`.
    start: usize,
    /// The content span, `None` for an empty-element tag.
    content: Option<(usize, usize)>,
    /// Offset after the end tag.
    end: usize,
    children: Vec<Node>,
    /// Direct character data.
    text: String,
}

impl Node {
    fn is(&self, ns: Ns, local: &str) -> bool {
        self.ns == ns && self.local == local
    }

    fn is_rpid(&self, local: &str) -> bool {
        self.ns_uri.as_deref() == Some(RPID_NS) && self.local == local
    }

    fn child_text(&self, pick: impl Fn(&Node) -> bool) -> Option<&str> {
        self.children
            .iter()
            .find(|c| pick(c))
            .map(|c| trim_xml(&c.text))
    }

    /// Reads the element `el` just returned by `cur` through its end, with its descendants
    /// down to `levels` more levels.
    fn read(cur: &mut XmlCursor<'_>, el: &Element<'_>, levels: u8) -> Result<Node, PidfError> {
        let start = cur.event_start();
        let mut node = Node {
            ns: el.ns,
            ns_uri: el.ns_uri.clone(),
            local: el.local_name().to_owned(),
            id: el.attr("id"),
            start,
            content: None,
            end: cur.position(),
            children: Vec::new(),
            text: String::new(),
        };
        if el.empty {
            return Ok(node);
        }
        let content_start = cur.position();
        loop {
            match cur.next()? {
                Item::Start(child) if levels > 0 => {
                    node.children.push(Node::read(cur, &child, levels - 1)?)
                }
                Item::Start(child) => skip(cur, &child)?,
                Item::Text(t) => node.text.push_str(&t),
                Item::End => {
                    node.content = Some((content_start, cur.event_start()));
                    node.end = cur.position();
                    return Ok(node);
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

    /// Writes the element, keeping the children `keep` allows; those it marks
    /// [`Keep::Filtered`] are written with only the children `nested` allows.
    fn write(
        &self,
        input: &str,
        out: &mut String,
        keep: &dyn Fn(&Node) -> Keep,
        nested: &dyn Fn(&Node) -> bool,
    ) {
        let Some((content_start, _)) = self.content else {
            out.push_str(&input[self.start..self.end]);
            return;
        };
        out.push_str(&input[self.start..content_start]);
        let mut at = content_start;
        for child in &self.children {
            out.push_str(&input[at..child.start]);
            match keep(child) {
                Keep::Whole => out.push_str(&input[child.start..child.end]),
                Keep::Filtered => child.write(input, out, &|c| keep_if(nested(c)), &|_| true),
                Keep::Drop => {}
            }
            at = child.end;
        }
        out.push_str(&input[at..self.end]);
    }
}

enum Keep {
    Whole,
    Filtered,
    Drop,
}

/// Limits for documents this process composed itself: their size is bounded by the
/// publications that made them, which were checked when they arrived.
fn own_limits() -> XmlLimits {
    XmlLimits {
        max_bytes: usize::MAX,
        max_elements: usize::MAX,
        ..XmlLimits::default()
    }
}

/// Reads the children of a PIDF document's root.
fn top_level(xml: &str) -> Result<(XmlCursor<'_>, Vec<Node>), PidfError> {
    let (mut cur, _root) =
        XmlCursor::open_root(xml.as_bytes(), &own_limits(), Ns::Pidf, PIDF_NS, "presence")?;
    let mut children = Vec::new();
    loop {
        match cur.next()? {
            Item::Start(el) => children.push(Node::read(&mut cur, &el, 2)?),
            Item::Text(_) => {}
            Item::End | Item::Eof => break,
        }
    }
    Ok((cur, children))
}

fn selected(provide: &Provide, node: &Node) -> bool {
    if provide.all {
        return true;
    }
    let class = node.child_text(|c| c.is_rpid("class"));
    let contact = node.child_text(|c| c.is(Ns::Pidf, "contact"));
    let device_id = node.child_text(|c| c.is(Ns::DataModel, "deviceID"));
    provide.selectors.iter().any(|s| match s {
        Selector::Class(want) => class == Some(want.as_str()),
        Selector::OccurrenceId(want) => node.id.as_deref() == Some(want.as_str()),
        Selector::DeviceId(want) => {
            node.is(Ns::DataModel, "device") && device_id == Some(want.as_str())
        }
        Selector::ServiceUri(want) => contact == Some(want.as_str()),
        Selector::ServiceUriScheme(want) => contact
            .and_then(|c| c.split_once(':'))
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case(want)),
    })
}

/// Applies `t` to a PIDF document (one this process composed): tuples, persons and devices
/// not provided are removed, and so are the attributes (child elements) `t` does not grant.
/// Everything kept is copied unchanged, with its namespace declarations.
pub fn filter(xml: &str, t: &Transformations) -> Result<String, PidfError> {
    let (cur, children) = top_level(xml)?;
    let input = cur.input();
    let Some(first) = children.first() else {
        return Ok(xml.to_owned());
    };
    let mut out = String::with_capacity(input.len());
    out.push_str(&input[..first.start]);
    let in_tuple = |c: &Node| {
        if c.is(Ns::Pidf, "status") {
            Keep::Filtered
        } else {
            keep_if(t.child(c, false))
        }
    };
    let in_person = |c: &Node| keep_if(t.child(c, false));
    let in_device = |c: &Node| keep_if(t.child(c, true));
    let in_status = |c: &Node| t.child(c, false);
    let mut at = first.start;
    for child in &children {
        out.push_str(&input[at..child.start]);
        at = child.end;
        let keep: &dyn Fn(&Node) -> Keep = if child.is(Ns::Pidf, "tuple") {
            if !selected(&t.services, child) {
                continue;
            }
            &in_tuple
        } else if child.is(Ns::DataModel, "person") {
            if !selected(&t.persons, child) {
                continue;
            }
            &in_person
        } else if child.is(Ns::DataModel, "device") {
            if !selected(&t.devices, child) {
                continue;
            }
            &in_device
        } else {
            let shown = if child.is(Ns::Pidf, "note") {
                t.attribute(Attribute::Note)
            } else {
                t.unknown_allowed(child)
            };
            if shown {
                out.push_str(&input[child.start..child.end]);
            }
            continue;
        };
        if t.all_attributes {
            out.push_str(&input[child.start..child.end]);
        } else {
            child.write(input, &mut out, keep, &in_status);
        }
    }
    out.push_str(&input[at..]);
    Ok(drop_blank_lines(out))
}

fn keep_if(keep: bool) -> Keep {
    if keep {
        Keep::Whole
    } else {
        Keep::Drop
    }
}

/// Lines left holding only indentation where an element was cut out.
fn drop_blank_lines(xml: String) -> String {
    if !xml.contains("\n  \n") && !xml.contains("\n    \n") {
        return xml;
    }
    let mut out = String::with_capacity(xml.len());
    for line in xml.split_inclusive('\n') {
        if line.trim().is_empty() && line.len() > 1 {
            continue;
        }
        out.push_str(line);
    }
    out
}

/// The presentity's current sphere (RFC 4480 §3.5, the `<rpid:sphere>` of the first person
/// that has one), which pres-rules sphere conditions test (RFC 4745 §7.2): its text, or the
/// name of its child element (`<rpid:work/>` is `work`). `None` when no person states one or
/// the document does not read.
pub fn sphere(xml: &str) -> Option<String> {
    let (_, children) = top_level(xml).ok()?;
    children
        .iter()
        .filter(|c| c.is(Ns::DataModel, "person"))
        .flat_map(|p| p.children.iter())
        .find(|c| c.is_rpid("sphere"))
        .and_then(|s| {
            let text = trim_xml(&s.text);
            if text.is_empty() {
                s.children.first().map(|c| c.local.clone())
            } else {
                Some(text.to_owned())
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:d="urn:ietf:params:xml:ns:pidf:data-model" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">
  <tuple id="sip-phone"><status><basic>open</basic><r:privacy/></status><r:class>work</r:class><d:deviceID>urn:uuid:d1</d:deviceID><contact>sip:alice@pc.example.com</contact><note>at my desk</note></tuple>
  <tuple id="im"><status><basic>open</basic></status><contact>im:alice@example.com</contact></tuple>
  <note>top note</note>
  <d:person id="p1"><r:activities><r:meeting/></r:activities><r:mood><r:happy/></r:mood><r:sphere>work</r:sphere><ext:geo xmlns:ext="urn:example:geo">lab</ext:geo><d:timestamp>2026-11-28T10:00:00Z</d:timestamp></d:person>
  <d:device id="dev1"><d:deviceID>urn:uuid:d1</d:deviceID><r:user-input>active</r:user-input></d:device>
</presence>
"#;

    fn parses(xml: &str) {
        crate::PidfDocument::parse(xml.as_bytes(), &XmlLimits::default())
            .unwrap_or_else(|e| panic!("filtered document does not parse: {e}\n{xml}"));
    }

    #[test]
    fn everything_keeps_the_document() {
        let out = filter(DOC, &Transformations::everything()).unwrap();
        assert_eq!(out, DOC);
    }

    #[test]
    fn nothing_granted_leaves_an_empty_presence() {
        let out = filter(DOC, &Transformations::default()).unwrap();
        parses(&out);
        assert!(!out.contains("<tuple"), "{out}");
        assert!(!out.contains("person"), "{out}");
        assert!(!out.contains("note"), "{out}");
        assert!(out.contains(r#"entity="sip:alice@example.com""#));
    }

    #[test]
    fn services_by_scheme_keep_the_core_and_drop_attributes() {
        let mut t = Transformations::default();
        t.services
            .selectors
            .insert(Selector::ServiceUriScheme("SIP".into()));
        let out = filter(DOC, &t).unwrap();
        parses(&out);
        assert!(out.contains(r#"<tuple id="sip-phone">"#), "{out}");
        assert!(!out.contains(r#"id="im""#), "{out}");
        assert!(out.contains("<basic>open</basic>"));
        assert!(out.contains("<contact>sip:alice@pc.example.com</contact>"));
        assert!(
            !out.contains("privacy"),
            "status extensions need provide-privacy: {out}"
        );
        assert!(!out.contains("r:class"), "{out}");
        assert!(!out.contains("deviceID"), "{out}");
        assert!(!out.contains("at my desk"), "{out}");
    }

    #[test]
    fn person_attributes_one_by_one() {
        let mut t = Transformations::default();
        t.persons.all = true;
        t.attributes.insert(Attribute::Activities);
        t.attributes.insert(Attribute::Note);
        t.unknown.insert(("urn:example:geo".into(), "geo".into()));
        let out = filter(DOC, &t).unwrap();
        parses(&out);
        assert!(
            out.contains("<r:activities><r:meeting/></r:activities>"),
            "{out}"
        );
        assert!(!out.contains("mood"), "{out}");
        assert!(!out.contains("sphere"), "{out}");
        assert!(
            out.contains(r#"<ext:geo xmlns:ext="urn:example:geo">lab</ext:geo>"#),
            "{out}"
        );
        assert!(out.contains("<d:timestamp>"), "{out}");
        assert!(out.contains("<note>top note</note>"), "{out}");
        assert!(!out.contains("<tuple"), "{out}");
    }

    #[test]
    fn selectors_by_class_occurrence_and_device() {
        let mut t = Transformations::default();
        t.services.selectors.insert(Selector::Class("work".into()));
        t.devices
            .selectors
            .insert(Selector::DeviceId("urn:uuid:d1".into()));
        t.persons
            .selectors
            .insert(Selector::OccurrenceId("nope".into()));
        let out = filter(DOC, &t).unwrap();
        parses(&out);
        assert!(out.contains(r#"id="sip-phone""#));
        assert!(!out.contains(r#"id="im""#));
        assert!(
            out.contains(r#"<d:device id="dev1"><d:deviceID>urn:uuid:d1</d:deviceID></d:device>"#),
            "{out}"
        );
        assert!(!out.contains("person"));
    }

    #[test]
    fn any_prefixes_work() {
        let doc = DOC
            .replace(
                "xmlns=\"urn:ietf:params:xml:ns:pidf\"",
                "xmlns:p=\"urn:ietf:params:xml:ns:pidf\"",
            )
            .replace("<presence ", "<p:presence ")
            .replace("</presence>", "</p:presence>")
            .replace("<tuple", "<p:tuple")
            .replace("</tuple>", "</p:tuple>")
            .replace("<status>", "<p:status>")
            .replace("</status>", "</p:status>")
            .replace("<basic>", "<p:basic>")
            .replace("</basic>", "</p:basic>")
            .replace("<contact>", "<p:contact>")
            .replace("</contact>", "</p:contact>")
            .replace("<note>", "<p:note>")
            .replace("</note>", "</p:note>");
        let mut t = Transformations::default();
        t.services.all = true;
        let out = filter(&doc, &t).unwrap();
        assert!(out.contains("<p:basic>open</p:basic>"), "{out}");
        assert!(!out.contains("p:note"), "{out}");
        parses(&out);
    }

    #[test]
    fn union_combines_permissions() {
        let mut a = Transformations::default();
        a.services.selectors.insert(Selector::Class("x".into()));
        a.attributes.insert(Attribute::Mood);
        let mut b = Transformations::default();
        b.services.all = true;
        b.attributes.insert(Attribute::Sphere);
        a.union(&b);
        assert!(a.services.all && a.services.selectors.is_empty());
        assert_eq!(a.attributes.len(), 2);
    }

    #[test]
    fn sphere_from_text_or_element() {
        assert_eq!(sphere(DOC).as_deref(), Some("work"));
        let doc = DOC.replace(
            "<r:sphere>work</r:sphere>",
            "<r:sphere><r:home/></r:sphere>",
        );
        assert_eq!(sphere(&doc).as_deref(), Some("home"));
        let doc = DOC.replace("<r:sphere>work</r:sphere>", "");
        assert_eq!(sphere(&doc), None);
    }
}
