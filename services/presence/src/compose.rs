//! The composed view of a presentity: every live publication merged by the
//! `pidf` crate, or an offline document when none is left.

use std::sync::Arc;

use sip::Aor;

use crate::state::Presentity;

/// The document watchers get when nobody publishes: basic status closed.
pub(crate) fn offline(aor: &Aor) -> Arc<str> {
    Arc::from(pidf::offline(aor.as_str()).to_xml())
}

/// Recomposes; returns the new document if it differs from the last one
/// sent (so an unchanged refresh or a no-op modify notifies nobody).
pub(crate) fn recompose(p: &mut Presentity) -> Option<Arc<str>> {
    let xml: Arc<str> = if p.publications.is_empty() {
        offline(&p.aor)
    } else {
        let docs: Vec<(pidf::PublicationOrder, &pidf::PidfDocument)> = p
            .publications
            .values()
            .map(|publication| {
                (
                    pidf::PublicationOrder(publication.order),
                    &publication.document,
                )
            })
            .collect();
        Arc::from(pidf::compose(p.aor.as_str(), &docs).to_xml())
    };
    if xml == p.composed {
        None
    } else {
        p.composed = Arc::clone(&xml);
        Some(xml)
    }
}
