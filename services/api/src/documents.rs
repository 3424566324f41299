//! XCAP document changes: what the XCAP role tells presence (RFC 4825
//! §8.2.5 leaves the transport open; RFC 5874 names the parts), so
//! presence re-evaluates pres-rules, recomposes pidf-manipulation state
//! and NOTIFYs xcap-diff subscribers at once.

use sip::Aor;

/// One document of a user that was created, replaced or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentChange {
    /// The owner of the document (the XUI, as an AOR).
    pub user: Aor,
    /// Application usage, e.g. `pres-rules`, `org.openmobilealliance.pres-rules`,
    /// `resource-lists`, `pidf-manipulation`.
    pub auid: String,
    /// The document selector relative to the XCAP root, e.g.
    /// `pres-rules/users/sip:alice@example.com/index` (RFC 4825 §6.2).
    pub selector: String,
    /// Entity tag before the change; `None` when the document was created.
    pub previous_etag: Option<String>,
    /// Entity tag after the change; `None` when the document was deleted.
    pub new_etag: Option<String>,
}
