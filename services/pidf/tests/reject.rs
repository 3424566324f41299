//! Bodies a PUBLISH must be refused for, and the status each maps to.

use pidf::{ElementKind, PidfDocument, PidfError, XmlLimits, PIDF_NS};

fn parse(body: &str) -> Result<PidfDocument, PidfError> {
    PidfDocument::parse(body.as_bytes(), &XmlLimits::default())
}

fn presence(inner: &str) -> String {
    format!(r#"<presence xmlns="{PIDF_NS}" entity="sip:alice@example.com">{inner}</presence>"#)
}

const TUPLE: &str = "<tuple id=\"t1\"><status><basic>open</basic></status></tuple>";

fn assert_not_well_formed(body: &str) {
    match parse(body) {
        Err(e @ PidfError::NotWellFormed { .. }) => assert_eq!(e.sip_status(), 400),
        other => panic!("expected NotWellFormed for {body:?}, got {other:?}"),
    }
}

#[test]
fn a_minimal_document_parses() {
    // The baseline the other cases break one thing of.
    let doc = parse(&presence(TUPLE)).unwrap();
    assert_eq!(doc.tuples()[0].id(), "t1");
}

#[test]
fn broken_xml() {
    assert_not_well_formed("");
    assert_not_well_formed("   ");
    assert_not_well_formed(&presence(TUPLE).replace("</presence>", ""));
    assert_not_well_formed(&presence("<tuple id=\"t1\"><status></tuple>"));
    assert_not_well_formed(&presence("<tuple id=\"t1\" id=\"t2\"><status/></tuple>"));
    assert_not_well_formed(&presence("<tuple id=t1><status/></tuple>"));
    assert_not_well_formed(&presence("<note>a & b</note>"));
    assert_not_well_formed(&presence("<note>&nbsp;</note>"));
    assert_not_well_formed(&presence("<note>&#1;</note>"));
    assert_not_well_formed(&presence("<note>\u{1}</note>"));
    assert_not_well_formed(&presence("<x:y xmlns:q=\"urn:q\"/>"));
    assert_not_well_formed(&presence("<note a=\"<\">x</note>"));
    assert_not_well_formed(&presence("<1bad/>"));
    assert_not_well_formed(&presence("<!-- a -- b -->"));
    assert_not_well_formed(&format!("{}<presence/>", presence(TUPLE)));
    assert_not_well_formed(&format!("{} trailing text", presence(TUPLE)));
    assert_not_well_formed(&format!("\n<?xml version=\"1.0\"?>{}", presence(TUPLE)));
}

#[test]
fn doctype_is_refused() {
    let body = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE presence [<!ENTITY a \"aaaa\">]>{}",
        presence("<note>&a;</note>")
    );
    assert_eq!(parse(&body).unwrap_err(), PidfError::DoctypeNotAllowed);
}

#[test]
fn encodings() {
    let latin1 = presence("<note>caf\u{e9}</note>");
    let mut bytes = latin1.into_bytes();
    // Turn the UTF-8 é (C3 A9) into Latin-1 E9.
    let at = bytes.windows(2).position(|w| w == [0xC3, 0xA9]).unwrap();
    bytes.splice(at..at + 2, [0xE9]);
    assert_eq!(
        PidfDocument::parse(&bytes, &XmlLimits::default()).unwrap_err(),
        PidfError::NotUtf8
    );
    let declared = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{}",
        presence(TUPLE)
    );
    assert!(matches!(
        parse(&declared).unwrap_err(),
        PidfError::UnsupportedEncoding { declared } if declared == "ISO-8859-1"
    ));
    // UTF-8 declared in any case, and a byte-order mark, are fine.
    let ok = format!(
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>{}",
        presence(TUPLE)
    );
    assert!(parse(&ok).is_ok());
}

#[test]
fn wrong_namespace_or_root() {
    let no_ns = "<presence entity=\"sip:a@b\"><tuple id=\"t\"><status/></tuple></presence>";
    assert_eq!(
        parse(no_ns).unwrap_err(),
        PidfError::WrongNamespace {
            expected: PIDF_NS,
            found: None
        }
    );
    let other = presence(TUPLE).replace(PIDF_NS, "urn:ietf:params:xml:ns:cpim-pidf");
    assert_eq!(
        parse(&other).unwrap_err(),
        PidfError::WrongNamespace {
            expected: PIDF_NS,
            found: Some("urn:ietf:params:xml:ns:cpim-pidf".into())
        }
    );
    let root = format!("<tuple xmlns=\"{PIDF_NS}\" id=\"t\"><status/></tuple>");
    assert!(matches!(
        parse(&root).unwrap_err(),
        PidfError::WrongRootElement { found, .. } if found == "tuple"
    ));
}

#[test]
fn missing_entity() {
    let body = format!("<presence xmlns=\"{PIDF_NS}\">{TUPLE}</presence>");
    assert_eq!(parse(&body).unwrap_err(), PidfError::MissingEntity);
    let empty = format!("<presence xmlns=\"{PIDF_NS}\" entity=\" \">{TUPLE}</presence>");
    assert_eq!(parse(&empty).unwrap_err(), PidfError::MissingEntity);
}

#[test]
fn entity_mismatch() {
    let doc = parse(&presence(TUPLE)).unwrap();
    assert!(doc.check_entity("sip:alice@EXAMPLE.com").is_ok());
    let err = doc.check_entity("sip:mallory@example.com").unwrap_err();
    assert_eq!(
        err,
        PidfError::EntityMismatch {
            entity: "sip:alice@example.com".into(),
            presentity: "sip:mallory@example.com".into()
        }
    );
    assert_eq!(err.sip_status(), 400);
}

