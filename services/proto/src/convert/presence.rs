//! `herald.presence.v1`: PUBLISH, SUBSCRIBE, closed flows.

use api::{
    DocumentChange, ETag, PresenceError, PublishOk, PublishRequest, SubscribeDialog, SubscribeOk,
    SubscribeRequest,
};
use store::{FlowToken, StoreError};

use super::common::{aor_string, flow};
use super::{aor, required, DecodeError};
use crate::presence::v1 as pb;

impl From<PublishRequest> for pb::PublishRequest {
    fn from(r: PublishRequest) -> Self {
        pb::PublishRequest {
            presentity: aor_string(r.presentity),
            event: r.event,
            if_match: r.if_match.map(|e| e.0),
            expires: r.expires,
            content_type: r.content_type,
            body: r.body,
            flow: Some(r.flow.into()),
            connection: r.connection,
            authenticated: r.authenticated.map(aor_string),
        }
    }
}

impl TryFrom<pb::PublishRequest> for PublishRequest {
    type Error = DecodeError;
    fn try_from(r: pb::PublishRequest) -> Result<Self, DecodeError> {
        Ok(PublishRequest {
            presentity: aor("PublishRequest.presentity", r.presentity)?,
            event: r.event,
            if_match: r.if_match.map(ETag),
            expires: r.expires,
            content_type: r.content_type,
            body: r.body,
            flow: flow("PublishRequest.flow", r.flow)?,
            connection: r.connection,
            authenticated: r
                .authenticated
                .map(|a| aor("PublishRequest.authenticated", a))
                .transpose()?,
        })
    }
}

impl From<PublishOk> for pb::publish_response::Ok {
    fn from(ok: PublishOk) -> Self {
        pb::publish_response::Ok {
            etag: ok.etag.map(|e| e.0),
            expires: ok.expires,
        }
    }
}

impl From<pb::publish_response::Ok> for PublishOk {
    fn from(ok: pb::publish_response::Ok) -> Self {
        PublishOk {
            etag: ok.etag.map(ETag),
            expires: ok.expires,
        }
    }
}

impl From<SubscribeDialog> for pb::SubscribeDialog {
    fn from(d: SubscribeDialog) -> Self {
        pb::SubscribeDialog {
            call_id: d.call_id,
            remote_tag: d.remote_tag,
            local_tag: d.local_tag,
            remote_uri: d.remote_uri,
            local_uri: d.local_uri,
            remote_target: d.remote_target,
            route_set: d.route_set,
            remote_cseq: d.remote_cseq,
        }
    }
}

impl From<pb::SubscribeDialog> for SubscribeDialog {
    fn from(d: pb::SubscribeDialog) -> Self {
        SubscribeDialog {
            call_id: d.call_id,
            remote_tag: d.remote_tag,
            local_tag: d.local_tag,
            remote_uri: d.remote_uri,
            local_uri: d.local_uri,
            remote_target: d.remote_target,
            route_set: d.route_set,
            remote_cseq: d.remote_cseq,
        }
    }
}

impl From<SubscribeRequest> for pb::SubscribeRequest {
    fn from(r: SubscribeRequest) -> Self {
        pb::SubscribeRequest {
            presentity: aor_string(r.presentity),
            watcher: aor_string(r.watcher),
            event: r.event,
            event_id: r.event_id,
            accept: r.accept,
            expires: r.expires,
            dialog: Some(r.dialog.into()),
            flow: Some(r.flow.into()),
            connection: r.connection,
            content_type: r.content_type,
            body: r.body,
            authenticated: r.authenticated.map(aor_string),
        }
    }
}

impl TryFrom<pb::SubscribeRequest> for SubscribeRequest {
    type Error = DecodeError;
    fn try_from(r: pb::SubscribeRequest) -> Result<Self, DecodeError> {
        Ok(SubscribeRequest {
            presentity: aor("SubscribeRequest.presentity", r.presentity)?,
            watcher: aor("SubscribeRequest.watcher", r.watcher)?,
            event: r.event,
            event_id: r.event_id,
            accept: r.accept,
            expires: r.expires,
            dialog: required("SubscribeRequest.dialog", r.dialog)?.into(),
            flow: flow("SubscribeRequest.flow", r.flow)?,
            connection: r.connection,
            content_type: r.content_type,
            body: r.body,
            authenticated: r
                .authenticated
                .map(|a| aor("SubscribeRequest.authenticated", a))
                .transpose()?,
        })
    }
}

