//! Composition of several publications of one presentity.

mod common;

use common::{count_element, expanded_names, has_element, presence_doc};
use pidf::{
    compose, offline, BasicStatus, PidfDocument, PublicationOrder, XmlLimits, DATA_MODEL_NS,
    PIDF_NS, RPID_NS,
};

const ALICE: &str = "sip:alice@example.com";

fn doc(body: &str) -> PidfDocument {
    PidfDocument::parse(body.as_bytes(), &XmlLimits::default())
        .unwrap_or_else(|e| panic!("{e}\n{body}"))
}

/// A publication with one tuple, one person and a note, the way a client writes it.
fn publication(tuple_id: &str, basic: &str, person_activity: &str, note: &str) -> PidfDocument {
    doc(&format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
          xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
          xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
          entity="pres:alice@example.com">
  <tuple id="{tuple_id}">
    <status><basic>{basic}</basic></status>
    <contact>sip:alice@{tuple_id}.example.com</contact>
    <timestamp>2026-11-28T10:00:00Z</timestamp>
  </tuple>
  <note>{note}</note>
  <dm:person id="p1">
    <rpid:activities><rpid:{person_activity}/></rpid:activities>
    <dm:timestamp>2026-11-28T10:00:00Z</dm:timestamp>
  </dm:person>
</presence>"#
    ))
}

/// Parses a composed document back, as a watcher would.
fn reparse(xml: &str) -> PidfDocument {
    let doc = doc(xml);
    assert_eq!(doc.entity(), ALICE);
    doc
}

#[test]
fn distinct_tuple_ids_are_all_kept() {
    let phone = publication("phone", "open", "on-the-phone", "On a call");
    let desk = publication("desk", "closed", "away", "Out of office");
    let composed = compose(
        ALICE,
        &[(PublicationOrder(1), &phone), (PublicationOrder(2), &desk)],
    );
    let ids: Vec<_> = composed.tuples().iter().map(|t| t.id()).collect();
    assert_eq!(ids, ["desk", "phone"]);
    let back = reparse(composed.as_xml());
    assert_eq!(back.tuples().len(), 2);
    let desk_tuple = back.tuples().iter().find(|t| t.id() == "desk").unwrap();
    assert_eq!(desk_tuple.basic(), Some(BasicStatus::Closed));
    assert_eq!(desk_tuple.timestamp(), Some("2026-11-28T10:00:00Z"));
    // Both notes, the newest publication's first.
    let notes: Vec<_> = back.notes().iter().map(|n| n.text.as_str()).collect();
    assert_eq!(notes, ["Out of office", "On a call"]);
    // Both publications have person p1: the newer (desk, away) wins.
    assert_eq!(back.persons().len(), 1);
    let person = back.persons()[0].fragment().to_xml();
    assert!(has_element(&person, RPID_NS, "away"), "{person}");
    assert!(!has_element(&person, RPID_NS, "on-the-phone"), "{person}");
}

#[test]
fn colliding_tuple_id_newest_wins() {
    let old = publication("t1", "open", "busy", "old");
    let new = publication("t1", "closed", "away", "new");
    for pubs in [
        [(PublicationOrder(5), &old), (PublicationOrder(9), &new)],
        [(PublicationOrder(9), &new), (PublicationOrder(5), &old)],
    ] {
        let composed = compose(ALICE, &pubs);
        assert_eq!(composed.tuples().len(), 1);
        assert_eq!(composed.tuples()[0].basic(), Some(BasicStatus::Closed));
        let back = reparse(composed.as_xml());
        assert_eq!(back.tuples()[0].basic(), Some(BasicStatus::Closed));
        assert_eq!(count_element(composed.as_xml(), PIDF_NS, "tuple"), 1);
    }
    // The order given, not the slice position, decides.
    let a = compose(
        ALICE,
        &[(PublicationOrder(5), &old), (PublicationOrder(9), &new)],
    );
    let b = compose(
        ALICE,
        &[(PublicationOrder(9), &new), (PublicationOrder(5), &old)],
    );
    assert_eq!(a, b);
    assert_eq!(a.digest(), b.digest());
    // On equal orders the later in the slice wins.
    let tie = compose(
        ALICE,
        &[(PublicationOrder(1), &new), (PublicationOrder(1), &old)],
    );
    assert_eq!(tie.tuples()[0].basic(), Some(BasicStatus::Open));
}

