//! Address of record.

use std::fmt;
use std::str::FromStr;

use crate::error::CodecError;
use crate::uri::Uri;

/// An address of record: `sip:user@host` in canonical form so that equal
/// AORs per RFC 3261 §19.1.4 have equal `Aor` values: scheme and host
/// lower-cased, `%XX` escapes of unreserved characters decoded in the user
/// part (user stays case-sensitive), port, parameters and headers dropped
/// (§10.3 step 5: the AOR of a To header is its URI without them), `sips`
/// folded to `sip` (one user, two ways to reach it).
///
/// A `%00` in the user part is kept escaped (RFC 4475 §3.1.1.4 escnull:
/// it must not truncate the user).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aor(String);

impl Aor {
    /// The AOR a URI names. Errors on a URI with no host or a tel URI
    /// (Herald does not map numbers to users).
    pub fn from_uri(uri: &Uri) -> Result<Aor, CodecError> {
        todo!()
    }

    /// `sip:user@host`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The user part (decoded), if any.
    pub fn user(&self) -> Option<&str> {
        todo!()
    }

    /// The host (domain) part, lower case.
    pub fn domain(&self) -> &str {
        todo!()
    }
}

impl fmt::Display for Aor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Aor {
    type Err = CodecError;
    /// Accepts `sip:u@h`, `sips:u@h`, or `<sip:u@h>`; canonicalizes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        todo!()
    }
}
