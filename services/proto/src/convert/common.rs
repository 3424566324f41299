//! `herald.common.v1`: flows, headers, store errors.

use sip::Aor;
use store::StoreError;

use super::{aor, required, DecodeError};
use crate::common::v1 as pb;

impl From<store::FlowToken> for pb::FlowToken {
    fn from(flow: store::FlowToken) -> Self {
        pb::FlowToken { token: flow.0 }
    }
}

impl From<pb::FlowToken> for store::FlowToken {
    fn from(flow: pb::FlowToken) -> Self {
        store::FlowToken(flow.token)
    }
}

/// A required flow field.
pub(crate) fn flow(
    field: &'static str,
    value: Option<pb::FlowToken>,
) -> Result<store::FlowToken, DecodeError> {
    required(field, value).map(Into::into)
}

impl From<(String, String)> for pb::Header {
    fn from((name, value): (String, String)) -> Self {
        pb::Header { name, value }
    }
}

impl From<pb::Header> for (String, String) {
    fn from(h: pb::Header) -> Self {
        (h.name, h.value)
    }
}

pub(crate) fn headers_to_wire(headers: Vec<(String, String)>) -> Vec<pb::Header> {
    headers.into_iter().map(Into::into).collect()
}

pub(crate) fn headers_from_wire(headers: Vec<pb::Header>) -> Vec<(String, String)> {
    headers.into_iter().map(Into::into).collect()
}

impl From<StoreError> for pb::StoreError {
    fn from(e: StoreError) -> Self {
        use pb::store_error::{Conflict, Fenced, Kind, NotOwner, QueueFull, Unavailable};
        let kind = match e {
            StoreError::Conflict(a) => Kind::Conflict(Conflict { aor: aor_string(a) }),
            StoreError::QueueFull(a) => Kind::QueueFull(QueueFull { aor: aor_string(a) }),
            StoreError::Unavailable(reason) => Kind::Unavailable(Unavailable { reason }),
            StoreError::NotOwner { aor, shard, shards } => Kind::NotOwner(NotOwner {
                aor: aor_string(aor),
                shard,
                shards,
            }),
            StoreError::Fenced {
                aor,
                epoch,
                owner_epoch,
            } => Kind::Fenced(Fenced {
                aor: aor_string(aor),
                epoch,
                owner_epoch,
            }),
        };
        pb::StoreError { kind: Some(kind) }
    }
}

impl TryFrom<pb::StoreError> for StoreError {
    type Error = DecodeError;
    fn try_from(e: pb::StoreError) -> Result<Self, DecodeError> {
        use pb::store_error::Kind;
        Ok(match required("StoreError.kind", e.kind)? {
            Kind::Conflict(c) => StoreError::Conflict(aor("StoreError.conflict.aor", c.aor)?),
            Kind::QueueFull(q) => StoreError::QueueFull(aor("StoreError.queue_full.aor", q.aor)?),
            Kind::Unavailable(u) => StoreError::Unavailable(u.reason),
            Kind::NotOwner(n) => StoreError::NotOwner {
                aor: aor("StoreError.not_owner.aor", n.aor)?,
                shard: n.shard,
                shards: n.shards,
            },
            Kind::Fenced(f) => StoreError::Fenced {
                aor: aor("StoreError.fenced.aor", f.aor)?,
                epoch: f.epoch,
                owner_epoch: f.owner_epoch,
            },
        })
    }
}

pub(crate) fn aor_string(a: Aor) -> String {
    a.as_str().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::{aor, round_trip};

    #[test]
    fn flow_token_round_trips() {
        round_trip::<store::FlowToken, pb::FlowToken, _>(store::FlowToken("tcp:7:10.0.0.1".into()));
        round_trip::<store::FlowToken, pb::FlowToken, _>(store::FlowToken(String::new()));
    }

    #[test]
    fn header_round_trips() {
        round_trip::<(String, String), pb::Header, _>(("Subject".into(), "hi: there".into()));
    }

    #[test]
    fn every_store_error_round_trips() {
        for e in [
            StoreError::Conflict(aor("sip:alice@example.com")),
            StoreError::QueueFull(aor("sip:bob@example.com")),
            StoreError::Unavailable("redis: connection refused".into()),
            StoreError::NotOwner {
                aor: aor("sip:carol@example.com"),
                shard: 1,
                shards: 3,
            },
            StoreError::Fenced {
                aor: aor("sip:dave@example.com"),
                epoch: 4,
                owner_epoch: 9,
            },
        ] {
            round_trip::<StoreError, pb::StoreError, _>(e);
        }
    }

    #[test]
    fn malformed_store_errors_are_decode_errors() {
        assert_eq!(
            StoreError::try_from(pb::StoreError { kind: None }),
            Err(DecodeError::Missing("StoreError.kind"))
        );
        let bad = pb::StoreError {
            kind: Some(pb::store_error::Kind::QueueFull(
                pb::store_error::QueueFull { aor: "nope".into() },
            )),
        };
        assert!(matches!(
            StoreError::try_from(bad),
            Err(DecodeError::InvalidAor { .. })
        ));
    }
}