#[test]
fn notes_are_deduplicated() {
    let a = publication("a", "open", "busy", "Same");
    let b = publication("b", "open", "busy", "Same");
    let composed = compose(
        ALICE,
        &[(PublicationOrder(1), &a), (PublicationOrder(2), &b)],
    );
    assert_eq!(composed.notes().len(), 1);
    assert_eq!(count_element(composed.as_xml(), PIDF_NS, "note"), 1);
}

#[test]
fn equality_means_nothing_changed() {
    let a = publication("a", "open", "busy", "x");
    let b = publication("b", "open", "busy", "y");
    let first = compose(
        ALICE,
        &[(PublicationOrder(1), &a), (PublicationOrder(2), &b)],
    );
    // A refresh that bumps b's order (no collision) changes nothing a watcher sees.
    let refreshed = compose(
        ALICE,
        &[(PublicationOrder(1), &a), (PublicationOrder(3), &b)],
    );
    assert_eq!(first, refreshed);
    assert_eq!(first.digest(), refreshed.digest());
    // A real change does.
    let b2 = publication("b", "closed", "busy", "y");
    let changed = compose(
        ALICE,
        &[(PublicationOrder(1), &a), (PublicationOrder(4), &b2)],
    );
    assert_ne!(first, changed);
    assert_ne!(first.digest(), changed.digest());
}

#[test]
fn unknown_extensions_and_prefixes_survive() {
    let vendor = doc(r#"<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf"
        xmlns:acme="urn:example:acme" xmlns:geo="urn:example:geo"
        xmlns:data="urn:ietf:params:xml:ns:pidf:data-model"
        entity="sip:alice@example.com">
      <p:tuple id="acme-1">
        <p:status><p:basic>open</p:basic><acme:dnd level="3">yes &amp; no</acme:dnd></p:status>
        <acme:caps xmlns:x="urn:example:x"><x:video/><![CDATA[raw <b>]]></acme:caps>
        <!-- vendor comment -->
        <plain>no default namespace in scope</plain>
        <p:contact>sip:alice@acme.example.com</p:contact>
      </p:tuple>
      <data:device id="d1"><geo:where lat="1" lon="2"/><data:deviceID>urn:uuid:1</data:deviceID></data:device>
      <geo:top-level>hello</geo:top-level>
      <unqualified xmlns="">no namespace</unqualified>
    </p:presence>"#);
    let other = publication("desk", "open", "busy", "n");
    let composed = compose(
        ALICE,
        &[
            (PublicationOrder(1), &vendor),
            (PublicationOrder(2), &other),
        ],
    );
    let xml = composed.as_xml();
    for (ns, local) in [
        ("urn:example:acme", "dnd"),
        ("urn:example:acme", "caps"),
        ("urn:example:x", "video"),
        ("urn:example:geo", "where"),
        ("urn:example:geo", "top-level"),
        ("", "unqualified"),
        ("", "plain"),
        (DATA_MODEL_NS, "device"),
        (DATA_MODEL_NS, "deviceID"),
        (RPID_NS, "busy"),
    ] {
        assert!(
            has_element(xml, ns, local),
            "{ns} {local} missing in\n{xml}"
        );
    }
    // The unqualified element must not have slipped into the PIDF default namespace.
    assert!(!has_element(xml, PIDF_NS, "unqualified"), "{xml}");
    assert!(!has_element(xml, PIDF_NS, "plain"), "{xml}");
    assert!(xml.contains("yes &amp; no"), "{xml}");
    assert!(xml.contains("<![CDATA[raw <b>]]>"), "{xml}");
    assert!(xml.contains("<!-- vendor comment -->"), "{xml}");
    // And the output is a valid publication again, with what the parser extracts intact.
    let back = reparse(xml);
    let acme = back.tuples().iter().find(|t| t.id() == "acme-1").unwrap();
    assert_eq!(acme.contact(), Some("sip:alice@acme.example.com"));
    assert_eq!(back.devices()[0].device_id(), Some("urn:uuid:1"));
    assert_eq!(back.extensions().len(), 2);
    // Composing the output again gives the same document (composition is idempotent).
    let again = compose(ALICE, &[(PublicationOrder(1), &back)]);
    assert_eq!(again.as_xml(), xml);
}

#[test]
fn conflicting_prefixes_stay_local() {
    // Two publishers use the prefix "e" for different namespaces.
    let one = doc(
        r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:e="urn:one"
        entity="sip:alice@example.com"><tuple id="a"><status><e:x/></status></tuple></presence>"#,
    );
    let two = doc(
        r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:e="urn:two"
        entity="sip:alice@example.com"><tuple id="b"><status><e:x/></status></tuple></presence>"#,
    );
    let composed = compose(
        ALICE,
        &[(PublicationOrder(1), &one), (PublicationOrder(2), &two)],
    );
    let names = expanded_names(composed.as_xml());
    assert!(names.contains(&("urn:one".into(), "x".into())), "{names:?}");
    assert!(names.contains(&("urn:two".into(), "x".into())), "{names:?}");
}

#[test]
fn vectors_compose_into_one_document() {
    let limits = XmlLimits::default();
    let docs: Vec<PidfDocument> = [
        "rfc3863-pidf-example.xml",
        "rfc3863-namespace-example.resip.xml",
        "rfc4480-rpid-example.resip.xml",
        "rfc4482-cipid-example.resip.xml",
    ]
    .iter()
    .map(|n| PidfDocument::parse(&presence_doc(n), &limits).unwrap())
    .collect();
    let pubs: Vec<_> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| (PublicationOrder(i as u64), d))
        .collect();
    let composed = compose(ALICE, &pubs);
    let back = reparse(composed.as_xml());
    let ids: Vec<_> = back.tuples().iter().map(|t| t.id()).collect();
    // bs35r9 is in three documents; the cipid one (newest) wins.
    assert_eq!(ids, ["bs35r9", "bs78", "eg92n8", "mobile-im", "ty4658"]);
    assert_eq!(
        back.tuples()[0].contact(),
        Some("im:someone@mobile.example.net")
    );
    assert_eq!(back.tuples()[0].timestamp(), Some("2005-05-30T22:00:29Z"));
    // The prefixed-PIDF tuple keeps working under the default namespace.
    assert_eq!(back.tuples()[3].contact(), Some("tel:+09012345678"));
}

