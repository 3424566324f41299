//! Presence vocabulary for the scripted agents: PUBLISH (RFC 3903),
//! SUBSCRIBE dialogs and their NOTIFYs (RFC 6665 with RFC 3856 presence
//! and RFC 3857 watcher info), and small PIDF documents to publish.
//!
//! A [`Dialog`] is what the subscriber remembers of one subscription
//! (Call-ID, both tags, Herald's Contact, its own CSeq and the CSeq of the
//! last NOTIFY); the agent's methods take it so refreshes and unsubscribes
//! are real in-dialog requests. [`Ua::recv_notify`] answers each NOTIFY
//! (200 unless told otherwise), because Herald sends a dialog's next
//! NOTIFY only once the previous one is answered.
//!
//! ```no_run
//! use testkit::{secs, Herald};
//! use testkit::presence::{pidf_tuple, PRESENCE};
//!
//! let herald = Herald::start(&[]).unwrap();
//! let mut alice = herald.udp_ua("alice").unwrap();
//! let mut bob = herald.udp_ua("bob").unwrap();
//! let (ok, dialog) = bob.subscribe(&alice.aor(), PRESENCE, 600).unwrap();
//! assert_eq!(ok.status, 200);
//! let mut dialog = dialog.unwrap();
//! let first = bob.recv_notify(&mut dialog, secs(5)).unwrap();
//! assert!(first.is_offline().unwrap());
//! let body = pidf_tuple(&alice.aor(), "phone", "open", Some("lunch"));
//! assert_eq!(alice.publish(&body, 600).unwrap().status, 200);
//! let next = bob.recv_notify(&mut dialog, secs(5)).unwrap();
//! assert_eq!(next.pidf().unwrap().tuples()[0].id(), "phone");
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use pidf::{BasicStatus, PidfDocument, WatcherInfo, XmlLimits};
use sip::{HeaderName, Method, Request, Response, SubscriptionState};

use crate::ua::{Transport, Ua};

/// The presence event package (RFC 3856).
pub const PRESENCE: &str = "presence";
/// The watcher-info template package applied to presence (RFC 3857).
pub const PRESENCE_WINFO: &str = "presence.winfo";
/// PIDF's media type (RFC 3863).
pub const PIDF: &str = "application/pidf+xml";
/// Watcher-info documents' media type (RFC 3858).
pub const WATCHERINFO: &str = "application/watcherinfo+xml";

/// A PIDF document with one tuple whose basic status is `basic` (`open`
/// or `closed`), and a note inside the tuple when given.
pub fn pidf_tuple(entity: &str, tuple_id: &str, basic: &str, note: Option<&str>) -> String {
    let note = note
        .map(|n| format!("\n    <note>{n}</note>"))
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{entity}">
  <tuple id="{tuple_id}">
    <status><basic>{basic}</basic></status>{note}
  </tuple>
</presence>
"#
    )
}

/// Extra headers and bodies on a request the agent built, for tests that
/// need a request the convenience methods do not send.
pub trait RequestExt: Sized {
    /// Adds a header line (after the existing ones).
    fn with_header(self, name: HeaderName, value: impl Into<String>) -> Self;
    /// Replaces every line of `name` by one with `value`.
    fn set_header(self, name: HeaderName, value: impl Into<String>) -> Self;
    /// Removes every line of `name`.
    fn without_header(self, name: &HeaderName) -> Self;
    /// Sets Content-Type and the body.
    fn with_body(self, content_type: &str, body: impl AsRef<[u8]>) -> Self;
}

impl RequestExt for Request {
    fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push(name, value);
        self
    }
    fn set_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.set(name, value);
        self
    }
    fn without_header(mut self, name: &HeaderName) -> Self {
        self.headers.remove(name);
        self
    }
    fn with_body(mut self, content_type: &str, body: impl AsRef<[u8]>) -> Self {
        self.headers.set(HeaderName::ContentType, content_type);
        self.body = Bytes::copy_from_slice(body.as_ref());
        self
    }
}

