//! The registrar front (RFC 3261 §10.3): REGISTER in, typed request to
//! the messaging role, 200 with the current bindings out.

use std::time::SystemTime;

use api::{ContactSpec, RegisterContacts, RegisterRequest, RegistrarError};
use sip::{Aor, ContactList, HeaderName, Request, Response, Scheme};
use store::UnixTime;

use crate::flow::Flow;
use crate::Edge;

impl Edge {
    pub(crate) async fn register(
        &self,
        request: &Request,
        flow: &Flow,
        authenticated: Option<Aor>,
    ) -> Response {
        match self.read_register(request, flow, authenticated) {
            Ok(register) => {
                let Some(services) = self.services.get() else {
                    return self.reply(request, 503);
                };
                match services.messaging.register(register).await {
                    Ok(bindings) => {
                        let mut r = self.reply(request, 200);
                        let now = UnixTime::now();
                        for b in &bindings {
                            let mut value =
                                format!("<{}>;expires={}", b.contact, now.secs_until(b.expires_at));
                            if let Some(q) = b.q {
                                value.push_str(&format!(";q={}", format_q(q)));
                            }
                            if let Some(instance) = &b.instance {
                                value.push_str(&format!(";+sip.instance=\"{instance}\""));
                            }
                            if let Some(reg_id) = b.reg_id {
                                value.push_str(&format!(";reg-id={reg_id}"));
                            }
                            r.headers.push(HeaderName::Contact, value);
                        }
                        // §10.3 step 8: a Date header helps clients without
                        // a clock.
                        r.headers.push(
                            HeaderName::Other("Date".into()),
                            httpdate::fmt_http_date(SystemTime::now()),
                        );
                        r
                    }
                    Err(e) => self.registrar_error(request, &e),
                }
            }
            Err(status) => self.reply(request, status),
        }
    }

    fn registrar_error(&self, request: &Request, e: &RegistrarError) -> Response {
        let mut r = self.reply(request, e.status());
        match e {
            RegistrarError::IntervalTooBrief { min_expires } => {
                r.headers
                    .push(HeaderName::MinExpires, min_expires.to_string());
            }
            RegistrarError::Store(_) => {
                r.headers.push(HeaderName::RetryAfter, "5");
            }
            _ => {}
        }
        r
    }

    /// Reads a REGISTER into the typed request, or the status to refuse it.
    fn read_register(
        &self,
        request: &Request,
        flow: &Flow,
        authenticated: Option<Aor>,
    ) -> Result<RegisterRequest, u16> {
        let to = request.headers.to_addr().map_err(|_| 400u16)?;
        // §10.3 step 5: the To header must be a valid AOR (a SIP or SIPS
        // URI); a tel: AOR cannot be registered (RFC 4475 unksm2).
        if to.uri.scheme == Scheme::Tel {
            return Err(400);
        }
        let aor = Aor::from_uri(&to.uri).map_err(|_| 400u16)?;
        // §10.3 step 1: only domains we are responsible for.
        if !self.serves_domain(aor.domain()) || !self.serves_domain(&request.uri.host) {
            return Err(404);
        }
        let expires = request.headers.expires().map_err(|_| 400u16)?;
        let contacts = match request.headers.contacts().map_err(|_| 400u16)? {
            None => RegisterContacts::Fetch,
            Some(ContactList::Star) => RegisterContacts::RemoveAll,
            Some(ContactList::List(list)) => {
                let mut specs = Vec::with_capacity(list.len());
                for c in list {
                    specs.push(ContactSpec {
                        uri: c.0.uri.to_string(),
                        expires: c.expires(),
                        q: c.q().map_err(|_| 400u16)?,
                        instance: c.sip_instance().map(str::to_string),
                        reg_id: c.reg_id(),
                    });
                }
                RegisterContacts::Update(specs)
            }
        };
        let cseq = request.headers.cseq().map_err(|_| 400u16)?;
        Ok(RegisterRequest {
            aor,
            contacts,
            expires,
            call_id: request.headers.call_id().map_err(|_| 400u16)?.to_string(),
            cseq: cseq.seq,
            flow: flow.token.clone(),
            authenticated,
        })
    }
}

/// q thousandths as the RFC writes them (`0.7`, `1.0`).
fn format_q(q: u16) -> String {
    let s = format!("{}.{:03}", q / 1000, q % 1000);
    let trimmed = s.trim_end_matches('0');
    if trimmed.ends_with('.') {
        format!("{trimmed}0")
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn q_values_print_as_written() {
        assert_eq!(super::format_q(1000), "1.0");
        assert_eq!(super::format_q(700), "0.7");
        assert_eq!(super::format_q(125), "0.125");
        assert_eq!(super::format_q(0), "0.0");
    }
}
