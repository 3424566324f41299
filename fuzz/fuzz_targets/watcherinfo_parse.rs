//! `WatcherInfo::parse` (RFC 3858 documents): never panics, and what
//! parses writes out and parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pidf::{WatcherInfo, XmlLimits};

fuzz_target!(|data: &[u8]| {
    let limits = XmlLimits::default();
    let Ok(info) = WatcherInfo::parse(data, &limits) else {
        return;
    };
    let xml = info.to_xml();
    // Composition re-declares inherited namespaces on each element it
    // keeps, so only the grammar is checked on the way back, not limits.
    let unbounded = XmlLimits {
        max_bytes: usize::MAX,
        max_depth: usize::MAX,
        max_elements: usize::MAX,
        max_attributes: usize::MAX,
        max_namespace_bindings: usize::MAX,
    };
    let again = WatcherInfo::parse(xml.as_bytes(), &unbounded);
    assert!(
        again.is_ok(),
        "written watcher-info does not parse: {again:?}\n{xml}"
    );
});
