//! The RFC examples in ../shared/vectors/presence-docs.

mod common;

use common::{expanded_names, has_element, presence_doc, vectors};
use pidf::{
    BasicStatus, ElementKind, PidfDocument, PidfError, XmlLimits, DATA_MODEL_NS, PIDF_NS, RPID_NS,
};

fn parse(name: &str) -> Result<PidfDocument, PidfError> {
    PidfDocument::parse(&presence_doc(name), &XmlLimits::default())
}

#[test]
fn every_pidf_vector_is_classified() {
    // Each PIDF example either parses or is the one documented exception; a new vector
    // added to the folder has to be looked at.
    let mut seen = 0;
    for entry in std::fs::read_dir(vectors().join("presence-docs")).expect("vectors folder") {
        let path = entry.expect("entry").path();
        let body = std::fs::read(&path).expect("read");
        if !String::from_utf8_lossy(&body).contains("urn:ietf:params:xml:ns:pidf\"") {
            continue; // not a PIDF document (watcherinfo, resource-lists, ...)
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let result = PidfDocument::parse(&body, &XmlLimits::default());
        if name == "rfc4479-data-model-example.resip.xml" {
            assert_eq!(result.unwrap_err(), PidfError::MissingEntity, "{name}");
        } else {
            let doc = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!doc.tuples().is_empty(), "{name}");
        }
        seen += 1;
    }
    assert_eq!(seen, 5, "five PIDF examples expected");
}

#[test]
fn rfc3863_example() {
    let doc = parse("rfc3863-pidf-example.xml").unwrap();
    assert_eq!(doc.entity(), "pres:someone@example.com");
    let ids: Vec<_> = doc.tuples().iter().map(|t| t.id()).collect();
    assert_eq!(ids, ["bs35r9", "eg92n8"]);
    let t = &doc.tuples()[0];
    assert_eq!(t.basic(), Some(BasicStatus::Open));
    assert_eq!(t.contact(), Some("im:someone@mobilecarrier.net"));
    assert_eq!(t.timestamp(), Some("2001-10-27T16:49:29Z"));
    assert_eq!(doc.tuples()[1].timestamp(), None);
    assert_eq!(doc.notes().len(), 1);
    assert_eq!(doc.notes()[0].text, "I'll be in Tokyo next week");
    assert_eq!(doc.notes()[0].lang, None);
    // The im: and myex: extensions inside <status> are kept with their namespaces.
    let xml = t.fragment().to_xml();
    assert!(
        has_element(&xml, "urn:ietf:params:xml:ns:pidf:im", "im"),
        "{xml}"
    );
    assert!(
        has_element(&xml, "http://id.example.com/presence/", "location"),
        "{xml}"
    );
    assert!(xml.contains("xml:lang=\"fr\""), "{xml}");
}

#[test]
fn rfc3863_prefixed_namespace_example() {
    let doc = parse("rfc3863-namespace-example.resip.xml").unwrap();
    let t = &doc.tuples()[0];
    assert_eq!(t.id(), "mobile-im");
    assert_eq!(t.basic(), Some(BasicStatus::Open));
    assert_eq!(t.contact(), Some("tel:+09012345678"));
    let xml = t.fragment().to_xml();
    assert!(
        xml.starts_with("<impp:tuple xmlns:impp=\"urn:ietf:params:xml:ns:pidf\""),
        "{xml}"
    );
    assert!(has_element(&xml, PIDF_NS, "basic"));
}