/// The SIP-ETag of a 2xx to PUBLISH.
pub fn etag(resp: &Response) -> Result<String> {
    let tag = resp
        .headers
        .get(&HeaderName::SipETag)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .with_context(|| format!("a {} to PUBLISH without SIP-ETag", resp.status))?;
    Ok(tag.to_string())
}

/// The Expires of a response, which must be there.
pub fn expires(resp: &Response) -> Result<u32> {
    resp.headers
        .expires()?
        .with_context(|| format!("a {} {} without Expires", resp.status, resp.reason))
}

/// What a subscriber keeps of one subscription dialog (RFC 6665 §4.1.2).
#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    /// The subscriber's tag (From of its requests).
    pub local_tag: String,
    /// Herald's tag (To of the 200).
    pub remote_tag: String,
    /// Whom the subscription watches (`sip:alice@example.com`).
    pub presentity: String,
    /// The Event package.
    pub event: String,
    /// Herald's Contact from the 200: where in-dialog requests go.
    pub remote_target: String,
    /// The CSeq of the subscriber's last request in this dialog.
    pub cseq: u32,
    /// The CSeq of the last NOTIFY received in this dialog.
    pub last_notify_cseq: Option<u32>,
}

impl Dialog {
    /// The dialog a 2xx to an initial SUBSCRIBE created (for tests that
    /// sent the SUBSCRIBE themselves).
    pub fn from_exchange(req: &Request, resp: &Response) -> Result<Dialog> {
        let to = resp.headers.to_addr()?;
        let remote_tag = to
            .tag()
            .context("a 2xx to SUBSCRIBE without a To tag (RFC 3261 §12.1.1)")?
            .to_string();
        let local_tag = req
            .headers
            .from_addr()?
            .tag()
            .context("our SUBSCRIBE has no From tag")?
            .to_string();
        let remote_target = match resp.headers.contacts()? {
            Some(sip::ContactList::List(list)) if !list.is_empty() => list[0].0.uri.to_string(),
            _ => bail!("a 2xx to SUBSCRIBE without Contact (RFC 6665 §4.1.2.1)"),
        };
        let event = req
            .headers
            .event()?
            .map(|e| e.package)
            .context("our SUBSCRIBE has no Event")?;
        Ok(Dialog {
            call_id: req.headers.call_id()?.to_string(),
            local_tag,
            remote_tag,
            presentity: req.headers.to_addr()?.uri.to_string(),
            event,
            remote_target,
            cseq: req.headers.cseq()?.seq,
            last_notify_cseq: None,
        })
    }

    /// Does this request belong to the dialog (its Call-ID, and Herald's
    /// tag in From)?
    pub fn owns(&self, req: &Request) -> bool {
        req.headers.call_id().ok() == Some(self.call_id.as_str())
            && req
                .headers
                .from_addr()
                .ok()
                .is_some_and(|f| f.tag() == Some(self.remote_tag.as_str()))
    }
}

/// A NOTIFY as received, with its parts read.
#[derive(Debug, Clone)]
pub struct Notify {
    pub request: Request,
    pub state: SubscriptionState,
    pub cseq: u32,
}

impl Notify {
    fn read(request: Request) -> Result<Notify> {
        let state = request
            .headers
            .get(&HeaderName::SubscriptionState)
            .context("a NOTIFY without Subscription-State (RFC 6665 §8.2.3)")?;
        let state = SubscriptionState::parse(state)?;
        let cseq = request.headers.cseq()?.seq;
        Ok(Notify {
            request,
            state,
            cseq,
        })
    }

    pub fn has_body(&self) -> bool {
        !self.request.body.is_empty()
    }

