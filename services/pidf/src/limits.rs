//! Resource limits applied while reading untrusted XML.

/// Bounds on a document read from the network. Every limit is checked while reading, before
/// the work it bounds is done, so a hostile body costs at most these amounts.
///
/// The defaults fit real presence documents with room to spare: the RFC 4480 example is
/// 2.5 KB with 60 elements nested 5 deep, and clients with capabilities and RPID send a few KB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmlLimits {
    /// Largest body accepted, in bytes (checked before parsing).
    pub max_bytes: usize,
    /// Deepest element nesting; the root element is depth 1.
    pub max_depth: usize,
    /// Most elements in one document.
    pub max_elements: usize,
    /// Most attributes (namespace declarations included) on one element.
    pub max_attributes: usize,
    /// Most `xmlns` declarations in scope at once; also bounds the cost of prefix lookups and
    /// of the declarations copied onto each kept fragment.
    pub max_namespace_bindings: usize,
}

impl XmlLimits {
    /// 64 KiB: a PUBLISH body over UDP cannot be larger, and no real client comes close.
    pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;
}

impl Default for XmlLimits {
    fn default() -> Self {
        XmlLimits {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_depth: 32,
            max_elements: 4096,
            max_attributes: 64,
            max_namespace_bindings: 64,
        }
    }
}
