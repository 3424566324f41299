//! `PidfDocument::parse` on a PUBLISH body, then composition: never
//! panics, and the composed document of what parsed parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pidf::{compose, PidfDocument, PublicationOrder, XmlLimits};

fuzz_target!(|data: &[u8]| {
    let limits = XmlLimits::default();
    let Ok(doc) = PidfDocument::parse(data, &limits) else {
        return;
    };
    let _ = doc.check_entity("sip:alice@example.com");
    let composed = compose(doc.entity(), &[(PublicationOrder(1), &doc)]);
    let xml = composed.to_xml();
    // Composition re-declares inherited namespaces on each element it
    // keeps, so only the grammar is checked on the way back, not limits.
    let unbounded = XmlLimits {
        max_bytes: usize::MAX,
        max_depth: usize::MAX,
        max_elements: usize::MAX,
        max_attributes: usize::MAX,
        max_namespace_bindings: usize::MAX,
    };
    let again = PidfDocument::parse(xml.as_bytes(), &unbounded);
    assert!(
        again.is_ok(),
        "composed document does not parse: {again:?}\n{xml}"
    );
});