#[test]
fn rfc4479_example_needs_its_entity() {
    // PROVENANCE.md: this copy lacks `entity`, which RFC 3863 §4.1.1 and pidf.xsd require.
    // Herald refuses it (a PUBLISH must say whose presence it is); with the attribute
    // added, the RFC 4479 content itself is accepted.
    let body = presence_doc("rfc4479-data-model-example.resip.xml");
    assert_eq!(
        PidfDocument::parse(&body, &XmlLimits::default()).unwrap_err(),
        PidfError::MissingEntity
    );
    let fixed = String::from_utf8(body).unwrap().replacen(
        "<presence ",
        "<presence entity=\"pres:someone@example.com\" ",
        1,
    );
    let doc = PidfDocument::parse(fixed.as_bytes(), &XmlLimits::default()).unwrap();
    assert_eq!(doc.tuples()[0].id(), "sg89ae");
    assert_eq!(doc.persons()[0].id(), "p1");
    assert_eq!(doc.devices()[0].id(), "pc122");
    assert_eq!(doc.devices()[0].device_id(), Some("mac:8asd7d7d70"));
    let tuple = doc.tuples()[0].fragment().to_xml();
    assert!(
        has_element(&tuple, "urn:ietf:params:xml:ns:pidf:caps", "MESSAGE"),
        "{tuple}"
    );
    assert!(has_element(&tuple, DATA_MODEL_NS, "deviceID"), "{tuple}");
}

#[test]
fn rfc4480_rpid_example_is_accepted_despite_rpid_xsd() {
    // <rpid:sphere>bowling league</rpid:sphere> has text where rpid.xsd wants elements:
    // a real example/schema conflict; the content is relayed, not judged.
    let doc = parse("rfc4480-rpid-example.resip.xml").unwrap();
    let ids: Vec<_> = doc.tuples().iter().map(|t| t.id()).collect();
    assert_eq!(ids, ["bs35r9", "ty4658", "eg92n8"]);
    assert_eq!(doc.notes().len(), 1);
    let device = &doc.devices()[0];
    assert_eq!(device.id(), "pc147");
    assert_eq!(device.device_id(), Some("urn:device:0003ba4811e3"));
    let person = &doc.persons()[0];
    assert_eq!(person.id(), "p1");
    assert_eq!(person.timestamp(), Some("2005-05-30T16:09:44+05:00"));
    let xml = person.fragment().to_xml();
    assert!(
        xml.contains("<rpid:sphere>bowling league</rpid:sphere>"),
        "{xml}"
    );
    assert!(has_element(&xml, RPID_NS, "angry"));
    assert!(has_element(
        &xml,
        "urn:ietf:params:xml:ns:location-type",
        "residence"
    ));
    // The person fragment stands alone: dm:, rpid: and lt: are declared on it.
    let names = expanded_names(&xml);
    assert_eq!(names[0], (DATA_MODEL_NS.to_owned(), "person".to_owned()));
    let tuple = doc.tuples()[0].fragment().to_xml();
    assert!(has_element(&tuple, RPID_NS, "self"), "{tuple}");
}

#[test]
fn rfc4482_cipid_example() {
    let doc = parse("rfc4482-cipid-example.resip.xml").unwrap();
    assert_eq!(doc.tuples()[1].basic(), Some(BasicStatus::Closed));
    let person = doc.persons()[0].fragment().to_xml();
    assert!(has_element(
        &person,
        "urn:ietf:params:xml:ns:pidf:cipid",
        "homepage"
    ));
}

#[test]
fn ids_are_unique_per_kind_only() {
    // A tuple and a person may share an id (different kinds); two tuples may not.
    let ok = format!(
        r#"<presence xmlns="{PIDF_NS}" xmlns:dm="{DATA_MODEL_NS}" entity="pres:a@b">
           <tuple id="x"><status><basic>open</basic></status></tuple>
           <dm:person id="x"/></presence>"#
    );
    assert!(PidfDocument::parse(ok.as_bytes(), &XmlLimits::default()).is_ok());
    let dup = format!(
        r#"<presence xmlns="{PIDF_NS}" xmlns:dm="{DATA_MODEL_NS}" entity="pres:a@b">
           <dm:device id="d"><dm:deviceID>urn:x</dm:deviceID></dm:device>
           <dm:device id="d"><dm:deviceID>urn:y</dm:deviceID></dm:device></presence>"#
    );
    assert_eq!(
        PidfDocument::parse(dup.as_bytes(), &XmlLimits::default()).unwrap_err(),
        PidfError::DuplicateId {
            kind: ElementKind::Device,
            id: "d".into()
        }
    );
}