    /// The body text (lossy), for failure messages.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.request.body).into_owned()
    }

    /// The Event header's package.
    pub fn event(&self) -> Result<String> {
        Ok(self
            .request
            .headers
            .event()?
            .context("a NOTIFY without Event")?
            .package)
    }

    pub fn is_active(&self) -> bool {
        matches!(self.state, SubscriptionState::Active { .. })
    }

    pub fn is_pending(&self) -> bool {
        matches!(self.state, SubscriptionState::Pending { .. })
    }

    pub fn is_terminated(&self) -> bool {
        matches!(self.state, SubscriptionState::Terminated { .. })
    }

    /// The `reason` of a terminated state.
    pub fn reason(&self) -> Option<&str> {
        match &self.state {
            SubscriptionState::Terminated { reason, .. } => reason.as_deref(),
            _ => None,
        }
    }

    /// The `expires` of an active or pending state.
    pub fn expires(&self) -> Option<u32> {
        match self.state {
            SubscriptionState::Active { expires } | SubscriptionState::Pending { expires } => {
                Some(expires)
            }
            SubscriptionState::Terminated { .. } => None,
        }
    }

    /// The body as a PIDF document (Content-Type checked).
    pub fn pidf(&self) -> Result<PidfDocument> {
        self.expect_type(PIDF)?;
        PidfDocument::parse(&self.request.body, &XmlLimits::default())
            .with_context(|| format!("NOTIFY body is not PIDF:\n{}", self.body_text()))
    }

    /// The body as a watcher-info document (Content-Type checked).
    pub fn winfo(&self) -> Result<WatcherInfo> {
        self.expect_type(WATCHERINFO)?;
        WatcherInfo::parse(&self.request.body, &XmlLimits::default())
            .with_context(|| format!("NOTIFY body is not watcherinfo:\n{}", self.body_text()))
    }

    /// Is the body the document of a presentity nobody publishes for: one
    /// tuple, basic closed?
    pub fn is_offline(&self) -> Result<bool> {
        let doc = self.pidf()?;
        Ok(doc.tuples().len() == 1 && doc.tuples()[0].basic() == Some(BasicStatus::Closed))
    }

    fn expect_type(&self, want: &str) -> Result<()> {
        let got = self.request.headers.content_type();
        ensure!(
            got.as_deref() == Some(want),
            "NOTIFY Content-Type {got:?}, want {want}; body:\n{}",
            self.body_text()
        );
        Ok(())
    }
}

/// Tuple id -> basic status, the part of a document most tests compare.
pub fn basic_by_tuple(doc: &PidfDocument) -> BTreeMap<String, Option<BasicStatus>> {
    doc.tuples()
        .iter()
        .map(|t| (t.id().to_string(), t.basic()))
        .collect()
}

/// The XML of the tuple with this id, if the document has one (tuple
/// notes and extensions are kept inside it as the publisher wrote them).
pub fn tuple_xml(doc: &PidfDocument, tuple_id: &str) -> Option<String> {
    doc.tuples()
        .iter()
        .find(|t| t.id() == tuple_id)
        .map(|t| t.fragment().to_xml())
}

impl<T: Transport> Ua<T> {
    // ---- PUBLISH ---------------------------------------------------------

    /// PUBLISH for this agent's own AOR with `Event: presence`, no body and
    /// no SIP-If-Match; `expires` in an Expires header when given.
    pub fn publish_request(&mut self, expires: Option<u32>) -> Request {
        let aor = self.aor();
        let mut req = self.request(Method::Publish, &aor, &aor);
        req.headers.push(HeaderName::Event, PRESENCE);
        if let Some(e) = expires {
            req.headers.push(HeaderName::Expires, e.to_string());
        }
        req
    }

    /// Initial PUBLISH (RFC 3903 §4.1) of a PIDF body.
    pub fn publish(&mut self, pidf: &str, expires: u32) -> Result<Response> {
        let req = self.publish_request(Some(expires)).with_body(PIDF, pidf);
        self.transact(&req)
    }

    /// Refresh (§4.2): SIP-If-Match, no body.
    pub fn publish_refresh(&mut self, etag: &str, expires: u32) -> Result<Response> {
        let req = self
            .publish_request(Some(expires))
            .with_header(HeaderName::SipIfMatch, etag);
        self.transact(&req)
    }

    /// Modify (§4.3): SIP-If-Match and a new body.
    pub fn publish_modify(&mut self, etag: &str, pidf: &str, expires: u32) -> Result<Response> {
        let req = self
            .publish_request(Some(expires))
            .with_header(HeaderName::SipIfMatch, etag)
            .with_body(PIDF, pidf);
        self.transact(&req)
    }

