//! XCAP documents (RFC 4825): one user's document is an opaque byte string
//! with an entity tag. The store only compares and swaps entity tags; the
//! XCAP role parses, validates and patches the documents.
//!
//! The in-memory half lives here so `memory.rs` only forwards to it; the
//! Redis half is the `WRITE_DOCUMENT` script and the `xcap:{aor}:...` key.

use std::collections::HashMap;
use std::sync::Mutex;

use sip::Aor;

use crate::StoreError;

/// A stored XCAP document and its current entity tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub etag: String,
    pub content: Vec<u8>,
}

/// What the caller read before a write: the store writes only if the
/// document is still in that state (optimistic concurrency, so two
/// concurrent element PUTs cannot both apply to the same base).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentBase<'a> {
    /// The document did not exist.
    Absent,
    /// The document had this entity tag.
    Etag(&'a str),
}

/// The in-memory documents: `(user, path) -> document`.
#[derive(Default)]
pub(crate) struct MemoryDocuments {
    docs: Mutex<HashMap<(Aor, String), StoredDocument>>,
}

impl MemoryDocuments {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Aor, String), StoredDocument>> {
        // Every operation is one insert or remove: nothing half-written.
        self.docs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, user: &Aor, path: &str) -> Option<StoredDocument> {
        self.lock().get(&(user.clone(), path.to_string())).cloned()
    }

    /// Writes `new` (or deletes when `None`) if the document is at `base`.
    pub(crate) fn write(
        &self,
        user: &Aor,
        path: &str,
        base: DocumentBase<'_>,
        new: Option<StoredDocument>,
    ) -> Result<(), StoreError> {
        let mut docs = self.lock();
        let key = (user.clone(), path.to_string());
        let current = docs.get(&key).map(|d| d.etag.as_str());
        let matches = match base {
            DocumentBase::Absent => current.is_none(),
            DocumentBase::Etag(etag) => current == Some(etag),
        };
        if !matches {
            return Err(StoreError::Conflict(user.clone()));
        }
        match new {
            Some(doc) => docs.insert(key, doc),
            None => docs.remove(&key),
        };
        Ok(())
    }
}
