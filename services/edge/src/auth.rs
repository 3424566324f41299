//! Digest authentication of requests (RFC 3261 §22 with RFC 8760), when a
//! realm is configured: REGISTER, PUBLISH, SUBSCRIBE and MESSAGE must
//! prove who sends them, and may only act for that identity. OPTIONS (and
//! what is refused anyway) stays open.
//!
//! Status choice: REGISTER is challenged with 401 and WWW-Authenticate
//! (a registrar is a UAS, §22.2); PUBLISH, SUBSCRIBE and MESSAGE with 407
//! and Proxy-Authenticate (§22.3), as Kamailio and OpenSIPS presence
//! deployments do and clients expect. Credentials are taken from either
//! Authorization or Proxy-Authorization whatever the method, since
//! clients differ in which they answer a challenge with.

use auth::{Denied, DigestRequest};
use sip::{Aor, HeaderName, Method, Request, Response, Scheme};

use crate::flow::Flow;
use crate::Edge;

/// Does `method` need credentials when a realm is set?
fn requires_auth(method: &Method) -> bool {
    matches!(
        method,
        Method::Register | Method::Publish | Method::Subscribe | Method::Message
    )
}

impl Edge {
    /// The identity a request proved, `None` when no authentication is
    /// configured (or the method needs none), or the response refusing it:
    /// a challenge, 403 for acting as someone else or while backed off,
    /// 400 for unreadable credentials.
    pub(crate) async fn authenticate(
        &self,
        request: &Request,
        flow: &Flow,
    ) -> Result<Option<Aor>, Response> {
        let Some(authenticator) = self.authenticator.get() else {
            return Ok(None);
        };
        if !requires_auth(&request.method) {
            return Ok(None);
        }
        let claimed = self
            .claimed_identity(request)
            .map_err(|status| self.reply(request, status))?;
        let values: Vec<&str> = request
            .headers
            .get_all(&HeaderName::Authorization)
            .chain(request.headers.get_all(&HeaderName::ProxyAuthorization))
            .collect();
        let uri = request.uri.to_string();
        let digest = DigestRequest {
            method: request.method.as_str(),
            uri: &uri,
            authorization: &values,
            source: flow.remote.ip(),
            domain: claimed.domain(),
        };
        let proxy = request.method != Method::Register;
        let user = match authenticator.verify(&digest).await {
            Ok(user) => user,
            Err(denied) => return Err(self.refuse(request, &denied, proxy)),
        };
        // RFC 3261 §22.1 leaves it to policy what an identity may do; ours:
        // register, publish and send only as yourself.
        if user != claimed {
            tracing::info!(
                user = %user,
                claimed = %claimed,
                method = request.method.as_str(),
                "authenticated user acting for another identity"
            );
            return Err(self.reply(request, 403));
        }
        Ok(Some(user))
    }

    /// Whom the request acts for: the To AOR of a REGISTER (§10.3 step
    /// 6), the presentity of a PUBLISH (its Request-URI), the From AOR of
    /// a SUBSCRIBE (the watcher) or MESSAGE (the sender).
    fn claimed_identity(&self, request: &Request) -> Result<Aor, u16> {
        let uri = match request.method {
            Method::Register => request.headers.to_addr().map_err(|_| 400u16)?.uri,
            Method::Publish => request.uri.clone(),
            _ => request.headers.from_addr().map_err(|_| 400u16)?.uri,
        };
        if uri.scheme == Scheme::Tel {
            return Err(if request.method == Method::Publish {
                416
            } else {
                400
            });
        }
        let aor = Aor::from_uri(&uri).map_err(|_| 400u16)?;
        if aor.user().is_none() {
            return Err(if request.method == Method::Publish {
                404
            } else {
                400
            });
        }
        Ok(aor)
    }

    fn refuse(&self, request: &Request, denied: &Denied, proxy: bool) -> Response {
        let mut r = self.reply(request, denied.status(proxy));
        match denied {
            Denied::Challenge(challenge) => {
                let name = if proxy {
                    HeaderName::ProxyAuthenticate
                } else {
                    HeaderName::WwwAuthenticate
                };
                for value in challenge.header_values() {
                    r.headers.push(name.clone(), value);
                }
            }
            Denied::BadRequest(reason) => {
                tracing::debug!(%reason, "unreadable credentials");
            }
            Denied::BackedOff { .. } | Denied::Store(_) => {}
        }
        if let Some(secs) = denied.retry_after() {
            r.headers.push(HeaderName::RetryAfter, secs.to_string());
        }
        r
    }
}