    /// Remove (§4.4): SIP-If-Match with Expires 0.
    pub fn publish_remove(&mut self, etag: &str) -> Result<Response> {
        let req = self
            .publish_request(Some(0))
            .with_header(HeaderName::SipIfMatch, etag);
        self.transact(&req)
    }

    // ---- SUBSCRIBE -------------------------------------------------------

    /// An initial SUBSCRIBE to `presentity` for `event`, with this agent's
    /// Contact and an Accept naming the package's document type.
    pub fn subscribe_request(
        &mut self,
        presentity: &str,
        event: &str,
        expires: Option<u32>,
    ) -> Request {
        let mut req = self.request(Method::Subscribe, presentity, presentity);
        let h = &mut req.headers;
        h.push(HeaderName::Contact, format!("<{}>", self.contact_uri()));
        h.push(HeaderName::Event, event);
        h.push(HeaderName::Accept, accept_for(event));
        if let Some(e) = expires {
            h.push(HeaderName::Expires, e.to_string());
        }
        req
    }

    /// Sends an initial SUBSCRIBE and waits for its final response; on a
    /// 2xx also returns the dialog it created.
    pub fn subscribe(
        &mut self,
        presentity: &str,
        event: &str,
        expires: u32,
    ) -> Result<(Response, Option<Dialog>)> {
        let req = self.subscribe_request(presentity, event, Some(expires));
        self.subscribe_with(&req)
    }

    /// Sends a SUBSCRIBE the test built and waits for its final response;
    /// on a 2xx also returns the dialog it created.
    pub fn subscribe_with(&mut self, req: &Request) -> Result<(Response, Option<Dialog>)> {
        let resp = self.transact(req)?;
        if !(200..300).contains(&resp.status) {
            return Ok((resp, None));
        }
        let dialog = Dialog::from_exchange(req, &resp)?;
        Ok((resp, Some(dialog)))
    }

    /// A SUBSCRIBE inside `dialog` (refresh, or unsubscribe with 0): sent
    /// to Herald's Contact, To with Herald's tag, the next CSeq.
    pub fn subscribe_in_dialog_request(&mut self, dialog: &mut Dialog, expires: u32) -> Request {
        let target = dialog.remote_target.clone();
        let mut req = self.request(Method::Subscribe, &target, &dialog.presentity);
        dialog.cseq += 1;
        let h = &mut req.headers;
        h.set(
            HeaderName::To,
            format!("<{}>;tag={}", dialog.presentity, dialog.remote_tag),
        );
        h.set(
            HeaderName::From,
            format!("<{}>;tag={}", self.aor(), dialog.local_tag),
        );
        h.set(HeaderName::CallId, dialog.call_id.clone());
        h.set(HeaderName::CSeq, format!("{} SUBSCRIBE", dialog.cseq));
        h.push(HeaderName::Contact, format!("<{}>", self.contact_uri()));
        h.push(HeaderName::Event, dialog.event.clone());
        h.push(HeaderName::Accept, accept_for(&dialog.event));
        h.push(HeaderName::Expires, expires.to_string());
        req
    }

    /// Refreshes the subscription; returns the final response.
    pub fn refresh(&mut self, dialog: &mut Dialog, expires: u32) -> Result<Response> {
        let req = self.subscribe_in_dialog_request(dialog, expires);
        self.transact(&req)
    }

    /// Ends the subscription (in-dialog SUBSCRIBE with Expires 0).
    pub fn unsubscribe(&mut self, dialog: &mut Dialog) -> Result<Response> {
        self.refresh(dialog, 0)
    }

    /// Subscribes (expecting a 2xx) and takes the first NOTIFY, which
    /// every accepted subscription gets at once (RFC 6665 §4.2.1.2).
    pub fn watch(
        &mut self,
        presentity: &str,
        event: &str,
        expires: u32,
        within: Duration,
    ) -> Result<(Dialog, Notify)> {
        let (resp, dialog) = self.subscribe(presentity, event, expires)?;
        let Some(mut dialog) = dialog else {
            bail!(
                "SUBSCRIBE {event} to {presentity} got {} {}",
                resp.status,
                resp.reason
            );
        };
        let first = self
            .recv_notify(&mut dialog, within)
            .context("the first NOTIFY after an accepted SUBSCRIBE")?;
        Ok((dialog, first))
    }

