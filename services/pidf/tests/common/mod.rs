//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// `../shared/vectors` seen from the repository root.
pub fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
}

pub fn presence_doc(name: &str) -> Vec<u8> {
    let path = vectors().join("presence-docs").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every element of a document as (namespace URI, local name), read by an independent
/// namespace-aware pass; panics if the XML is not namespace-well-formed.
pub fn expanded_names(xml: &str) -> Vec<(String, String)> {
    let mut reader = NsReader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match reader.read_resolved_event() {
            Ok((ns, Event::Start(e))) | Ok((ns, Event::Empty(e))) => {
                let ns = match ns {
                    ResolveResult::Bound(ns) => ns.into_inner().to_owned(),
                    ResolveResult::Unbound => String::new(),
                    ResolveResult::Unknown(p) => panic!("unbound prefix {p} in\n{xml}"),
                };
                out.push((ns, e.local_name().into_inner().to_owned()));
            }
            Ok((_, Event::Eof)) => return out,
            Ok(_) => {}
            Err(e) => panic!("not well-formed: {e}\n{xml}"),
        }
    }
}

pub fn has_element(xml: &str, ns: &str, local: &str) -> bool {
    expanded_names(xml)
        .iter()
        .any(|(n, l)| n == ns && l == local)
}

pub fn count_element(xml: &str, ns: &str, local: &str) -> usize {
    expanded_names(xml)
        .iter()
        .filter(|(n, l)| n == ns && l == local)
        .count()
}
