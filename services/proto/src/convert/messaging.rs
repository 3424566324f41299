//! `herald.messaging.v1`: REGISTER and MESSAGE.

use api::{
    Binding, ContactSpec, MessageOutcome, MessagingError, PageMessage, RegisterContacts,
    RegisterRequest, RegistrarError,
};
use store::{StoreError, UnixTime};

use super::common::{aor_string, flow, headers_from_wire, headers_to_wire};
use super::{aor, narrow, required, DecodeError};
use crate::messaging::v1 as pb;

impl From<ContactSpec> for pb::ContactSpec {
    fn from(c: ContactSpec) -> Self {
        pb::ContactSpec {
            uri: c.uri,
            expires: c.expires,
            q: c.q.map(u32::from),
            instance: c.instance,
            reg_id: c.reg_id,
        }
    }
}

impl TryFrom<pb::ContactSpec> for ContactSpec {
    type Error = DecodeError;
    fn try_from(c: pb::ContactSpec) -> Result<Self, DecodeError> {
        Ok(ContactSpec {
            uri: c.uri,
            expires: c.expires,
            q: c.q.map(|q| narrow("ContactSpec.q", q)).transpose()?,
            instance: c.instance,
            reg_id: c.reg_id,
        })
    }
}

impl From<RegisterContacts> for pb::RegisterContacts {
    fn from(c: RegisterContacts) -> Self {
        use pb::register_contacts::{Fetch, Kind, RemoveAll, Update};
        let kind = match c {
            RegisterContacts::Fetch => Kind::Fetch(Fetch {}),
            RegisterContacts::RemoveAll => Kind::RemoveAll(RemoveAll {}),
            RegisterContacts::Update(contacts) => Kind::Update(Update {
                contacts: contacts.into_iter().map(Into::into).collect(),
            }),
        };
        pb::RegisterContacts { kind: Some(kind) }
    }
}

