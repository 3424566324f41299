//! `herald.edge.v1`: a service sending a request through an edge.

use api::{DeliveryError, FinalResponse, OutboundRequest};
use sip::Method;
use store::FlowToken;

use super::common::{flow, headers_from_wire, headers_to_wire};
use super::{narrow, required, DecodeError};
use crate::edge::v1 as pb;

impl From<OutboundRequest> for pb::OutboundRequest {
    fn from(r: OutboundRequest) -> Self {
        pb::OutboundRequest {
            method: r.method.as_str().to_owned(),
            uri: r.uri,
            from: r.from,
            to: r.to,
            call_id: r.call_id,
            cseq: r.cseq,
            relayed_vias: r.relayed_vias,
            route: r.route,
            content_type: r.content_type,
            headers: headers_to_wire(r.headers),
            body: r.body,
            max_forwards: u32::from(r.max_forwards),
            flow_only: r.flow_only,
        }
    }
}

impl TryFrom<pb::OutboundRequest> for OutboundRequest {
    type Error = DecodeError;
    fn try_from(r: pb::OutboundRequest) -> Result<Self, DecodeError> {
        let method = Method::parse(&r.method).ok_or(DecodeError::InvalidMethod(r.method))?;
        Ok(OutboundRequest {
            method,
            uri: r.uri,
            from: r.from,
            to: r.to,
            call_id: r.call_id,
            cseq: r.cseq,
            relayed_vias: r.relayed_vias,
            route: r.route,
            content_type: r.content_type,
            headers: headers_from_wire(r.headers),
            body: r.body,
            max_forwards: narrow("OutboundRequest.max_forwards", r.max_forwards)?,
            flow_only: r.flow_only,
        })
    }
}

impl From<(FlowToken, OutboundRequest)> for pb::SendRequestRequest {
    fn from((flow, request): (FlowToken, OutboundRequest)) -> Self {
        pb::SendRequestRequest {
            flow: Some(flow.into()),
            request: Some(request.into()),
        }
    }
}

impl TryFrom<pb::SendRequestRequest> for (FlowToken, OutboundRequest) {
    type Error = DecodeError;
    fn try_from(r: pb::SendRequestRequest) -> Result<Self, DecodeError> {
        Ok((
            flow("SendRequestRequest.flow", r.flow)?,
            required("SendRequestRequest.request", r.request)?.try_into()?,
        ))
    }
}

impl From<FinalResponse> for pb::FinalResponse {
    fn from(r: FinalResponse) -> Self {
        pb::FinalResponse {
            status: u32::from(r.status),
            reason: r.reason,
        }
    }
}

impl TryFrom<pb::FinalResponse> for FinalResponse {
    type Error = DecodeError;
    fn try_from(r: pb::FinalResponse) -> Result<Self, DecodeError> {
        Ok(FinalResponse {
            status: narrow("FinalResponse.status", r.status)?,
            reason: r.reason,
        })
    }
}

impl From<DeliveryError> for pb::DeliveryError {
    fn from(e: DeliveryError) -> Self {
        use pb::delivery_error::{FlowGone, Invalid, Kind, Timeout, Transport};
        let kind = match e {
            DeliveryError::FlowGone(flow) => Kind::FlowGone(FlowGone { flow }),
            DeliveryError::Timeout => Kind::Timeout(Timeout {}),
            DeliveryError::Transport(reason) => Kind::Transport(Transport { reason }),
            DeliveryError::Invalid(reason) => Kind::Invalid(Invalid { reason }),
        };
        pb::DeliveryError { kind: Some(kind) }
    }
}

impl TryFrom<pb::DeliveryError> for DeliveryError {
    type Error = DecodeError;
    fn try_from(e: pb::DeliveryError) -> Result<Self, DecodeError> {
        use pb::delivery_error::Kind;
        Ok(match required("DeliveryError.kind", e.kind)? {
            Kind::FlowGone(f) => DeliveryError::FlowGone(f.flow),
            Kind::Timeout(_) => DeliveryError::Timeout,
            Kind::Transport(t) => DeliveryError::Transport(t.reason),
            Kind::Invalid(i) => DeliveryError::Invalid(i.reason),
        })
    }
}

impl From<Result<FinalResponse, DeliveryError>> for pb::SendRequestResponse {
    fn from(r: Result<FinalResponse, DeliveryError>) -> Self {
        use pb::send_request_response::Result as Outcome;
        let result = match r {
            Ok(ok) => Outcome::Ok(ok.into()),
            Err(e) => Outcome::Error(e.into()),
        };
        pb::SendRequestResponse {
            result: Some(result),
        }
    }
}