impl From<SubscribeOk> for pb::subscribe_response::Ok {
    fn from(ok: SubscribeOk) -> Self {
        pb::subscribe_response::Ok {
            local_tag: ok.local_tag,
            expires: ok.expires,
        }
    }
}

impl From<pb::subscribe_response::Ok> for SubscribeOk {
    fn from(ok: pb::subscribe_response::Ok) -> Self {
        SubscribeOk {
            local_tag: ok.local_tag,
            expires: ok.expires,
        }
    }
}

impl From<FlowToken> for pb::FlowClosedRequest {
    fn from(flow: FlowToken) -> Self {
        pb::FlowClosedRequest {
            flow: Some(flow.into()),
        }
    }
}

impl TryFrom<pb::FlowClosedRequest> for FlowToken {
    type Error = DecodeError;
    fn try_from(r: pb::FlowClosedRequest) -> Result<Self, DecodeError> {
        flow("FlowClosedRequest.flow", r.flow)
    }
}

impl From<DocumentChange> for pb::DocumentsChangedRequest {
    fn from(c: DocumentChange) -> Self {
        pb::DocumentsChangedRequest {
            user: aor_string(c.user),
            auid: c.auid,
            selector: c.selector,
            previous_etag: c.previous_etag,
            new_etag: c.new_etag,
        }
    }
}

impl TryFrom<pb::DocumentsChangedRequest> for DocumentChange {
    type Error = DecodeError;
    fn try_from(r: pb::DocumentsChangedRequest) -> Result<Self, DecodeError> {
        Ok(DocumentChange {
            user: aor("DocumentsChangedRequest.user", r.user)?,
            auid: r.auid,
            selector: r.selector,
            previous_etag: r.previous_etag,
            new_etag: r.new_etag,
        })
    }
}

impl From<Result<(), PresenceError>> for pb::DocumentsChangedResponse {
    fn from(r: Result<(), PresenceError>) -> Self {
        pb::DocumentsChangedResponse {
            error: r.err().map(Into::into),
        }
    }
}

impl TryFrom<pb::DocumentsChangedResponse> for Result<(), PresenceError> {
    type Error = DecodeError;
    fn try_from(r: pb::DocumentsChangedResponse) -> Result<Self, DecodeError> {
        Ok(match r.error {
            None => Ok(()),
            Some(e) => Err(e.try_into()?),
        })
    }
}

impl From<PresenceError> for pb::PresenceError {
    fn from(e: PresenceError) -> Self {
        use pb::presence_error::*;
        let kind = match e {
            PresenceError::BadEvent(event) => Kind::BadEvent(BadEvent { event }),
            PresenceError::IntervalTooBrief { min_expires } => {
                Kind::IntervalTooBrief(IntervalTooBrief { min_expires })
            }
            PresenceError::UnknownETag => Kind::UnknownEtag(UnknownETag {}),
            PresenceError::UnsupportedMediaType { got, accept } => {
                Kind::UnsupportedMediaType(UnsupportedMediaType { got, accept })
            }
            PresenceError::NotAcceptable => Kind::NotAcceptable(NotAcceptable {}),
            PresenceError::BadRequest(reason) => Kind::BadRequest(BadRequest { reason }),
            PresenceError::TooLarge => Kind::TooLarge(TooLarge {}),
            PresenceError::Forbidden(reason) => Kind::Forbidden(Forbidden { reason }),
            PresenceError::NoSuchSubscription => Kind::NoSuchSubscription(NoSuchSubscription {}),
            PresenceError::Store(e) => Kind::Store(e.into()),
        };
        pb::PresenceError { kind: Some(kind) }
    }
}

impl TryFrom<pb::PresenceError> for PresenceError {
    type Error = DecodeError;
    fn try_from(e: pb::PresenceError) -> Result<Self, DecodeError> {
        use pb::presence_error::Kind;
        Ok(match required("PresenceError.kind", e.kind)? {
            Kind::BadEvent(b) => PresenceError::BadEvent(b.event),
            Kind::IntervalTooBrief(i) => PresenceError::IntervalTooBrief {
                min_expires: i.min_expires,
            },
            Kind::UnknownEtag(_) => PresenceError::UnknownETag,
            Kind::UnsupportedMediaType(u) => PresenceError::UnsupportedMediaType {
                got: u.got,
                accept: u.accept,
            },
            Kind::NotAcceptable(_) => PresenceError::NotAcceptable,
            Kind::BadRequest(b) => PresenceError::BadRequest(b.reason),
            Kind::TooLarge(_) => PresenceError::TooLarge,
            Kind::Forbidden(f) => PresenceError::Forbidden(f.reason),
            Kind::NoSuchSubscription(_) => PresenceError::NoSuchSubscription,
            Kind::Store(s) => PresenceError::Store(StoreError::try_from(s)?),
        })
    }
}

