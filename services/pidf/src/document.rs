//! One published PIDF document (RFC 3863) with RFC 4479 persons and devices, read into kept
//! fragments.

use std::collections::HashSet;
use std::sync::Arc;

use crate::entity::entity_matches;
use crate::xml::{
    capture, text_of, trim_xml, Element, Fragment, Item, Ns, Path, XmlCursor, PIDF_NS,
};
use crate::{ElementKind, PidfError, XmlLimits};

/// The `<basic>` status of a tuple (RFC 3863 §4.1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BasicStatus {
    /// `open`: the service can be reached.
    Open,
    /// `closed`: it cannot.
    Closed,
}

impl BasicStatus {
    /// The XML value.
    pub fn as_str(self) -> &'static str {
        match self {
            BasicStatus::Open => "open",
            BasicStatus::Closed => "closed",
        }
    }
}

/// A `<note>` (RFC 3863 §4.1.6) with its optional `xml:lang`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Note {
    /// The `xml:lang` attribute.
    pub lang: Option<String>,
    /// The text, entity references resolved.
    pub text: String,
}

/// A `<tuple>`: one service of the presentity (RFC 3863 §4.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuple {
    id: String,
    basic: Option<BasicStatus>,
    contact: Option<String>,
    timestamp: Option<String>,
    fragment: Fragment,
}

impl Tuple {
    /// The `id` attribute.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The `<status><basic>` value; `None` when the status carries only extensions.
    pub fn basic(&self) -> Option<BasicStatus> {
        self.basic
    }
    /// The `<contact>` URI, trimmed.
    pub fn contact(&self) -> Option<&str> {
        self.contact.as_deref()
    }
    /// The `<timestamp>` value as written (trimmed; not checked as a date).
    pub fn timestamp(&self) -> Option<&str> {
        self.timestamp.as_deref()
    }
    /// The whole element.
    pub fn fragment(&self) -> &Fragment {
        &self.fragment
    }

    pub(crate) fn offline() -> Tuple {
        let id = "offline";
        Tuple {
            id: id.to_owned(),
            basic: Some(BasicStatus::Closed),
            contact: None,
            timestamp: None,
            fragment: Fragment::built(
                "tuple",
                vec![(String::new(), PIDF_NS.to_owned())],
                &[("id", id)],
                Some("<status><basic>closed</basic></status>".to_owned()),
            ),
        }
    }
}

/// A `<dm:person>` (RFC 4479 §3.4): the human, with RPID and other characteristics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    id: String,
    timestamp: Option<String>,
    fragment: Fragment,
}

impl Person {
    /// The `id` attribute.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The `<dm:timestamp>` value as written (trimmed).
    pub fn timestamp(&self) -> Option<&str> {
        self.timestamp.as_deref()
    }
    /// The whole element.
    pub fn fragment(&self) -> &Fragment {
        &self.fragment
    }
}

/// A `<dm:device>` (RFC 4479 §3.3): a piece of hardware the services run on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    id: String,
    device_id: Option<String>,
    timestamp: Option<String>,
    fragment: Fragment,
}

impl Device {
    /// The `id` attribute.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The `<dm:deviceID>` URN (trimmed).
    pub fn device_id(&self) -> Option<&str> {
        self.device_id.as_deref()
    }
    /// The `<dm:timestamp>` value as written (trimmed).
    pub fn timestamp(&self) -> Option<&str> {
        self.timestamp.as_deref()
    }
    /// The whole element.
    pub fn fragment(&self) -> &Fragment {
        &self.fragment
    }
}

/// A parsed PIDF document: what one publisher (one PUBLISH) said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PidfDocument {
    entity: String,
    tuples: Vec<Tuple>,
    notes: Vec<Note>,
    persons: Vec<Person>,
    devices: Vec<Device>,
    extensions: Vec<Fragment>,
}

const TUPLE_FIELDS: &[Path] = &[
    &[(Ns::Pidf, "status")],
    &[(Ns::Pidf, "status"), (Ns::Pidf, "basic")],
    &[(Ns::Pidf, "contact")],
    &[(Ns::Pidf, "timestamp")],
];
const PERSON_FIELDS: &[Path] = &[&[(Ns::DataModel, "timestamp")]];
const DEVICE_FIELDS: &[Path] = &[
    &[(Ns::DataModel, "deviceID")],
    &[(Ns::DataModel, "timestamp")],
];

fn trimmed(field: Option<&Option<String>>) -> Option<String> {
    field
        .and_then(Option::as_deref)
        .map(|s| trim_xml(s).to_owned())
}