impl TryFrom<pb::SendRequestResponse> for Result<FinalResponse, DeliveryError> {
    type Error = DecodeError;
    fn try_from(r: pb::SendRequestResponse) -> Result<Self, DecodeError> {
        use pb::send_request_response::Result as Outcome;
        Ok(match required("SendRequestResponse.result", r.result)? {
            Outcome::Ok(ok) => Ok(ok.try_into()?),
            Outcome::Error(e) => Err(e.try_into()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::convert::testing::{over_wire, round_trip};

    fn notify(method: Method) -> OutboundRequest {
        OutboundRequest {
            method,
            uri: "sip:bob@10.0.0.2:5070;transport=tcp".into(),
            from: "<sip:alice@example.com>;tag=tt9".into(),
            to: "<sip:bob@example.com>;tag=ft1".into(),
            call_id: "sub1@bob".into(),
            cseq: 7,
            relayed_vias: vec!["SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa".into()],
            route: vec!["<sip:p1.example.com;lr>".into()],
            content_type: Some("application/pidf+xml".into()),
            headers: vec![
                ("Event".into(), "presence;id=7".into()),
                ("Subscription-State".into(), "active;expires=599".into()),
            ],
            body: Bytes::from_static(b"<presence/>"),
            max_forwards: 70,
            flow_only: true,
        }
    }

    /// `OutboundRequest` has no `PartialEq` (api keeps it that way); its
    /// `Debug` shows every field.
    fn same(a: &OutboundRequest, b: &OutboundRequest) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn outbound_requests_round_trip_for_every_method() {
        for method in [
            Method::Register,
            Method::Invite,
            Method::Ack,
            Method::Cancel,
            Method::Bye,
            Method::Options,
            Method::Message,
            Method::Subscribe,
            Method::Notify,
            Method::Publish,
            Method::Info,
            Method::Prack,
            Method::Update,
            Method::Refer,
            Method::Extension("NEWMETHOD".into()),
        ] {
            let r = notify(method);
            let back = over_wire::<OutboundRequest, pb::OutboundRequest, _>(r.clone());
            assert!(same(&back, &r), "{back:?} != {r:?}");
        }
        let bare = OutboundRequest {
            relayed_vias: vec![],
            route: vec![],
            content_type: None,
            headers: vec![],
            body: Bytes::new(),
            max_forwards: 0,
            flow_only: false,
            ..notify(Method::Message)
        };
        let back = over_wire::<OutboundRequest, pb::OutboundRequest, _>(bare.clone());
        assert!(same(&back, &bare));
    }

    #[test]
    fn send_request_requests_round_trip() {
        let (flow, r) = over_wire::<_, pb::SendRequestRequest, _>((
            FlowToken("udp:1.2.3.4:5060".into()),
            notify(Method::Notify),
        ));
        assert_eq!(flow, FlowToken("udp:1.2.3.4:5060".into()));
        assert!(same(&r, &notify(Method::Notify)));
    }

    #[test]
    fn responses_and_every_delivery_error_round_trip() {
        type R = Result<FinalResponse, DeliveryError>;
        for ok in [
            FinalResponse {
                status: 200,
                reason: "OK".into(),
            },
            FinalResponse {
                status: 481,
                reason: "Call/Transaction Does Not Exist".into(),
            },
        ] {
            round_trip::<FinalResponse, pb::FinalResponse, _>(ok.clone());
            round_trip::<R, pb::SendRequestResponse, _>(Ok(ok));
        }
        for e in [
            DeliveryError::FlowGone("tcp:9".into()),
            DeliveryError::Timeout,
            DeliveryError::Transport("broken pipe".into()),
            DeliveryError::Invalid("bad contact URI".into()),
        ] {
            round_trip::<DeliveryError, pb::DeliveryError, _>(e.clone());
            round_trip::<R, pb::SendRequestResponse, _>(Err(e));
        }
    }

    #[test]
    fn malformed_messages_are_decode_errors() {
        let mut r = pb::OutboundRequest::from(notify(Method::Notify));
        r.method = "NOT IFY".into();
        assert!(matches!(
            OutboundRequest::try_from(r),
            Err(DecodeError::InvalidMethod(_))
        ));
        let mut r = pb::OutboundRequest::from(notify(Method::Notify));
        r.method = String::new();
        assert!(OutboundRequest::try_from(r).is_err());
        let mut r = pb::OutboundRequest::from(notify(Method::Notify));
        r.max_forwards = 300;
        assert!(matches!(
            OutboundRequest::try_from(r),
            Err(DecodeError::OutOfRange { .. })
        ));
        assert_eq!(
            <(FlowToken, OutboundRequest)>::try_from(pb::SendRequestRequest {
                flow: Some(FlowToken("f".into()).into()),
                request: None,
            })
            .map(|_| ()),
            Err(DecodeError::Missing("SendRequestRequest.request"))
        );
        assert_eq!(
            <(FlowToken, OutboundRequest)>::try_from(pb::SendRequestRequest {
                flow: None,
                request: Some(notify(Method::Notify).into()),
            })
            .map(|_| ()),
            Err(DecodeError::Missing("SendRequestRequest.flow"))
        );
        assert_eq!(
            FinalResponse::try_from(pb::FinalResponse {
                status: 70_000,
                reason: String::new()
            }),
            Err(DecodeError::OutOfRange {
                field: "FinalResponse.status",
                value: 70_000
            })
        );
        assert_eq!(
            Result::<FinalResponse, DeliveryError>::try_from(pb::SendRequestResponse::default()),
            Err(DecodeError::Missing("SendRequestResponse.result"))
        );
        assert_eq!(
            DeliveryError::try_from(pb::DeliveryError { kind: None }),
            Err(DecodeError::Missing("DeliveryError.kind"))
        );
    }
}