impl From<Result<PublishOk, PresenceError>> for pb::PublishResponse {
    fn from(r: Result<PublishOk, PresenceError>) -> Self {
        use pb::publish_response::Result as Outcome;
        let result = match r {
            Ok(ok) => Outcome::Ok(ok.into()),
            Err(e) => Outcome::Error(e.into()),
        };
        pb::PublishResponse {
            result: Some(result),
        }
    }
}

impl TryFrom<pb::PublishResponse> for Result<PublishOk, PresenceError> {
    type Error = DecodeError;
    fn try_from(r: pb::PublishResponse) -> Result<Self, DecodeError> {
        use pb::publish_response::Result as Outcome;
        Ok(match required("PublishResponse.result", r.result)? {
            Outcome::Ok(ok) => Ok(ok.into()),
            Outcome::Error(e) => Err(e.try_into()?),
        })
    }
}

impl From<Result<SubscribeOk, PresenceError>> for pb::SubscribeResponse {
    fn from(r: Result<SubscribeOk, PresenceError>) -> Self {
        use pb::subscribe_response::Result as Outcome;
        let result = match r {
            Ok(ok) => Outcome::Ok(ok.into()),
            Err(e) => Outcome::Error(e.into()),
        };
        pb::SubscribeResponse {
            result: Some(result),
        }
    }
}