impl TryFrom<pb::RegisterContacts> for RegisterContacts {
    type Error = DecodeError;
    fn try_from(c: pb::RegisterContacts) -> Result<Self, DecodeError> {
        use pb::register_contacts::Kind;
        Ok(match required("RegisterContacts.kind", c.kind)? {
            Kind::Fetch(_) => RegisterContacts::Fetch,
            Kind::RemoveAll(_) => RegisterContacts::RemoveAll,
            Kind::Update(u) => RegisterContacts::Update(
                u.contacts
                    .into_iter()
                    .map(TryInto::try_into)
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

impl From<RegisterRequest> for pb::RegisterRequest {
    fn from(r: RegisterRequest) -> Self {
        pb::RegisterRequest {
            aor: aor_string(r.aor),
            contacts: Some(r.contacts.into()),
            expires: r.expires,
            call_id: r.call_id,
            cseq: r.cseq,
            flow: Some(r.flow.into()),
            authenticated: r.authenticated.map(aor_string),
        }
    }
}

impl TryFrom<pb::RegisterRequest> for RegisterRequest {
    type Error = DecodeError;
    fn try_from(r: pb::RegisterRequest) -> Result<Self, DecodeError> {
        Ok(RegisterRequest {
            aor: aor("RegisterRequest.aor", r.aor)?,
            contacts: required("RegisterRequest.contacts", r.contacts)?.try_into()?,
            expires: r.expires,
            call_id: r.call_id,
            cseq: r.cseq,
            flow: flow("RegisterRequest.flow", r.flow)?,
            authenticated: r
                .authenticated
                .map(|a| aor("RegisterRequest.authenticated", a))
                .transpose()?,
        })
    }
}

impl From<Binding> for pb::Binding {
    fn from(b: Binding) -> Self {
        pb::Binding {
            contact: b.contact,
            expires_at: b.expires_at.0,
            q: b.q.map(u32::from),
            call_id: b.call_id,
            cseq: b.cseq,
            instance: b.instance,
            reg_id: b.reg_id,
            flow: Some(b.flow.into()),
        }
    }
}

impl TryFrom<pb::Binding> for Binding {
    type Error = DecodeError;
    fn try_from(b: pb::Binding) -> Result<Self, DecodeError> {
        Ok(Binding {
            contact: b.contact,
            expires_at: UnixTime(b.expires_at),
            q: b.q.map(|q| narrow("Binding.q", q)).transpose()?,
            call_id: b.call_id,
            cseq: b.cseq,
            instance: b.instance,
            reg_id: b.reg_id,
            flow: flow("Binding.flow", b.flow)?,
        })
    }
}

impl From<RegistrarError> for pb::RegistrarError {
    fn from(e: RegistrarError) -> Self {
        use pb::registrar_error::{
            IntervalTooBrief, InvalidStar, Kind, NotFound, OutOfOrder, TooManyContacts,
        };
        let kind = match e {
            RegistrarError::IntervalTooBrief { min_expires } => {
                Kind::IntervalTooBrief(IntervalTooBrief { min_expires })
            }
            RegistrarError::OutOfOrder => Kind::OutOfOrder(OutOfOrder {}),
            RegistrarError::InvalidStar => Kind::InvalidStar(InvalidStar {}),
            RegistrarError::NotFound => Kind::NotFound(NotFound {}),
            RegistrarError::TooManyContacts => Kind::TooManyContacts(TooManyContacts {}),
            RegistrarError::Store(e) => Kind::Store(e.into()),
        };
        pb::RegistrarError { kind: Some(kind) }
    }
}

impl TryFrom<pb::RegistrarError> for RegistrarError {
    type Error = DecodeError;
    fn try_from(e: pb::RegistrarError) -> Result<Self, DecodeError> {
        use pb::registrar_error::Kind;
        Ok(match required("RegistrarError.kind", e.kind)? {
            Kind::IntervalTooBrief(i) => RegistrarError::IntervalTooBrief {
                min_expires: i.min_expires,
            },
            Kind::OutOfOrder(_) => RegistrarError::OutOfOrder,
            Kind::InvalidStar(_) => RegistrarError::InvalidStar,
            Kind::NotFound(_) => RegistrarError::NotFound,
            Kind::TooManyContacts(_) => RegistrarError::TooManyContacts,
            Kind::Store(s) => RegistrarError::Store(StoreError::try_from(s)?),
        })
    }
}

impl From<Result<Vec<Binding>, RegistrarError>> for pb::RegisterResponse {
    fn from(r: Result<Vec<Binding>, RegistrarError>) -> Self {
        use pb::register_response::{Ok as RegisterOk, Result as Outcome};
        let result = match r {
            Ok(bindings) => Outcome::Ok(RegisterOk {
                bindings: bindings.into_iter().map(Into::into).collect(),
            }),
            Err(e) => Outcome::Error(e.into()),
        };
        pb::RegisterResponse {
            result: Some(result),
        }
    }
}

impl TryFrom<pb::RegisterResponse> for Result<Vec<Binding>, RegistrarError> {
    type Error = DecodeError;
    fn try_from(r: pb::RegisterResponse) -> Result<Self, DecodeError> {
        use pb::register_response::Result as Outcome;
        Ok(match required("RegisterResponse.result", r.result)? {
            Outcome::Ok(ok) => Ok(ok
                .bindings
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?),
            Outcome::Error(e) => Err(e.try_into()?),
        })
    }
}

impl From<PageMessage> for pb::PageMessage {
    fn from(m: PageMessage) -> Self {
        pb::PageMessage {
            target: aor_string(m.target),
            from: m.from,
            to: m.to,
            call_id: m.call_id,
            cseq: m.cseq,
            content_type: m.content_type,
            headers: headers_to_wire(m.headers),
            body: m.body,
            max_forwards: u32::from(m.max_forwards),
            vias: m.vias,
            authenticated: m.authenticated.map(aor_string),
        }
    }
}

impl TryFrom<pb::PageMessage> for PageMessage {
    type Error = DecodeError;
    fn try_from(m: pb::PageMessage) -> Result<Self, DecodeError> {
        Ok(PageMessage {
            target: aor("PageMessage.target", m.target)?,
            from: m.from,
            to: m.to,
            call_id: m.call_id,
            cseq: m.cseq,
            content_type: m.content_type,
            headers: headers_from_wire(m.headers),
            body: m.body,
            max_forwards: narrow("PageMessage.max_forwards", m.max_forwards)?,
            vias: m.vias,
            authenticated: m
                .authenticated
                .map(|a| aor("PageMessage.authenticated", a))
                .transpose()?,
        })
    }
}

impl From<MessageOutcome> for pb::MessageOutcome {
    fn from(o: MessageOutcome) -> Self {
        use pb::message_outcome::{Delivered, Kind, Rejected, Stored};
        let kind = match o {
            MessageOutcome::Delivered { status } => Kind::Delivered(Delivered {
                status: u32::from(status),
            }),
            MessageOutcome::Stored => Kind::Stored(Stored {}),
            MessageOutcome::Rejected { status, reason } => Kind::Rejected(Rejected {
                status: u32::from(status),
                reason,
            }),
        };
        pb::MessageOutcome { kind: Some(kind) }
    }
}

impl TryFrom<pb::MessageOutcome> for MessageOutcome {
    type Error = DecodeError;
    fn try_from(o: pb::MessageOutcome) -> Result<Self, DecodeError> {
        use pb::message_outcome::Kind;
        Ok(match required("MessageOutcome.kind", o.kind)? {
            Kind::Delivered(d) => MessageOutcome::Delivered {
                status: narrow("MessageOutcome.delivered.status", d.status)?,
            },
            Kind::Stored(_) => MessageOutcome::Stored,
            Kind::Rejected(r) => MessageOutcome::Rejected {
                status: narrow("MessageOutcome.rejected.status", r.status)?,
                reason: r.reason,
            },
        })
    }
}

impl From<MessagingError> for pb::MessagingError {
    fn from(e: MessagingError) -> Self {
        use pb::messaging_error::{Kind, NotFound};
        let kind = match e {
            MessagingError::NotFound => Kind::NotFound(NotFound {}),
            MessagingError::Store(e) => Kind::Store(e.into()),
        };
        pb::MessagingError { kind: Some(kind) }
    }
}

impl TryFrom<pb::MessagingError> for MessagingError {
    type Error = DecodeError;
    fn try_from(e: pb::MessagingError) -> Result<Self, DecodeError> {
        use pb::messaging_error::Kind;
        Ok(match required("MessagingError.kind", e.kind)? {
            Kind::NotFound(_) => MessagingError::NotFound,
            Kind::Store(s) => MessagingError::Store(StoreError::try_from(s)?),
        })
    }
}

impl From<Result<MessageOutcome, MessagingError>> for pb::MessageResponse {
    fn from(r: Result<MessageOutcome, MessagingError>) -> Self {
        use pb::message_response::Result as Outcome;
        let result = match r {
            Ok(o) => Outcome::Ok(o.into()),
            Err(e) => Outcome::Error(e.into()),
        };
        pb::MessageResponse {
            result: Some(result),
        }
    }
}

impl TryFrom<pb::MessageResponse> for Result<MessageOutcome, MessagingError> {
    type Error = DecodeError;
    fn try_from(r: pb::MessageResponse) -> Result<Self, DecodeError> {
        use pb::message_response::Result as Outcome;
        Ok(match required("MessageResponse.result", r.result)? {
            Outcome::Ok(o) => Ok(o.try_into()?),
            Outcome::Error(e) => Err(e.try_into()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use store::FlowToken;

    use super::*;
    use crate::convert::testing::{aor, round_trip};

    fn contact(n: u32) -> ContactSpec {
        ContactSpec {
            uri: format!("<sip:alice@10.0.0.{n}:5060;transport=tcp>"),
            expires: Some(3600),
            q: Some(u16::MAX),
            instance: Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>".into()),
            reg_id: Some(n),
        }
    }

    fn bare_contact() -> ContactSpec {
        ContactSpec {
            uri: "sip:alice@host".into(),
            expires: None,
            q: None,
            instance: None,
            reg_id: None,
        }
    }

    fn binding() -> Binding {
        Binding {
            contact: "sip:alice@10.0.0.1".into(),
            expires_at: UnixTime(u64::MAX),
            q: Some(500),
            call_id: "c1@h".into(),
            cseq: u32::MAX,
            instance: Some("urn:uuid:1".into()),
            reg_id: Some(1),
            flow: FlowToken("tcp:1".into()),
        }
    }

    #[test]
    fn contact_specs_round_trip() {
        round_trip::<ContactSpec, pb::ContactSpec, _>(contact(1));
        round_trip::<ContactSpec, pb::ContactSpec, _>(bare_contact());
        // Zero is a value, not "absent".
        round_trip::<ContactSpec, pb::ContactSpec, _>(ContactSpec {
            expires: Some(0),
            q: Some(0),
            reg_id: Some(0),
            ..bare_contact()
        });
    }

    #[test]
    fn register_requests_round_trip() {
        for contacts in [
            RegisterContacts::Fetch,
            RegisterContacts::RemoveAll,
            RegisterContacts::Update(vec![]),
            RegisterContacts::Update(vec![contact(1), bare_contact(), contact(2)]),
        ] {
            for expires in [None, Some(0), Some(7200)] {
                round_trip::<RegisterRequest, pb::RegisterRequest, _>(RegisterRequest {
                    aor: aor("sip:alice@example.com"),
                    contacts: contacts.clone(),
                    expires,
                    call_id: "a84b4c76e66710@pc33".into(),
                    cseq: 314_159,
                    flow: FlowToken("udp:192.0.2.4:5060".into()),
                    authenticated: None,
                });
            }
        }
    }

    #[test]
    fn bindings_round_trip() {
        round_trip::<Binding, pb::Binding, _>(binding());
        round_trip::<Binding, pb::Binding, _>(Binding {
            q: None,
            instance: None,
            reg_id: None,
            expires_at: UnixTime(0),
            ..binding()
        });
    }

    fn registrar_errors() -> Vec<RegistrarError> {
        vec![
            RegistrarError::IntervalTooBrief { min_expires: 3600 },
            RegistrarError::OutOfOrder,
            RegistrarError::InvalidStar,
            RegistrarError::NotFound,
            RegistrarError::TooManyContacts,
            RegistrarError::Store(StoreError::Conflict(aor("sip:a@b"))),
            RegistrarError::Store(StoreError::QueueFull(aor("sip:a@b"))),
            RegistrarError::Store(StoreError::Unavailable("down".into())),
        ]
    }

    #[test]
    fn every_registrar_error_round_trips_with_its_status() {
        for e in registrar_errors() {
            let status = e.status();
            round_trip::<RegistrarError, pb::RegistrarError, _>(e.clone());
            let back: Result<Vec<Binding>, RegistrarError> =
                crate::convert::testing::over_wire::<_, pb::RegisterResponse, _>(Err(e));
            assert_eq!(back.map_err(|e| e.status()), Err(status));
        }
    }

    #[test]
    fn register_responses_round_trip() {
        type R = Result<Vec<Binding>, RegistrarError>;
        round_trip::<R, pb::RegisterResponse, _>(Ok(vec![]));
        round_trip::<R, pb::RegisterResponse, _>(Ok(vec![binding(), binding()]));
        for e in registrar_errors() {
            round_trip::<R, pb::RegisterResponse, _>(Err(e));
        }
    }

    fn page() -> PageMessage {
        PageMessage {
            target: aor("sip:bob@example.com"),
            from: "\"Alice\" <sip:alice@example.com>;tag=49583".into(),
            to: "<sip:bob@example.com>".into(),
            call_id: "asd88asd77a@1.2.3.4".into(),
            cseq: 1,
            content_type: Some("text/plain;charset=utf-8".into()),
            headers: vec![
                ("Subject".into(), "lunch".into()),
                ("Date".into(), "Sat, 13 Nov 2010 23:29:00 GMT".into()),
                ("Subject".into(), "again".into()),
            ],
            body: Bytes::from_static(b"Watson, come here.\x00\xff"),
            max_forwards: 255,
            vias: vec![
                "SIP/2.0/TCP p.example.com;branch=z9hG4bK1".into(),
                "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK2;rport=5060".into(),
            ],
            authenticated: Some("sip:alice@example.com".parse().unwrap()),
        }
    }

    #[test]
    fn page_messages_round_trip() {
        round_trip::<PageMessage, pb::PageMessage, _>(page());
        round_trip::<PageMessage, pb::PageMessage, _>(PageMessage {
            content_type: None,
            headers: vec![],
            body: Bytes::new(),
            max_forwards: 0,
            vias: vec![],
            ..page()
        });
    }

    fn messaging_errors() -> Vec<MessagingError> {
        vec![
            MessagingError::NotFound,
            MessagingError::Store(StoreError::Conflict(aor("sip:a@b"))),
            MessagingError::Store(StoreError::QueueFull(aor("sip:bob@example.com"))),
            MessagingError::Store(StoreError::Unavailable("redis".into())),
        ]
    }

    #[test]
    fn message_outcomes_and_errors_round_trip() {
        type R = Result<MessageOutcome, MessagingError>;
        for o in [
            MessageOutcome::Delivered { status: 200 },
            MessageOutcome::Delivered { status: 202 },
            MessageOutcome::Stored,
            MessageOutcome::Rejected {
                status: 603,
                reason: "Decline".into(),
            },
        ] {
            round_trip::<MessageOutcome, pb::MessageOutcome, _>(o.clone());
            round_trip::<R, pb::MessageResponse, _>(Ok(o));
        }
        for e in messaging_errors() {
            round_trip::<MessagingError, pb::MessagingError, _>(e.clone());
            round_trip::<R, pb::MessageResponse, _>(Err(e));
        }
    }

    #[test]
    fn malformed_messages_are_decode_errors() {
        let mut r = pb::RegisterRequest::from(RegisterRequest {
            aor: aor("sip:alice@example.com"),
            contacts: RegisterContacts::Fetch,
            expires: None,
            call_id: "c".into(),
            cseq: 1,
            flow: FlowToken("f".into()),
            authenticated: None,
        });
        let good = r.clone();
        r.flow = None;
        assert_eq!(
            RegisterRequest::try_from(r),
            Err(DecodeError::Missing("RegisterRequest.flow"))
        );
        let mut r = good.clone();
        r.contacts = Some(pb::RegisterContacts { kind: None });
        assert_eq!(
            RegisterRequest::try_from(r),
            Err(DecodeError::Missing("RegisterContacts.kind"))
        );
        let mut r = good.clone();
        r.aor = "alice".into();
        assert!(matches!(
            RegisterRequest::try_from(r),
            Err(DecodeError::InvalidAor { .. })
        ));
        let mut r = good;
        r.contacts = Some(RegisterContacts::Update(vec![bare_contact()]).into());
        if let Some(pb::register_contacts::Kind::Update(u)) =
            r.contacts.as_mut().and_then(|c| c.kind.as_mut())
        {
            u.contacts[0].q = Some(70_000);
        }
        assert_eq!(
            RegisterRequest::try_from(r),
            Err(DecodeError::OutOfRange {
                field: "ContactSpec.q",
                value: 70_000
            })
        );

        let mut m = pb::PageMessage::from(page());
        m.max_forwards = 256;
        assert!(matches!(
            PageMessage::try_from(m),
            Err(DecodeError::OutOfRange { .. })
        ));
        let mut b = pb::Binding::from(binding());
        b.flow = None;
        assert_eq!(
            Binding::try_from(b),
            Err(DecodeError::Missing("Binding.flow"))
        );

        assert_eq!(
            Result::<Vec<Binding>, RegistrarError>::try_from(pb::RegisterResponse::default()),
            Err(DecodeError::Missing("RegisterResponse.result"))
        );
        assert_eq!(
            Result::<MessageOutcome, MessagingError>::try_from(pb::MessageResponse {
                result: Some(pb::message_response::Result::Ok(pb::MessageOutcome {
                    kind: Some(pb::message_outcome::Kind::Delivered(
                        pb::message_outcome::Delivered { status: 1 << 20 }
                    ))
                }))
            }),
            Err(DecodeError::OutOfRange {
                field: "MessageOutcome.delivered.status",
                value: 1 << 20
            })
        );
        assert_eq!(
            MessagingError::try_from(pb::MessagingError { kind: None }),
            Err(DecodeError::Missing("MessagingError.kind"))
        );
        assert_eq!(
            RegistrarError::try_from(pb::RegistrarError { kind: None }),
            Err(DecodeError::Missing("RegistrarError.kind"))
        );
    }
}
