//! Composition: the publications of one presentity merged into the one document its
//! watchers receive (RFC 3903 §1: the compositor).

use std::collections::{BTreeMap, HashSet};

use crate::document::{Device, Note, Person, PidfDocument, Tuple};
use crate::xml::{
    escape_text_into, write_attribute, write_namespace_declaration, Fragment, PIDF_NS,
};

/// Orders publications: a larger value is newer. The presence service uses the time a
/// publication was last modified, or a per-presentity counter; only the order matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PublicationOrder(pub u64);

/// The merged presence document of one presentity, ready to send in a NOTIFY body
/// (`application/pidf+xml`).
///
/// Its XML is built once, at composition. Two composed documents are equal exactly when
/// their XML is byte-identical, so `old == new` (or comparing [`ComposedDocument::digest`]s
/// kept from before) tells the presence service that a new publication changed nothing
/// watchers would see and no NOTIFY is due.
#[derive(Clone, Debug)]
pub struct ComposedDocument {
    entity: String,
    tuples: Vec<Tuple>,
    notes: Vec<Note>,
    persons: Vec<Person>,
    devices: Vec<Device>,
    extensions: Vec<Fragment>,
    xml: String,
}

impl PartialEq for ComposedDocument {
    fn eq(&self, other: &Self) -> bool {
        self.xml == other.xml
    }
}

impl Eq for ComposedDocument {}

/// Merges the publications of `presentity` (`sip:user@host`) into one document.
///
/// - Tuples, persons and devices are merged by id, separately per kind. When several
///   publications carry the same id, the newest (largest [`PublicationOrder`]; on a tie, the
///   later in the slice) wins whole: elements are never merged inside.
/// - Elements are copied unchanged, timestamps and extensions included.
/// - Notes are deduplicated on (language, text), newest publication first; other top-level
///   extension elements likewise on their XML.
/// - Tuples, persons and devices are written in id order, so the document depends on which
///   elements win and not on the order publications were stored or refreshed in.
/// - The entity is `presentity` as given (the `sip:` URI watchers subscribed to, which is what
///   SIP clients compare with their buddy list), not the publisher's `pres:` form.
///
/// With no publication the result is [`offline`]. Entities are not checked here: do that
/// when accepting a PUBLISH ([`PidfDocument::check_entity`]).
pub fn compose(
    presentity: &str,
    publications: &[(PublicationOrder, &PidfDocument)],
) -> ComposedDocument {
    if publications.is_empty() {
        return offline(presentity);
    }
    let mut by_age: Vec<&(PublicationOrder, &PidfDocument)> = publications.iter().collect();
    by_age.sort_by_key(|(order, _)| *order); // stable: ties keep slice order
    let mut tuples: BTreeMap<&str, &Tuple> = BTreeMap::new();
    let mut persons: BTreeMap<&str, &Person> = BTreeMap::new();
    let mut devices: BTreeMap<&str, &Device> = BTreeMap::new();
    for (_, doc) in &by_age {
        for t in doc.tuples() {
            tuples.insert(t.id(), t);
        }
        for p in doc.persons() {
            persons.insert(p.id(), p);
        }
        for d in doc.devices() {
            devices.insert(d.id(), d);
        }
    }
    let mut notes = Vec::new();
    let mut seen_notes = HashSet::new();
    let mut extensions = Vec::new();
    let mut seen_extensions = HashSet::new();
    for (_, doc) in by_age.iter().rev() {
        for n in doc.notes() {
            if seen_notes.insert(n) {
                notes.push(n.clone());
            }
        }
        for e in doc.extensions() {
            if seen_extensions.insert(e) {
                extensions.push(e.clone());
            }
        }
    }
    ComposedDocument::build(
        presentity,
        tuples.into_values().cloned().collect(),
        notes,
        persons.into_values().cloned().collect(),
        devices.into_values().cloned().collect(),
        extensions,
    )
}

/// The document of a presentity with no live publication: one tuple, id `offline`, whose
/// basic status is `closed` (RFC 3863 §4.1.4). Also what a polite-blocked watcher can be
/// shown.
pub fn offline(presentity: &str) -> ComposedDocument {
    ComposedDocument::build(
        presentity,
        vec![Tuple::offline()],
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    )
}