impl TryFrom<pb::SubscribeResponse> for Result<SubscribeOk, PresenceError> {
    type Error = DecodeError;
    fn try_from(r: pb::SubscribeResponse) -> Result<Self, DecodeError> {
        use pb::subscribe_response::Result as Outcome;
        Ok(match required("SubscribeResponse.result", r.result)? {
            Outcome::Ok(ok) => Ok(ok.into()),
            Outcome::Error(e) => Err(e.try_into()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::convert::testing::{aor, over_wire, round_trip};

    fn publish() -> PublishRequest {
        PublishRequest {
            presentity: aor("sip:alice@example.com"),
            event: "presence".into(),
            if_match: Some(ETag("dx200xyz".into())),
            expires: Some(3600),
            content_type: Some("application/pidf+xml".into()),
            body: Bytes::from_static(b"<?xml version=\"1.0\"?><presence/>"),
            flow: FlowToken("ws:3".into()),
            connection: true,
            authenticated: Some("sip:alice@example.com".parse().unwrap()),
        }
    }

    fn subscribe() -> SubscribeRequest {
        SubscribeRequest {
            presentity: aor("sip:alice@example.com"),
            watcher: aor("sip:bob@example.com"),
            event: "presence.winfo".into(),
            event_id: Some("7".into()),
            accept: vec![
                "application/pidf+xml".into(),
                "application/watcherinfo+xml".into(),
            ],
            expires: Some(600),
            dialog: SubscribeDialog {
                call_id: "sub1@bob".into(),
                remote_tag: "ft1".into(),
                local_tag: Some("tt9".into()),
                remote_uri: "<sip:bob@example.com>;tag=ft1".into(),
                local_uri: "<sip:alice@example.com>".into(),
                remote_target: "sip:bob@10.0.0.2:5070;transport=tcp".into(),
                route_set: vec!["<sip:p1.example.com;lr>".into(), "<sip:p2;lr>".into()],
                remote_cseq: 42,
            },
            flow: FlowToken("tcp:9".into()),
            connection: true,
            content_type: Some("application/resource-lists+xml".into()),
            body: Bytes::from_static(b"<resource-lists/>"),
            authenticated: None,
        }
    }

    #[test]
    fn document_changes_round_trip() {
        let change = DocumentChange {
            user: aor("sip:alice@example.com"),
            auid: "pres-rules".into(),
            selector: "pres-rules/users/sip:alice@example.com/index".into(),
            previous_etag: None,
            new_etag: Some("e2".into()),
        };
        round_trip::<DocumentChange, pb::DocumentsChangedRequest, _>(change);
        for r in [Ok(()), Err(PresenceError::Forbidden("no".into()))] {
            let back: Result<(), PresenceError> = pb::DocumentsChangedResponse::from(r.clone())
                .try_into()
                .unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn publish_requests_round_trip() {
        round_trip::<PublishRequest, pb::PublishRequest, _>(publish());
        round_trip::<PublishRequest, pb::PublishRequest, _>(PublishRequest {
            if_match: None,
            expires: Some(0),
            content_type: None,
            body: Bytes::new(),
            connection: false,
            ..publish()
        });
    }

    #[test]
    fn subscribe_requests_round_trip() {
        round_trip::<SubscribeRequest, pb::SubscribeRequest, _>(subscribe());
        let mut initial = subscribe();
        initial.event = "presence".into();
        initial.event_id = None;
        initial.accept = vec![];
        initial.expires = None;
        initial.dialog.local_tag = None;
        initial.dialog.route_set = vec![];
        initial.connection = false;
        initial.content_type = None;
        initial.body = Bytes::new();
        round_trip::<SubscribeRequest, pb::SubscribeRequest, _>(initial);
    }

    #[test]
    fn flow_closed_round_trips() {
        round_trip::<FlowToken, pb::FlowClosedRequest, _>(FlowToken("tls:5".into()));
    }

    fn presence_errors() -> Vec<PresenceError> {
        vec![
            PresenceError::BadEvent("dialog".into()),
            PresenceError::IntervalTooBrief { min_expires: 60 },
            PresenceError::UnknownETag,
            PresenceError::UnsupportedMediaType {
                got: "text/plain".into(),
                accept: "application/pidf+xml".into(),
            },
            PresenceError::NotAcceptable,
            PresenceError::BadRequest("not well-formed".into()),
            PresenceError::TooLarge,
            PresenceError::Forbidden("winfo of another user".into()),
            PresenceError::NoSuchSubscription,
            PresenceError::Store(StoreError::Conflict(aor("sip:a@b"))),
            PresenceError::Store(StoreError::QueueFull(aor("sip:a@b"))),
            PresenceError::Store(StoreError::Unavailable("redis".into())),
        ]
    }

    #[test]
    fn publish_responses_round_trip() {
        type R = Result<PublishOk, PresenceError>;
        for ok in [
            PublishOk {
                etag: Some(ETag("e1".into())),
                expires: 3600,
            },
            PublishOk {
                etag: None,
                expires: 0,
            },
        ] {
            round_trip::<R, pb::PublishResponse, _>(Ok(ok));
        }
        for e in presence_errors() {
            round_trip::<R, pb::PublishResponse, _>(Err(e));
        }
    }

    #[test]
    fn subscribe_responses_round_trip() {
        type R = Result<SubscribeOk, PresenceError>;
        round_trip::<R, pb::SubscribeResponse, _>(Ok(SubscribeOk {
            local_tag: "tt9".into(),
            expires: 600,
        }));
        for e in presence_errors() {
            round_trip::<R, pb::SubscribeResponse, _>(Err(e));
        }
    }

    #[test]
    fn every_presence_error_round_trips_with_its_status() {
        for e in presence_errors() {
            let status = e.status();
            let back = over_wire::<PresenceError, pb::PresenceError, _>(e.clone());
            assert_eq!(back.status(), status);
            assert_eq!(back, e);
        }
    }

    #[test]
    fn malformed_messages_are_decode_errors() {
        let mut s = pb::SubscribeRequest::from(subscribe());
        s.dialog = None;
        assert_eq!(
            SubscribeRequest::try_from(s),
            Err(DecodeError::Missing("SubscribeRequest.dialog"))
        );
        let mut s = pb::SubscribeRequest::from(subscribe());
        s.watcher = String::new();
        assert!(matches!(
            SubscribeRequest::try_from(s),
            Err(DecodeError::InvalidAor {
                field: "SubscribeRequest.watcher",
                ..
            })
        ));
        let mut p = pb::PublishRequest::from(publish());
        p.flow = None;
        assert_eq!(
            PublishRequest::try_from(p),
            Err(DecodeError::Missing("PublishRequest.flow"))
        );
        assert_eq!(
            FlowToken::try_from(pb::FlowClosedRequest { flow: None }),
            Err(DecodeError::Missing("FlowClosedRequest.flow"))
        );
        assert_eq!(
            Result::<PublishOk, PresenceError>::try_from(pb::PublishResponse::default()),
            Err(DecodeError::Missing("PublishResponse.result"))
        );
        assert_eq!(
            Result::<SubscribeOk, PresenceError>::try_from(pb::SubscribeResponse {
                result: Some(pb::subscribe_response::Result::Error(pb::PresenceError {
                    kind: None
                }))
            }),
            Err(DecodeError::Missing("PresenceError.kind"))
        );
    }
}