    /// A fetch (RFC 6665 §4.4.3: SUBSCRIBE with Expires 0): expects a 2xx
    /// and the one NOTIFY it brings, which must be terminated.
    pub fn fetch(&mut self, presentity: &str, event: &str, within: Duration) -> Result<Notify> {
        let (dialog, notify) = self.watch(presentity, event, 0, within)?;
        ensure!(
            notify.is_terminated(),
            "a fetch's NOTIFY must be terminated, got {:?} (dialog {})",
            notify.state,
            dialog.call_id
        );
        Ok(notify)
    }

    // ---- NOTIFY ------------------------------------------------------------

    /// The next NOTIFY of `dialog`, answered 200. Fails if its CSeq is not
    /// above the previous one's.
    pub fn recv_notify(&mut self, dialog: &mut Dialog, within: Duration) -> Result<Notify> {
        self.recv_notify_answering(dialog, 200, within)
    }

    /// The next NOTIFY of `dialog`, answered with `status`.
    pub fn recv_notify_answering(
        &mut self,
        dialog: &mut Dialog,
        status: u16,
        within: Duration,
    ) -> Result<Notify> {
        Ok(self.recv_notify_from(dialog, status, within)?.0)
    }

    /// The next NOTIFY of `dialog`, answered with `status`, and the
    /// address it came from (which edge of a cluster sent it).
    pub fn recv_notify_from(
        &mut self,
        dialog: &mut Dialog,
        status: u16,
        within: Duration,
    ) -> Result<(Notify, SocketAddr)> {
        match self.try_recv_notify_from(dialog, status, within)? {
            Some(got) => Ok(got),
            None => {
                let what = format!(
                    "a NOTIFY of dialog {} ({} for {})",
                    dialog.call_id, dialog.event, dialog.presentity
                );
                let pending: Vec<String> = self
                    .inbox()
                    .map(|r| {
                        String::from_utf8_lossy(&r.raw)
                            .lines()
                            .next()
                            .unwrap_or("")
                            .to_string()
                    })
                    .collect();
                bail!(
                    "{} ({}) waited {within:?} for {what}; not taken: {pending:#?}",
                    self.aor(),
                    self.local_addr()
                );
            }
        }
    }

    /// As [`Ua::recv_notify_from`], with `None` when no NOTIFY of the
    /// dialog came within `within` (for watchers polled in a loop). A
    /// NOTIFY whose CSeq does not increase is still an error.
    pub fn try_recv_notify_from(
        &mut self,
        dialog: &mut Dialog,
        status: u16,
        within: Duration,
    ) -> Result<Option<(Notify, SocketAddr)>> {
        let Some(received) = self.try_next_where(within, |r| {
            r.request()
                .is_some_and(|r| r.method == Method::Notify && dialog.owns(r))
        })?
        else {
            return Ok(None);
        };
        let from = received.from;
        let req = received
            .request()
            .cloned()
            .context("matched a NOTIFY request")?;
        self.respond(&req, status)?;
        let notify = Notify::read(req)?;
        if let Some(last) = dialog.last_notify_cseq {
            ensure!(
                notify.cseq > last,
                "NOTIFY CSeq {} after {last}: CSeq must increase within a dialog (RFC 3261 §12.2.1.1)",
                notify.cseq
            );
        }
        dialog.last_notify_cseq = Some(notify.cseq);
        Ok(Some((notify, from)))
    }

    /// The next NOTIFY whatever dialog it belongs to, not answered (for
    /// tests that answer it themselves or never do).
    pub fn recv_any_notify(&mut self, within: Duration) -> Result<Request> {
        self.recv_request(&Method::Notify, within)
    }
}

fn accept_for(event: &str) -> &'static str {
    if event.eq_ignore_ascii_case(PRESENCE_WINFO) {
        WATCHERINFO
    } else {
        PIDF
    }
}