#[test]
fn offline_document() {
    let doc = offline(ALICE);
    assert_eq!(compose(ALICE, &[]), doc);
    let back = reparse(doc.as_xml());
    assert_eq!(back.tuples().len(), 1);
    assert_eq!(back.tuples()[0].basic(), Some(BasicStatus::Closed));
    assert!(back.persons().is_empty() && back.notes().is_empty());
    assert_ne!(
        doc,
        compose(
            ALICE,
            &[(
                PublicationOrder(1),
                &publication("t", "closed", "away", "n")
            )]
        )
    );
}

#[test]
fn entity_is_escaped() {
    let doc = offline("sip:a\"<&>@example.com");
    let back = PidfDocument::parse(doc.as_xml().as_bytes(), &XmlLimits::default()).unwrap();
    assert_eq!(back.entity(), "sip:a\"<&>@example.com");
}

#[test]
fn fragments_are_cut_at_the_right_bytes() {
    // A byte-order mark, CRLF line ends and multi-byte characters shift offsets: the kept
    // fragments must still start and end on their own tags.
    let body = "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"\r\n xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" entity=\"pres:alice@example.com\">\r\n<tuple id=\"t\"><status><basic>open</basic></status><note>日本語 ✓</note></tuple>\r\n<dm:person id=\"p\"><dm:note>Ünïcødé 🎉</dm:note></dm:person>\r\n</presence>\r\n";
    let parsed = doc(body);
    assert_eq!(
        parsed.tuples()[0].fragment().to_xml(),
        "<tuple xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" id=\"t\"><status><basic>open</basic></status><note>日本語 ✓</note></tuple>"
    );
    let composed = compose(ALICE, &[(PublicationOrder(1), &parsed)]);
    assert!(
        composed
            .as_xml()
            .contains("<dm:person id=\"p\"><dm:note>Ünïcødé 🎉</dm:note></dm:person>"),
        "{}",
        composed.as_xml()
    );
    reparse(composed.as_xml());
}