impl ComposedDocument {
    fn build(
        entity: &str,
        tuples: Vec<Tuple>,
        notes: Vec<Note>,
        persons: Vec<Person>,
        devices: Vec<Device>,
        extensions: Vec<Fragment>,
    ) -> ComposedDocument {
        let fragments = || {
            tuples
                .iter()
                .map(Tuple::fragment)
                .chain(persons.iter().map(Person::fragment))
                .chain(devices.iter().map(Device::fragment))
                .chain(extensions.iter())
        };
        // A prefix every fragment that declares it binds to the same URI is declared once on
        // the root; the fragments then leave it out. Conflicting prefixes stay on their
        // fragments, where they are right by construction.
        let mut hoisted: BTreeMap<&str, Option<&str>> = BTreeMap::new();
        for fragment in fragments() {
            for (prefix, uri) in fragment.namespace_declarations() {
                if prefix.is_empty() {
                    continue;
                }
                hoisted
                    .entry(prefix)
                    .and_modify(|known| {
                        if *known != Some(uri) {
                            *known = None;
                        }
                    })
                    .or_insert(Some(uri));
            }
        }
        let inherited = |prefix: &str, uri: &str| {
            if prefix.is_empty() {
                uri == PIDF_NS
            } else {
                hoisted.get(prefix) == Some(&Some(uri))
            }
        };

        let mut xml = String::with_capacity(256 + fragments().map(|_| 256).sum::<usize>());
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence");
        write_namespace_declaration(&mut xml, "", PIDF_NS);
        for (prefix, uri) in &hoisted {
            if let Some(uri) = uri {
                write_namespace_declaration(&mut xml, prefix, uri);
            }
        }
        write_attribute(&mut xml, "entity", entity);
        xml.push_str(">\n");
        // pidf.xsd: tuples, then notes, then extensions (persons and devices among them).
        for t in &tuples {
            xml.push_str("  ");
            t.fragment().write_into(&mut xml, &inherited);
            xml.push('\n');
        }
        for n in &notes {
            xml.push_str("  <note");
            if let Some(lang) = &n.lang {
                write_attribute(&mut xml, "xml:lang", lang);
            }
            xml.push('>');
            escape_text_into(&mut xml, &n.text);
            xml.push_str("</note>\n");
        }
        for f in persons
            .iter()
            .map(Person::fragment)
            .chain(devices.iter().map(Device::fragment))
            .chain(extensions.iter())
        {
            xml.push_str("  ");
            f.write_into(&mut xml, &inherited);
            xml.push('\n');
        }
        xml.push_str("</presence>\n");

        ComposedDocument {
            entity: entity.to_owned(),
            tuples,
            notes,
            persons,
            devices,
            extensions,
            xml,
        }
    }

    /// The document as XML, with its XML declaration.
    pub fn as_xml(&self) -> &str {
        &self.xml
    }

    /// The document as XML (an owned copy of [`ComposedDocument::as_xml`]).
    pub fn to_xml(&self) -> String {
        self.xml.clone()
    }

    /// A 64-bit FNV-1a hash of the XML: small enough to store beside a presentity (in Redis)
    /// and compare after a restart. The algorithm is fixed, unlike `std`'s hasher, so the
    /// value is the same across processes and builds; it changes only if this crate changes
    /// how it writes documents. It detects change, it does not authenticate.
    pub fn digest(&self) -> u64 {
        fnv1a64(self.xml.as_bytes())
    }

    /// The entity attribute (the presentity composition was asked for).
    pub fn entity(&self) -> &str {
        &self.entity
    }
    /// The winning tuples, by id.
    pub fn tuples(&self) -> &[Tuple] {
        &self.tuples
    }
    /// The notes, deduplicated.
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }
    /// The winning persons, by id.
    pub fn persons(&self) -> &[Person] {
        &self.persons
    }
    /// The winning devices, by id.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }
    /// Other top-level elements, deduplicated.
    pub fn extensions(&self) -> &[Fragment] {
        &self.extensions
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::fnv1a64;

    #[test]
    fn fnv_reference_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