impl PidfDocument {
    /// Parses and checks a PIDF body (`application/pidf+xml`).
    ///
    /// Checked: the limits, UTF-8, well-formed and namespace-well-formed XML without DOCTYPE,
    /// root `presence` in `urn:ietf:params:xml:ns:pidf` with a non-empty `entity` (RFC 3863
    /// §4.1.1), an `id` on every tuple, person and device and no id twice within one kind,
    /// a `status` in every tuple with a `basic` of `open` or `closed` if present (§4.1.4).
    ///
    /// Not checked: element order and the content of extensions. Real clients and even the
    /// RFC 4480 example break the schemas' content models (its `<rpid:sphere>` has text
    /// where rpid.xsd wants elements), and a presence server relays what it does not
    /// understand. Whether the entity is the publisher's is [`PidfDocument::check_entity`].
    pub fn parse(bytes: &[u8], limits: &XmlLimits) -> Result<PidfDocument, PidfError> {
        let (mut cur, root) = XmlCursor::open_root(bytes, limits, Ns::Pidf, PIDF_NS, "presence")?;
        let entity = root
            .attr("entity")
            .map(|e| trim_xml(&e).to_owned())
            .filter(|e| !e.is_empty())
            .ok_or(PidfError::MissingEntity)?;
        let mut doc = PidfDocument {
            entity,
            tuples: Vec::new(),
            notes: Vec::new(),
            persons: Vec::new(),
            devices: Vec::new(),
            extensions: Vec::new(),
        };
        let mut ids: HashSet<(ElementKind, String)> = HashSet::new();
        // Every kept element is a child of the root, so they all inherit the root's scope.
        let inherited: Arc<[(String, String)]> = cur.bindings().into();
        if !root.empty {
            loop {
                match cur.next()? {
                    Item::Start(el) => doc.child(&mut cur, &el, &inherited, &mut ids)?,
                    Item::Text(_) => {} // indentation; stray text is not worth a 400
                    Item::End | Item::Eof => break,
                }
            }
        }
        // Comments and PIs may follow the root; anything else is refused by the cursor.
        while !matches!(cur.next()?, Item::Eof) {}
        Ok(doc)
    }

    fn child(
        &mut self,
        cur: &mut XmlCursor<'_>,
        el: &Element<'_>,
        inherited: &Arc<[(String, String)]>,
        ids: &mut HashSet<(ElementKind, String)>,
    ) -> Result<(), PidfError> {
        let kind = if el.is(Ns::Pidf, "tuple") {
            ElementKind::Tuple
        } else if el.is(Ns::DataModel, "person") {
            ElementKind::Person
        } else if el.is(Ns::DataModel, "device") {
            ElementKind::Device
        } else if el.is(Ns::Pidf, "note") {
            let lang = el.attr("xml:lang");
            let text = text_of(cur, el)?;
            self.notes.push(Note { lang, text });
            return Ok(());
        } else {
            self.extensions
                .push(capture(cur, el, inherited, &[])?.fragment);
            return Ok(());
        };
        let id = el
            .attr("id")
            .map(|id| trim_xml(&id).to_owned())
            .filter(|id| !id.is_empty())
            .ok_or(PidfError::MissingId(kind))?;
        if !ids.insert((kind, id.clone())) {
            return Err(PidfError::DuplicateId { kind, id });
        }
        match kind {
            ElementKind::Tuple => {
                let c = capture(cur, el, inherited, TUPLE_FIELDS)?;
                if c.fields.first().is_none_or(Option::is_none) {
                    return Err(PidfError::MissingStatus { tuple_id: id });
                }
                let basic = match trimmed(c.fields.get(1)).as_deref() {
                    None => None,
                    Some("open") => Some(BasicStatus::Open),
                    Some("closed") => Some(BasicStatus::Closed),
                    Some(other) => {
                        return Err(PidfError::InvalidBasicStatus {
                            value: other.chars().take(64).collect(),
                        })
                    }
                };
                self.tuples.push(Tuple {
                    id,
                    basic,
                    contact: trimmed(c.fields.get(2)),
                    timestamp: trimmed(c.fields.get(3)),
                    fragment: c.fragment,
                });
            }
            ElementKind::Person => {
                let c = capture(cur, el, inherited, PERSON_FIELDS)?;
                self.persons.push(Person {
                    id,
                    timestamp: trimmed(c.fields.first()),
                    fragment: c.fragment,
                });
            }
            ElementKind::Device => {
                let c = capture(cur, el, inherited, DEVICE_FIELDS)?;
                self.devices.push(Device {
                    id,
                    device_id: trimmed(c.fields.first()),
                    timestamp: trimmed(c.fields.get(1)),
                    fragment: c.fragment,
                });
            }
        }
        Ok(())
    }

    /// The `entity` attribute, as written.
    pub fn entity(&self) -> &str {
        &self.entity
    }

    /// Refuses a document published for `presentity` whose entity names someone else
    /// (compared with [`entity_matches`]).
    pub fn check_entity(&self, presentity: &str) -> Result<(), PidfError> {
        if entity_matches(&self.entity, presentity) {
            Ok(())
        } else {
            Err(PidfError::EntityMismatch {
                entity: self.entity.clone(),
                presentity: presentity.to_owned(),
            })
        }
    }

    /// The tuples, in document order.
    pub fn tuples(&self) -> &[Tuple] {
        &self.tuples
    }
    /// The top-level notes, in document order.
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }
    /// The persons, in document order.
    pub fn persons(&self) -> &[Person] {
        &self.persons
    }
    /// The devices, in document order.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }
    /// Other top-level elements (extensions in other namespaces), in document order.
    pub fn extensions(&self) -> &[Fragment] {
        &self.extensions
    }
}
