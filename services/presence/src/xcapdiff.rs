//! The xcap-diff event package (RFC 5875) with application/xcap-diff+xml bodies (RFC 5874):
//! a user watches their own XCAP documents and hears each new ETag.
//!
//! Granularity is the document: a NOTIFY names the documents that changed with their
//! previous and new ETags (a created document has no previous-etag, a deleted one no
//! new-etag), and the client fetches what it needs. Not done: patches inside the document
//! (RFC 5874 §4 `<add>`/`<replace>`/`<remove>`), element and attribute subscriptions
//! (RFC 5875 §4.4 `diff-processing`), and directory listings beyond document selectors.

use std::sync::Arc;

use api::{DocumentChange, PresenceError};
use bytes::Bytes;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use sip::Aor;

use crate::notify::Body;
use crate::state::{Package, Presentity};
use crate::Inner;

const RESOURCE_LISTS_NS: &str = "urn:ietf:params:xml:ns:resource-lists";
const RESOURCE_LISTS_TYPE: &str = "application/resource-lists+xml";
const XCAP_DIFF_NS: &str = "urn:ietf:params:xml:ns:xcap-diff";
/// Most documents one subscription may name.
const MAX_WATCHED: usize = 256;

/// One document in an xcap-diff NOTIFY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiffEntry {
    /// Document selector relative to the XCAP root.
    pub sel: String,
    pub previous_etag: Option<String>,
    pub new_etag: Option<String>,
}

/// Folds a newer diff into a queued one: per document, the oldest previous ETag and the
/// newest new ETag, so a client that missed the middle still sees where it stands.
pub(crate) fn merge(queued: &mut Vec<DiffEntry>, newer: Vec<DiffEntry>) {
    for n in newer {
        match queued.iter_mut().find(|q| q.sel == n.sel) {
            Some(q) => q.new_etag = n.new_etag,
            None => queued.push(n),
        }
    }
}

/// The document selectors a SUBSCRIBE body names (RFC 5875 §4.1: a resource-lists document
/// whose entries are XCAP URIs relative to the root; one ending in `/` names a directory).
/// No body watches every document of the user.
pub(crate) fn watched_from_body(
    content_type: Option<&str>,
    body: &Bytes,
) -> Result<Vec<String>, PresenceError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let ct = content_type.unwrap_or("");
    if ct != RESOURCE_LISTS_TYPE {
        return Err(PresenceError::UnsupportedMediaType {
            got: ct.to_string(),
            accept: RESOURCE_LISTS_TYPE.to_string(),
        });
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| PresenceError::BadRequest("resource-lists body is not UTF-8".into()))?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut watched = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| PresenceError::BadRequest(format!("resource-lists body: {e}")))?;
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let (ns, local) = reader.resolver().resolve_element(e.name());
                let ours =
                    matches!(ns, ResolveResult::Bound(n) if n.into_inner() == RESOURCE_LISTS_NS);
                if !(ours && local.as_ref() == "entry") {
                    continue;
                }
                let uri = e
                    .try_get_attribute("uri")
                    .ok()
                    .flatten()
                    .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok())
                    .map(|v| v.trim().trim_start_matches('/').to_string());
                if let Some(uri) = uri.filter(|u| !u.is_empty()) {
                    if watched.len() >= MAX_WATCHED {
                        return Err(PresenceError::Forbidden("too many documents".into()));
                    }
                    watched.push(uri);
                }
            }
            Event::DocType(_) => {
                return Err(PresenceError::BadRequest("DOCTYPE not allowed".into()))
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(watched)
}

/// Is `selector` among the documents a subscription watches?
pub(crate) fn watches<'a>(watched: impl IntoIterator<Item = &'a str>, selector: &str) -> bool {
    let mut none = true;
    for w in watched {
        if w == selector || (w.ends_with('/') && selector.starts_with(w)) {
            return true;
        }
        none = false;
    }
    none
}

/// The application/xcap-diff+xml document (RFC 5874 §4).
pub(crate) fn document(xcap_root: &str, entries: &[DiffEntry]) -> String {
    let mut xml = String::with_capacity(128 + entries.len() * 96);
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-diff xmlns=\"");
    xml.push_str(XCAP_DIFF_NS);
    xml.push_str("\" xcap-root=\"");
    xml.push_str(&escape(xcap_root));
    xml.push_str("\">\n");
    for e in entries {
        xml.push_str("  <document sel=\"");
        xml.push_str(&escape(&e.sel));
        xml.push('"');
        if let Some(prev) = &e.previous_etag {
            xml.push_str(" previous-etag=\"");
            xml.push_str(&escape(prev));
            xml.push('"');
        }
        if let Some(new) = &e.new_etag {
            xml.push_str(" new-etag=\"");
            xml.push_str(&escape(new));
            xml.push('"');
        }
        xml.push_str("/>\n");
    }
    xml.push_str("</xcap-diff>\n");
    xml
}

fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// The full state of a subscription (RFC 5875 §4.2: every watched document with its ETag).
pub(crate) async fn full_state(
    inner: &Inner,
    user: &Aor,
    watched: &[String],
) -> Result<Body, PresenceError> {
    let Some(source) = inner.documents.get() else {
        return Err(PresenceError::BadEvent("xcap-diff".into()));
    };
    let mut docs: Vec<DiffEntry> = source
        .documents(user)
        .await?
        .into_iter()
        .filter(|(sel, _)| watches(watched.iter().map(String::as_str), sel))
        .map(|(sel, etag)| DiffEntry {
            sel,
            previous_etag: None,
            new_etag: Some(etag),
        })
        .collect();
    docs.sort_by(|a, b| a.sel.cmp(&b.sel));
    Ok(Body::XcapDiff {
        root: Arc::from(source.xcap_root()),
        docs,
    })
}

/// A document of `p`'s user changed: each xcap-diff subscription watching it is told.
pub(crate) fn changed(p: &Presentity, change: &DocumentChange, inner: &Inner) {
    let Some(source) = inner.documents.get() else {
        return;
    };
    let mut root: Option<Arc<str>> = None;
    for s in p.subscriptions.values() {
        if s.package() != Package::XcapDiff || !watches(s.record.watched(), &change.selector) {
            continue;
        }
        let root = root.get_or_insert_with(|| Arc::from(source.xcap_root()));
        s.notifier.push(
            None,
            Some(Body::XcapDiff {
                root: Arc::clone(root),
                docs: vec![DiffEntry {
                    sel: change.selector.clone(),
                    previous_etag: change.previous_etag.clone(),
                    new_etag: change.new_etag.clone(),
                }],
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_names_documents_and_directories() {
        let body = Bytes::from_static(
            br#"<?xml version="1.0"?><rl:resource-lists xmlns:rl="urn:ietf:params:xml:ns:resource-lists"><rl:list><rl:entry uri="resource-lists/users/sip:a@example.com/index"/><rl:entry uri="/pres-rules/users/sip:a@example.com/"/></rl:list></rl:resource-lists>"#,
        );
        let watched = watched_from_body(Some(RESOURCE_LISTS_TYPE), &body).unwrap();
        assert_eq!(watched.len(), 2);
        let watched: Vec<&str> = watched.iter().map(String::as_str).collect();
        assert!(watches(
            watched.iter().copied(),
            "resource-lists/users/sip:a@example.com/index"
        ));
        assert!(watches(
            watched.iter().copied(),
            "pres-rules/users/sip:a@example.com/index"
        ));
        assert!(!watches(
            watched.iter().copied(),
            "rls-services/users/sip:a@example.com/index"
        ));
        assert!(watches([], "anything"));
        assert!(matches!(
            watched_from_body(Some("text/plain"), &body),
            Err(PresenceError::UnsupportedMediaType { .. })
        ));
        assert!(matches!(
            watched_from_body(
                Some(RESOURCE_LISTS_TYPE),
                &Bytes::from_static(b"<a><b></a>")
            ),
            Err(PresenceError::BadRequest(_))
        ));
    }

    #[test]
    fn documents_and_merging() {
        let mut queued = vec![DiffEntry {
            sel: "a".into(),
            previous_etag: Some("1".into()),
            new_etag: Some("2".into()),
        }];
        merge(
            &mut queued,
            vec![
                DiffEntry {
                    sel: "a".into(),
                    previous_etag: Some("2".into()),
                    new_etag: None,
                },
                DiffEntry {
                    sel: "b&c".into(),
                    previous_etag: None,
                    new_etag: Some("9".into()),
                },
            ],
        );
        let xml = document("http://x.example.com/xcap-root/", &queued);
        assert!(
            xml.contains(r#"<document sel="a" previous-etag="1"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<document sel="b&amp;c" new-etag="9"/>"#),
            "{xml}"
        );
        assert!(xml.contains(r#"xcap-root="http://x.example.com/xcap-root/""#));
    }
}
