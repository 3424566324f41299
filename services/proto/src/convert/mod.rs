//! Conversions between the `api` types and the generated messages.
//!
//! Towards the wire every conversion is a `From` (an `api` value is always
//! valid). From the wire it is a `TryFrom` with [`DecodeError`]: a peer of
//! another version, or a bug, may send a message with a required field
//! missing, a number out of range or an AOR that does not parse, and that
//! must become an error answer, never a panic.
//!
//! Responses convert to and from `Result<Ok, Error>` of the trait method,
//! so what a role returned is what its caller gets.

mod common;
mod edge;
mod messaging;
mod presence;

use sip::Aor;
use thiserror::Error;

/// Why a message from the wire does not make an `api` value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// A message field or a `oneof` the contract requires is absent.
    #[error("missing field {0}")]
    Missing(&'static str),
    /// A number wider on the wire than in the `api` type (q, status,
    /// Max-Forwards).
    #[error("field {field} out of range: {value}")]
    OutOfRange { field: &'static str, value: u32 },
    /// A field that must hold an AOR does not parse as one.
    #[error("field {field} is not an address of record: {value:?}")]
    InvalidAor { field: &'static str, value: String },
    /// Not a SIP method token (RFC 3261 §25.1).
    #[error("not a SIP method: {0:?}")]
    InvalidMethod(String),
}

pub(crate) fn required<T>(field: &'static str, value: Option<T>) -> Result<T, DecodeError> {
    value.ok_or(DecodeError::Missing(field))
}

pub(crate) fn aor(field: &'static str, value: String) -> Result<Aor, DecodeError> {
    value
        .parse()
        .map_err(|_| DecodeError::InvalidAor { field, value })
}

pub(crate) fn narrow<T: TryFrom<u32>>(field: &'static str, value: u32) -> Result<T, DecodeError> {
    T::try_from(value).map_err(|_| DecodeError::OutOfRange { field, value })
}

#[cfg(test)]
pub(crate) mod testing {
    use std::fmt::Debug;

    use prost::Message;

    /// Converts `value` to its message, encodes and decodes the bytes, and
    /// converts back: what a peer would get.
    pub(crate) fn over_wire<A, P, E>(value: A) -> A
    where
        P: From<A> + Message + Default,
        A: TryFrom<P, Error = E>,
        E: Debug,
    {
        let bytes = P::from(value).encode_to_vec();
        let message = P::decode(bytes.as_slice()).expect("decodes");
        A::try_from(message).expect("converts back")
    }

    /// Asserts that `value` comes back equal from the wire.
    pub(crate) fn round_trip<A, P, E>(value: A)
    where
        P: From<A> + Message + Default,
        A: TryFrom<P, Error = E> + Clone + PartialEq + Debug,
        E: Debug,
    {
        assert_eq!(over_wire::<A, P, E>(value.clone()), value);
    }

    pub(crate) fn aor(s: &str) -> sip::Aor {
        s.parse().expect("test AOR")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aors_survive_their_canonical_form() {
        for s in [
            "sip:alice@example.com",
            "sip:%41lice@EXAMPLE.com",
            "sips:bob@example.com",
            "sip:a%40b%00c@example.com",
            "sip:example.com",
            "sip:carol@[2001:db8::1]",
            "sip:d.e-f_g!~*'()@host.example",
        ] {
            let a = testing::aor(s);
            assert_eq!(aor("f", a.as_str().to_owned()), Ok(a), "{s}");
        }
    }

    #[test]
    fn bad_aor_is_an_error() {
        assert_eq!(
            aor("aor", "tel:+1555".into()),
            Err(DecodeError::InvalidAor {
                field: "aor",
                value: "tel:+1555".into()
            })
        );
        assert!(aor("aor", String::new()).is_err());
    }

    #[test]
    fn narrowing_checks_range() {
        assert_eq!(narrow::<u8>("mf", 255), Ok(255u8));
        assert_eq!(
            narrow::<u8>("mf", 256),
            Err(DecodeError::OutOfRange {
                field: "mf",
                value: 256
            })
        );
        assert_eq!(narrow::<u16>("q", 65_535), Ok(65_535u16));
        assert!(narrow::<u16>("q", 65_536).is_err());
    }
}
