//! The presence fronts: PUBLISH (RFC 3903) and SUBSCRIBE (RFC 6665 with
//! RFC 3856/3857) in, typed requests to the presence role, responses out.

use api::{
    ETag, PresenceError, PublishRequest, SubscribeDialog, SubscribeRequest, PRESENCE_EVENTS,
};
use sip::{Aor, ContactList, HeaderName, Request, Response, Scheme};

use crate::flow::{Flow, Transport};
use crate::Edge;

impl Edge {
    pub(crate) async fn publish(
        &self,
        request: &Request,
        flow: &Flow,
        authenticated: Option<Aor>,
    ) -> Response {
        let Some(services) = self.services.get() else {
            return self.reply(request, 503);
        };
        let event = match request.headers.event() {
            Ok(Some(e)) => e,
            // RFC 3903 §6 step 2: no Event, or one we do not serve, is 489.
            Ok(None) => {
                return self.presence_error(request, &PresenceError::BadEvent(String::new()))
            }
            Err(_) => return self.reply(request, 400),
        };
        let presentity = match self.target_aor(request) {
            Ok(a) => a,
            Err(status) => return self.reply(request, status),
        };
        let expires = match request.headers.expires() {
            Ok(e) => e,
            Err(_) => return self.reply(request, 400),
        };
        let publish = PublishRequest {
            presentity,
            event: event.package,
            if_match: request
                .headers
                .get(&HeaderName::SipIfMatch)
                .map(|t| ETag(t.trim().to_string())),
            expires,
            content_type: request.headers.content_type(),
            body: request.body.clone(),
            flow: flow.token.clone(),
            connection: flow.transport.reliable(),
            authenticated,
        };
        match services.presence.publish(publish).await {
            Ok(ok) => {
                let mut r = self.reply(request, 200);
                if let Some(etag) = ok.etag {
                    r.headers.push(HeaderName::SipETag, etag.0);
                }
                r.headers.push(HeaderName::Expires, ok.expires.to_string());
                r
            }
            Err(e) => self.presence_error(request, &e),
        }
    }

    pub(crate) async fn subscribe(
        &self,
        request: &Request,
        flow: &Flow,
        authenticated: Option<Aor>,
    ) -> Response {
        let Some(services) = self.services.get() else {
            return self.reply(request, 503);
        };
        match self.read_subscribe(request, flow, authenticated) {
            Ok(subscribe) => match services.presence.subscribe(subscribe).await {
                Ok(ok) => {
                    let mut r = Response::for_request(request, 200);
                    r.set_to_tag(&ok.local_tag);
                    self.add_server(&mut r);
                    r.headers.push(HeaderName::Expires, ok.expires.to_string());
                    r.headers.push(HeaderName::Contact, self.contact_for(flow));
                    r
                }
                Err(e) => self.presence_error(request, &e),
            },
            Err(status) => {
                let mut r = self.reply(request, status);
                if status == 489 {
                    r.headers
                        .push(HeaderName::AllowEvents, PRESENCE_EVENTS.join(", "));
                }
                r
            }
        }
    }

    /// Reads a SUBSCRIBE into the typed request, or the status to refuse it.
    fn read_subscribe(
        &self,
        request: &Request,
        flow: &Flow,
        authenticated: Option<Aor>,
    ) -> Result<SubscribeRequest, u16> {
        let event = match request.headers.event() {
            Ok(Some(e)) => e,
            Ok(None) => return Err(489),
            Err(_) => return Err(400),
        };
        let from = request.headers.from_addr().map_err(|_| 400u16)?;
        let to = request.headers.to_addr().map_err(|_| 400u16)?;
        let remote_tag = from.tag().ok_or(400u16)?.to_string();
        let local_tag = to.tag().map(str::to_string);
        // In a dialog the Request-URI is our Contact; the presentity is the
        // dialog's local URI (To). Outside, it is the Request-URI.
        let presentity = if local_tag.is_some() {
            if to.uri.scheme == Scheme::Tel {
                return Err(400);
            }
            Aor::from_uri(&to.uri).map_err(|_| 400u16)?
        } else {
            self.target_aor(request)?
        };
        let watcher = Aor::from_uri(&from.uri).map_err(|_| 400u16)?;
        // §4.1.2: SUBSCRIBE creates a dialog, so it must carry a Contact.
        let remote_target = match request.headers.contacts().map_err(|_| 400u16)? {
            Some(ContactList::List(list)) if !list.is_empty() => list[0].0.uri.to_string(),
            _ if local_tag.is_some() => String::new(),
            _ => return Err(400),
        };
        let route_set = request
            .headers
            .record_routes()
            .map_err(|_| 400u16)?
            .iter()
            .map(|r| r.to_string())
            .collect();
        let mut local_uri = to.clone();
        local_uri
            .params
            .retain(|(n, _)| !n.eq_ignore_ascii_case("tag"));
        Ok(SubscribeRequest {
            presentity,
            watcher,
            event: event.package,
            event_id: event.id,
            accept: request.headers.accept(),
            expires: request.headers.expires().map_err(|_| 400u16)?,
            dialog: SubscribeDialog {
                call_id: request.headers.call_id().map_err(|_| 400u16)?.to_string(),
                remote_tag,
                local_tag,
                remote_uri: from.to_string(),
                local_uri: local_uri.to_string(),
                remote_target,
                route_set,
                remote_cseq: request.headers.cseq().map_err(|_| 400u16)?.seq,
            },
            flow: flow.token.clone(),
            connection: flow.transport.reliable(),
            content_type: request.headers.content_type(),
            body: request.body.clone(),
            authenticated,
        })
    }

    /// The AOR a request is for: its Request-URI, in a domain we serve.
    fn target_aor(&self, request: &Request) -> Result<Aor, u16> {
        if request.uri.scheme == Scheme::Tel {
            return Err(416);
        }
        let aor = Aor::from_uri(&request.uri).map_err(|_| 404u16)?;
        if aor.user().is_none() || !self.serves_domain(aor.domain()) {
            return Err(404);
        }
        Ok(aor)
    }

    /// Maps a presence error to its response, with the headers its status
    /// calls for.
    fn presence_error(&self, request: &Request, e: &PresenceError) -> Response {
        let mut r = self.reply(request, e.status());
        match e {
            PresenceError::BadEvent(_) => {
                r.headers
                    .push(HeaderName::AllowEvents, PRESENCE_EVENTS.join(", "));
            }
            PresenceError::IntervalTooBrief { min_expires } => {
                r.headers
                    .push(HeaderName::MinExpires, min_expires.to_string());
            }
            PresenceError::UnsupportedMediaType { accept, .. } => {
                r.headers.push(HeaderName::Accept, accept.as_str());
            }
            PresenceError::Store(_) => r.headers.push(HeaderName::RetryAfter, "5"),
            _ => {}
        }
        r
    }

    /// Our Contact for dialogs created over `flow` (RFC 3261 §12.1.1): the
    /// address in-dialog requests reach us at.
    pub(crate) fn contact_for(&self, flow: &Flow) -> String {
        let host = self.sent_by(flow);
        match flow.transport {
            Transport::Udp => format!("<sip:{host}>"),
            Transport::Tcp => format!("<sip:{host};transport=tcp>"),
            // RFC 7118 §5.2: one transport parameter, ws, for WS and WSS.
            Transport::Ws | Transport::Wss => format!("<sip:{host};transport=ws>"),
            Transport::Tls => format!("<sip:{host};transport=tls>"),
        }
    }
}