#[test]
fn tuples_need_id_and_status() {
    assert_eq!(
        parse(&presence("<tuple><status/></tuple>")).unwrap_err(),
        PidfError::MissingId(ElementKind::Tuple)
    );
    assert_eq!(
        parse(&presence(
            "<tuple id=\"t1\"><contact>sip:a@b</contact></tuple>"
        ))
        .unwrap_err(),
        PidfError::MissingStatus {
            tuple_id: "t1".into()
        }
    );
    // A status in another namespace is not the PIDF status.
    assert!(matches!(
        parse(&presence(
            "<tuple id=\"t1\"><x:status xmlns:x=\"urn:x\"/></tuple>"
        ))
        .unwrap_err(),
        PidfError::MissingStatus { .. }
    ));
    assert_eq!(
        parse(&presence(
            "<tuple id=\"t1\"><status><basic>busy</basic></status></tuple>"
        ))
        .unwrap_err(),
        PidfError::InvalidBasicStatus {
            value: "busy".into()
        }
    );
    assert_eq!(
        parse(&presence(&format!("{TUPLE}{TUPLE}"))).unwrap_err(),
        PidfError::DuplicateId {
            kind: ElementKind::Tuple,
            id: "t1".into()
        }
    );
    let person = format!("<dm:person xmlns:dm=\"{}\"/>", pidf::DATA_MODEL_NS);
    assert_eq!(
        parse(&presence(&person)).unwrap_err(),
        PidfError::MissingId(ElementKind::Person)
    );
}

#[test]
fn oversized_document() {
    let limits = XmlLimits {
        max_bytes: 200,
        ..XmlLimits::default()
    };
    let body = presence(&format!("{TUPLE}<note>{}</note>", "x".repeat(200)));
    let err = PidfDocument::parse(body.as_bytes(), &limits).unwrap_err();
    assert!(
        matches!(err, PidfError::TooLarge { limit: 200, .. }),
        "{err:?}"
    );
    assert_eq!(err.sip_status(), 413);
    // The default limit holds too.
    let huge = vec![b' '; XmlLimits::DEFAULT_MAX_BYTES + 1];
    assert!(matches!(
        PidfDocument::parse(&huge, &XmlLimits::default()).unwrap_err(),
        PidfError::TooLarge { .. }
    ));
}

#[test]
fn too_deep_document() {
    let deep = |n: usize| {
        presence(&format!(
            "<tuple id=\"t\" xmlns:x=\"urn:x\"><status/>{}{}</tuple>",
            "<x:e>".repeat(n),
            "</x:e>".repeat(n)
        ))
    };
    let limits = XmlLimits::default();
    // presence (1) > tuple (2) > n extension levels.
    assert!(PidfDocument::parse(deep(limits.max_depth - 2).as_bytes(), &limits).is_ok());
    assert_eq!(
        PidfDocument::parse(deep(limits.max_depth - 1).as_bytes(), &limits).unwrap_err(),
        PidfError::TooDeep {
            limit: limits.max_depth
        }
    );
    // Far deeper than any stack would take if the reader recursed.
    let err = PidfDocument::parse(deep(5000).as_bytes(), &limits).unwrap_err();
    assert!(matches!(err, PidfError::TooDeep { .. }), "{err:?}");
}

#[test]
fn too_many_elements_attributes_namespaces() {
    let limits = XmlLimits {
        max_elements: 10,
        ..XmlLimits::default()
    };
    let body = presence(&"<note>n</note>".repeat(10));
    assert_eq!(
        PidfDocument::parse(body.as_bytes(), &limits).unwrap_err(),
        PidfError::TooManyElements { limit: 10 }
    );
    let attrs: String = (0..100).map(|i| format!(" a{i}=\"v\"")).collect();
    let body = presence(&format!("<note{attrs}>n</note>"));
    assert!(matches!(
        parse(&body).unwrap_err(),
        PidfError::TooManyAttributes { .. }
    ));
    let decls: String = (0..40)
        .map(|i| format!(" xmlns:p{i}=\"urn:{i}\""))
        .collect();
    let body = presence(&format!(
        "<a:n xmlns:a=\"urn:a\"{decls}><b:n xmlns:b=\"urn:b\"{decls}/></a:n>"
    ));
    assert!(matches!(
        parse(&body).unwrap_err(),
        PidfError::TooManyNamespaces { .. }
    ));
}

#[test]
fn hostile_inputs_never_panic() {
    // Truncations and byte flips of a real document: any result is fine, a panic is not.
    let body = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/vectors/presence-docs/rfc4480-rpid-example.resip.xml"),
    )
    .unwrap();
    for cut in 0..body.len() {
        let _ = PidfDocument::parse(&body[..cut], &XmlLimits::default());
    }
    for i in 0..body.len() {
        for b in [b'<', b'>', b'&', b'"', b':', b'/', 0x00, 0xFF] {
            let mut flipped = body.clone();
            flipped[i] = b;
            if let Ok(doc) = PidfDocument::parse(&flipped, &XmlLimits::default()) {
                let _ = pidf::compose(
                    "sip:someone@example.com",
                    &[(pidf::PublicationOrder(1), &doc)],
                );
            }
        }
    }
}
