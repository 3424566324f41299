//! The location service: REGISTER processing (RFC 3261 §10.3) with
//! RFC 5626 instance/reg-id bindings.
//!
//! [`apply`] is the rule set as a pure function of the current bindings;
//! [`Registrar`] runs it against the store with optimistic concurrency.

use std::sync::Arc;

use api::{ContactSpec, RegisterContacts, RegisterRequest, RegistrarError};
use sip::{Aor, Uri};
use store::{Binding, Store, StoreError, UnixTime};

/// Registrar limits, in seconds and counts.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// Below this a non-zero expiry gets 423 (RFC 3261 §10.3 step 7).
    pub min_expires: u32,
    /// Longer requested expiries are shortened to this.
    pub max_expires: u32,
    /// Used when neither the contact nor the request gives an expiry.
    pub default_expires: u32,
    /// Bindings one AOR may hold (403 past it).
    pub max_contacts: usize,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 10,
        }
    }
}

/// Applies one REGISTER to `current` (the unexpired bindings) and returns
/// the new set, or why the whole request fails (nothing is applied then).
pub fn apply(
    current: &[Binding],
    request: &RegisterRequest,
    config: &RegistrarConfig,
    now: UnixTime,
) -> Result<Vec<Binding>, RegistrarError> {
    match &request.contacts {
        RegisterContacts::Fetch => Ok(current.to_vec()),
        RegisterContacts::RemoveAll => {
            // §10.3 step 6: `*` is only valid with Expires: 0.
            if request.expires != Some(0) {
                return Err(RegistrarError::InvalidStar);
            }
            // A binding from the same Call-ID with a CSeq not lower than
            // this request's means this request is stale: abort.
            if current
                .iter()
                .any(|b| b.call_id == request.call_id && request.cseq <= b.cseq)
            {
                return Err(RegistrarError::OutOfOrder);
            }
            Ok(Vec::new())
        }
        RegisterContacts::Update(contacts) => {
            let mut next = current.to_vec();
            for spec in contacts {
                let expires = spec
                    .expires
                    .or(request.expires)
                    .unwrap_or(config.default_expires);
                if expires != 0 && expires < config.min_expires {
                    return Err(RegistrarError::IntervalTooBrief {
                        min_expires: config.min_expires,
                    });
                }
                let expires = expires.min(config.max_expires);
                let existing = next.iter().position(|b| same_binding(b, spec));
                if let Some(i) = existing {
                    let b = &next[i];
                    if b.call_id == request.call_id && request.cseq <= b.cseq {
                        return Err(RegistrarError::OutOfOrder);
                    }
                    if expires == 0 {
                        next.remove(i);
                    } else {
                        next[i] = binding(spec, request, now, expires);
                    }
                } else if expires != 0 {
                    next.push(binding(spec, request, now, expires));
                }
            }
            if next.len() > config.max_contacts {
                return Err(RegistrarError::TooManyContacts);
            }
            Ok(next)
        }
    }
}

fn binding(spec: &ContactSpec, request: &RegisterRequest, now: UnixTime, expires: u32) -> Binding {
    Binding {
        contact: spec.uri.clone(),
        expires_at: now.plus_secs(u64::from(expires)),
        q: spec.q,
        call_id: request.call_id.clone(),
        cseq: request.cseq,
        instance: spec.instance.clone(),
        reg_id: spec.reg_id,
        flow: request.flow.clone(),
    }
}

/// RFC 5626 §6: with an instance and reg-id, the pair names the binding
/// (the URI may change as the device moves). Otherwise URIs compare per
/// RFC 3261 §19.1.4.
fn same_binding(b: &Binding, spec: &ContactSpec) -> bool {
    match (&b.instance, b.reg_id, &spec.instance, spec.reg_id) {
        (Some(bi), Some(br), Some(si), Some(sr)) => bi == si && br == sr,
        _ => same_uri(&b.contact, &spec.uri),
    }
}

