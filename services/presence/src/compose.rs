//! The composed view of a presentity: every live publication merged by the
//! `pidf` crate, or an offline document when none is left.

use std::sync::Arc;

use sip::Aor;

use crate::state::Presentity;

/// The document watchers get when nobody publishes: basic status closed.
pub(crate) fn offline(aor: &Aor) -> Arc<str> {
    Arc::from(pidf::offline(aor.as_str()).to_xml())
}

/// Composes what changed while nobody watched, before a watcher reads
/// `composed` (a new subscription or a fetch).
pub(crate) fn catch_up(p: &mut Presentity) {
    if p.compose_pending {
        recompose(p);
    }
}

/// Recomposes; returns the new document if it differs from the last one
/// sent (so an unchanged refresh or a no-op modify notifies nobody).
///
/// The pidf-manipulation document (RFC 4827 §3), when there is one, is the
/// oldest publication: a hard state that holds when no device publishes and
/// that any publication of the same tuple, person or device id overrides.
pub(crate) fn recompose(p: &mut Presentity) -> Option<Arc<str>> {
    let hard_state = p.documents.as_ref().and_then(|d| d.hard_state.as_ref());
    let xml: Arc<str> = if p.publications.is_empty() && hard_state.is_none() {
        offline(&p.aor)
    } else {
        let docs: Vec<(pidf::PublicationOrder, &pidf::PidfDocument)> = hard_state
            .map(|doc| (pidf::PublicationOrder(0), doc))
            .into_iter()
            .chain(p.publications.values().map(|publication| {
                (
                    pidf::PublicationOrder(publication.order),
                    &publication.document,
                )
            }))
            .collect();
        Arc::from(pidf::compose(p.aor.as_str(), &docs).to_xml())
    };
    p.compose_pending = false;
    if xml == p.composed {
        None
    } else {
        p.composed = Arc::clone(&xml);
        p.views.clear();
        p.sphere = pidf::sphere(&xml);
        Some(xml)
    }
}