/// URI equivalence (RFC 3261 §19.1.4): scheme and host case-insensitive,
/// user and password case-sensitive, parameters compared by name
/// case-insensitively whatever their order. Falls back to string equality
/// for URIs that do not parse.
pub fn same_uri(a: &str, b: &str) -> bool {
    match (Uri::parse(a), Uri::parse(b)) {
        (Ok(x), Ok(y)) => {
            let params = |u: &Uri| {
                let mut p: Vec<(String, Option<String>)> = u
                    .params
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.to_ascii_lowercase(),
                            v.as_ref().map(|v| v.to_ascii_lowercase()),
                        )
                    })
                    .collect();
                p.sort();
                p
            };
            x.scheme == y.scheme
                && x.user == y.user
                && x.password == y.password
                && x.host.eq_ignore_ascii_case(&y.host)
                && x.port == y.port
                && params(&x) == params(&y)
                && x.headers == y.headers
        }
        _ => a == b,
    }
}

/// The registrar over a store.
pub struct Registrar {
    store: Arc<dyn Store>,
    config: RegistrarConfig,
}

impl Registrar {
    pub fn new(store: Arc<dyn Store>, config: RegistrarConfig) -> Self {
        Registrar { store, config }
    }

    /// Applies `request`, retrying when another writer got there first.
    pub async fn register(
        &self,
        request: &RegisterRequest,
    ) -> Result<Vec<Binding>, RegistrarError> {
        const ATTEMPTS: usize = 8;
        for _ in 0..ATTEMPTS {
            let now = UnixTime::now();
            let set = self.store.bindings(&request.aor, now).await?;
            let next = apply(&set.bindings, request, &self.config, now)?;
            if matches!(request.contacts, RegisterContacts::Fetch) {
                return Ok(next);
            }
            match self
                .store
                .replace_bindings(&request.aor, set.version, next.clone())
                .await
            {
                Ok(()) => {
                    let added = next.len() as i64 - set.bindings.len() as i64;
                    if added != 0 {
                        telemetry::metrics().registrations.add(added, &[]);
                    }
                    return Ok(next);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Unavailable("registration kept conflicting".into()).into())
    }

    /// The unexpired bindings of `aor`, highest q first (RFC 3261 §16.6
    /// ordering; equal q keeps registration order).
    pub async fn lookup(&self, aor: &Aor) -> Result<Vec<Binding>, StoreError> {
        let mut bindings = self.store.bindings(aor, UnixTime::now()).await?.bindings;
        bindings.sort_by_key(|b| std::cmp::Reverse(b.q.unwrap_or(1000)));
        Ok(bindings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::FlowToken;

    fn req(
        contacts: RegisterContacts,
        expires: Option<u32>,
        call_id: &str,
        cseq: u32,
    ) -> RegisterRequest {
        RegisterRequest {
            aor: "sip:alice@example.com".parse().unwrap(),
            contacts,
            expires,
            call_id: call_id.into(),
            cseq,
            flow: FlowToken("udp:1".into()),
            authenticated: None,
        }
    }

    fn spec(uri: &str, expires: Option<u32>) -> ContactSpec {
        ContactSpec {
            uri: uri.into(),
            expires,
            q: None,
            instance: None,
            reg_id: None,
        }
    }

    const NOW: UnixTime = UnixTime(1_000);

    #[test]
    fn adds_refreshes_and_removes_one() {
        let cfg = RegistrarConfig::default();
        let r1 = req(
            RegisterContacts::Update(vec![
                spec("sip:a@1.1.1.1", None),
                spec("sip:a@2.2.2.2", Some(120)),
            ]),
            Some(600),
            "c",
            1,
        );
        let set = apply(&[], &r1, &cfg, NOW).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set[0].expires_at, UnixTime(1_600));
        assert_eq!(set[1].expires_at, UnixTime(1_120));
        // Host case does not make a new binding.
        let r2 = req(
            RegisterContacts::Update(vec![spec("sip:a@1.1.1.1", Some(0))]),
            None,
            "c",
            2,
        );
        let set = apply(&set, &r2, &cfg, NOW).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set[0].contact, "sip:a@2.2.2.2");
    }

    #[test]
    fn too_brief_is_423_and_long_is_shortened() {
        let cfg = RegistrarConfig::default();
        let r = req(
            RegisterContacts::Update(vec![spec("sip:a@h", Some(10))]),
            None,
            "c",
            1,
        );
        assert_eq!(
            apply(&[], &r, &cfg, NOW),
            Err(RegistrarError::IntervalTooBrief { min_expires: 60 })
        );
        let r = req(
            RegisterContacts::Update(vec![spec("sip:a@h", None)]),
            Some(1_000_000),
            "c",
            1,
        );
        assert_eq!(
            apply(&[], &r, &cfg, NOW).unwrap()[0].expires_at,
            UnixTime(1_000 + 3_600)
        );
    }

    #[test]
    fn same_call_id_needs_higher_cseq() {
        let cfg = RegistrarConfig::default();
        let r = req(
            RegisterContacts::Update(vec![spec("sip:a@h", None)]),
            None,
            "c",
            5,
        );
        let set = apply(&[], &r, &cfg, NOW).unwrap();
        let stale = req(
            RegisterContacts::Update(vec![spec("sip:a@h", None)]),
            None,
            "c",
            5,
        );
        assert_eq!(
            apply(&set, &stale, &cfg, NOW),
            Err(RegistrarError::OutOfOrder)
        );
        let other_call = req(
            RegisterContacts::Update(vec![spec("sip:a@h", None)]),
            None,
            "d",
            1,
        );
        assert!(apply(&set, &other_call, &cfg, NOW).is_ok());
    }

    #[test]
    fn star_needs_expires_zero() {
        let cfg = RegistrarConfig::default();
        let r = req(
            RegisterContacts::Update(vec![spec("sip:a@h", None)]),
            None,
            "c",
            1,
        );
        let set = apply(&[], &r, &cfg, NOW).unwrap();
        let bad = req(RegisterContacts::RemoveAll, Some(60), "x", 1);
        assert_eq!(
            apply(&set, &bad, &cfg, NOW),
            Err(RegistrarError::InvalidStar)
        );
        let good = req(RegisterContacts::RemoveAll, Some(0), "x", 1);
        assert!(apply(&set, &good, &cfg, NOW).unwrap().is_empty());
    }

    #[test]
    fn instance_and_reg_id_name_the_binding() {
        let cfg = RegistrarConfig::default();
        let mut s = spec("sip:a@1.1.1.1;ob", None);
        s.instance = Some("<urn:uuid:1>".into());
        s.reg_id = Some(1);
        let set = apply(
            &[],
            &req(RegisterContacts::Update(vec![s.clone()]), None, "c", 1),
            &cfg,
            NOW,
        )
        .unwrap();
        // The device moved: new URI, same instance and reg-id, replaces.
        s.uri = "sip:a@9.9.9.9;ob".into();
        let set = apply(
            &set,
            &req(RegisterContacts::Update(vec![s]), None, "c", 2),
            &cfg,
            NOW,
        )
        .unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set[0].contact, "sip:a@9.9.9.9;ob");
        assert_eq!(set[0].reg_id, Some(1));
    }

    #[test]
    fn contact_limit() {
        let cfg = RegistrarConfig {
            max_contacts: 1,
            ..Default::default()
        };
        let r = req(
            RegisterContacts::Update(vec![spec("sip:a@1", None), spec("sip:a@2", None)]),
            None,
            "c",
            1,
        );
        assert_eq!(
            apply(&[], &r, &cfg, NOW),
            Err(RegistrarError::TooManyContacts)
        );
    }
}
