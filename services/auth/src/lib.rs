//! Digest authentication for SIP (RFC 3261 §22 with RFC 8760) and HTTP
//! (RFC 7616), transport-neutral so the SIP edge and the XCAP server share
//! it.
//!
//! Owns: reading Digest credentials ([`DigestCredentials`]), challenges
//! ([`Challenge`], SHA-256 then MD5 as RFC 8760 §2.4 orders them, qop=auth),
//! stateless nonces any edge with the shared secret accepts, nonce-count
//! replay protection, and the password-guessing back-off (per source and
//! per user from a source). [`Authenticator::verify`] is the one entry
//! point: a request's method, URI, credentials and source in, the
//! authenticated AOR or why not out.
//!
//! Credentials are HA1 hashes in the [`store::Store`] (never passwords);
//! [`credential`] computes them for `herald user add`.
//!
//! From HTTP (XCAP, RFC 7616), a handler passes the request target and
//! the Authorization header, and renders a refusal itself:
//!
//! ```
//! # async fn handle(auth: &auth::Authenticator, authorization: Option<&str>) {
//! use auth::{Denied, DigestRequest};
//! let values: Vec<&str> = authorization.into_iter().collect();
//! let request = DigestRequest {
//!     method: "GET",
//!     uri: "/xcap-root/pres-rules/users/sip:alice@example.com/index",
//!     authorization: &values,
//!     source: "192.0.2.1".parse().unwrap(),
//!     domain: "example.com",
//! };
//! match auth.verify(&request).await {
//!     Ok(user) => { /* serve `user`'s documents only */ let _ = user; }
//!     Err(denied) => {
//!         let status = denied.status(false); // 401, 400, 403 or 503
//!         if let Denied::Challenge(challenge) = &denied {
//!             for value in challenge.header_values() {
//!                 // append `WWW-Authenticate: {value}`
//!                 let _ = value;
//!             }
//!         }
//!         let _ = (status, denied.retry_after()); // Retry-After when Some
//!     }
//! }
//! # }
//! ```
//!
//! Must never: tell an unknown user from a known one by its answer. An
//! unknown user is challenged the same way and a wrong answer for one is
//! computed against a dummy HA1, down the same path as a known user's.

mod credentials;
mod guard;
mod nonce;
mod replay;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use md5::Md5;
use sha2::{Digest, Sha256};
use sip::Aor;
use store::{Credential, Store, StoreError};
use thiserror::Error;

pub use credentials::{CredentialsError, DigestCredentials};

use credentials::quote;
use guard::{Guard, GuardLimits};
use nonce::{NonceKey, NonceState};
use replay::NonceCounts;

/// A digest algorithm (RFC 7616 §3.3, RFC 8760 §2.3). The `-sess`
/// variants are not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// Offered in this order: the stronger first (RFC 8760 §2.4).
    pub const PREFERENCE: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Md5];

    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    pub fn from_token(s: &str) -> Option<Algorithm> {
        if s.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// `H(data)`, lower-case hex.
    pub fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }

    fn ha1_of(self, c: &Credential) -> &str {
        match self {
            Algorithm::Md5 => &c.ha1_md5,
            Algorithm::Sha256 => &c.ha1_sha256,
        }
    }
}

/// The stored form of a password: HA1 for both algorithms
/// (RFC 7616 §3.4.2: `H(username ":" realm ":" password)`).
pub fn credential(username: &str, realm: &str, password: &str) -> Credential {
    let a1 = format!("{username}:{realm}:{password}");
    Credential {
        realm: realm.to_string(),
        username: username.to_string(),
        ha1_md5: Algorithm::Md5.hash(&a1),
        ha1_sha256: Algorithm::Sha256.hash(&a1),
    }
}

/// The `response` of RFC 7616 §3.4.1 with qop=auth:
/// `H(HA1:nonce:nc:cnonce:qop:H(method:uri))`.
pub fn response(
    algorithm: Algorithm,
    ha1: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = algorithm.hash(&format!("{method}:{uri}"));
    algorithm.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
}

/// Settings of an [`Authenticator`].
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The realm challenged with and looked up in the store.
    pub realm: String,
    /// Key of the nonce MAC, shared by every edge; `None` makes a random
    /// one (nonces then work on this process only).
    pub nonce_secret: Option<Vec<u8>>,
    /// How long a nonce is good for; after it the client is challenged
    /// again with stale=true.
    pub nonce_lifetime: Duration,
    /// Failed answers within `failure_window` before a back-off.
    pub max_failures: u32,
    pub failure_window: Duration,
    /// How long a source (or a user from it) is refused once past the limit.
    pub backoff: Duration,
    /// Nonces whose counts are remembered, and sources/users tracked for
    /// failures, at most.
    pub capacity: usize,
}

impl AuthConfig {
    pub fn new(realm: impl Into<String>) -> Self {
        AuthConfig {
            realm: realm.into(),
            nonce_secret: None,
            nonce_lifetime: Duration::from_secs(300),
            max_failures: 5,
            failure_window: Duration::from_secs(60),
            backoff: Duration::from_secs(300),
            capacity: 100_000,
        }
    }
}

/// A request to authenticate, whatever carried it.
#[derive(Debug, Clone, Copy)]
pub struct DigestRequest<'a> {
    /// `REGISTER`, `GET`, ...
    pub method: &'a str,
    /// The Request-URI (SIP) or request target (HTTP) as received; the
    /// credentials' `uri` must equal it (RFC 7616 §3.4.6).
    pub uri: &'a str,
    /// Every Authorization (or Proxy-Authorization) value; the one for our
    /// realm is used.
    pub authorization: &'a [&'a str],
    pub source: IpAddr,
    /// The domain a username without `@` belongs to: `alice` answering for
    /// `example.com` is `sip:alice@example.com`.
    pub domain: &'a str,
}

/// A challenge to send: one WWW-Authenticate (or Proxy-Authenticate)
/// value per algorithm, from [`Challenge::header_values`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    /// The answer was right but its nonce too old (RFC 7616 §3.3).
    pub stale: bool,
}

impl Challenge {
    /// The header values, SHA-256 first (RFC 8760 §2.4: one challenge per
    /// algorithm, most preferred first).
    pub fn header_values(&self) -> Vec<String> {
        Algorithm::PREFERENCE
            .iter()
            .map(|a| {
                let mut v = format!(
                    "Digest realm={}, nonce={}, algorithm={}, qop=\"auth\"",
                    quote(&self.realm),
                    quote(&self.nonce),
                    a.token()
                );
                if self.stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect()
    }
}

/// Why a request is not authenticated. Each maps to one status in
/// [`Denied::status`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Denied {
    /// No credentials for our realm, a wrong or replayed answer, or a
    /// stale nonce: challenge (401 or 407).
    #[error("authentication required")]
    Challenge(Challenge),
    /// Credentials that cannot be read, or for another URI (400).
    #[error("bad credentials: {0}")]
    BadRequest(String),
    /// Too many failed answers from this source, or for this user from
    /// it: refused without a challenge until the back-off ends (403 with
    /// Retry-After: "authorization will not help", RFC 3261 §21.4.4).
    #[error("too many failed attempts")]
    BackedOff { retry_after: Duration },
    /// The credential store cannot be read (503).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Denied {
    /// The status for a challenge as a UAS (401) or as a proxy
    /// (`proxy`, 407), and for the other causes.
    pub fn status(&self, proxy: bool) -> u16 {
        match self {
            Denied::Challenge(_) if proxy => 407,
            Denied::Challenge(_) => 401,
            Denied::BadRequest(_) => 400,
            Denied::BackedOff { .. } => 403,
            Denied::Store(_) => 503,
        }
    }

    /// Retry-After seconds for a back-off (rounded up), or for the store.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Denied::BackedOff { retry_after } => {
                Some(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0))
            }
            Denied::Store(_) => Some(5),
            _ => None,
        }
    }
}

/// Checks Digest answers against credentials in the store. One per
/// process, shared by its transports.
pub struct Authenticator {
    config: AuthConfig,
    store: Arc<dyn Store>,
    nonces: NonceKey,
    counts: Mutex<NonceCounts>,
    guard: Mutex<Guard>,
    /// Stands in for an unknown user, so its wrong answer costs what a
    /// known user's does.
    dummy: Credential,
}

impl Authenticator {
    pub fn new(config: AuthConfig, store: Arc<dyn Store>) -> Self {
        let secret = match &config.nonce_secret {
            Some(s) => s.clone(),
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        let dummy_password = hex::encode(rand::random::<[u8; 16]>());
        Authenticator {
            nonces: NonceKey::new(secret, &config.realm),
            counts: Mutex::new(NonceCounts::new(config.capacity)),
            guard: Mutex::new(Guard::new(GuardLimits {
                max_failures: config.max_failures.max(1),
                window: config.failure_window,
                backoff: config.backoff,
                capacity: config.capacity,
            })),
            dummy: credential("-", &config.realm, &dummy_password),
            store,
            config,
        }
    }

    pub fn realm(&self) -> &str {
        &self.config.realm
    }

    /// A fresh challenge (for a request that brought no credentials).
    pub fn challenge(&self) -> Challenge {
        self.challenge_at(unix_now(), false)
    }

    fn challenge_at(&self, now: u64, stale: bool) -> Challenge {
        Challenge {
            realm: self.config.realm.clone(),
            nonce: self.nonces.mint(now),
            stale,
        }
    }

    /// Authenticates `request`: the AOR its credentials prove, or why not.
    pub async fn verify(&self, request: &DigestRequest<'_>) -> Result<Aor, Denied> {
        self.verify_at(request, unix_now(), Instant::now()).await
    }

    async fn verify_at(
        &self,
        request: &DigestRequest<'_>,
        now: u64,
        clock: Instant,
    ) -> Result<Aor, Denied> {
        if let Some(left) = self.lock_guard().source_blocked(request.source, clock) {
            return Err(Denied::BackedOff { retry_after: left });
        }
        let ours =
            request
                .authorization
                .iter()
                .find_map(|value| match DigestCredentials::parse(value) {
                    Ok(c) if c.realm == self.config.realm => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                });
        let creds = match ours {
            None => return Err(Denied::Challenge(self.challenge_at(now, false))),
            Some(Err(e)) => return Err(Denied::BadRequest(e.to_string())),
            Some(Ok(c)) => c,
        };
        // qop=auth only (RFC 8760 §2.5 requires qop; we offer auth): any
        // other answer is met with a new challenge.
        let (Some(algorithm), Some(qop), Some(nc), Some(cnonce)) =
            (creds.algorithm, &creds.qop, creds.nc, &creds.cnonce)
        else {
            return Err(Denied::Challenge(self.challenge_at(now, false)));
        };
        if !qop.eq_ignore_ascii_case("auth") {
            return Err(Denied::Challenge(self.challenge_at(now, false)));
        }
        if !creds.uri.eq_ignore_ascii_case(request.uri) {
            return Err(Denied::BadRequest("digest uri is not the request's".into()));
        }
        let aor = user_aor(&creds.username, request.domain);
        // Unknown and unparsable users are counted under what they sent,
        // the same as known ones.
        let user_key = aor
            .as_ref()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| creds.username.clone());
        if let Some(left) = self.lock_guard().blocked(&user_key, request.source, clock) {
            return Err(Denied::BackedOff { retry_after: left });
        }
        let nonce = self
            .nonces
            .check(&creds.nonce, now, self.config.nonce_lifetime.as_secs());
        let stored = match &aor {
            Some(aor) => self.store.credentials(aor).await?,
            None => Vec::new(),
        };
        let known = stored
            .into_iter()
            .find(|c| c.realm == self.config.realm && c.username == creds.username);
        let is_known = known.is_some();
        // The dummy is cloned as a found credential was by the store, so
        // both paths allocate alike.
        let candidate = known.unwrap_or_else(|| self.dummy.clone());
        let ha1 = algorithm.ha1_of(&candidate);
        let nc_text = format!("{nc:08x}");
        let expected = response(
            algorithm,
            ha1,
            &creds.nonce,
            &nc_text,
            cnonce,
            request.method,
            &creds.uri,
        );
        let right = constant_time_eq(
            expected.as_bytes(),
            creds.response.to_ascii_lowercase().as_bytes(),
        ) && is_known;
        if !right {
            let backed_off = self.lock_guard().fail(&user_key, request.source, clock);
            return Err(match backed_off {
                Some(retry_after) => Denied::BackedOff { retry_after },
                None => Denied::Challenge(self.challenge_at(now, false)),
            });
        }
        // A right answer to an old nonce, or to one this realm's secret did
        // not sign (minted before a restart with a random secret): the
        // client knows the password, so it gets a new nonce with stale=true
        // and retries without asking its user (RFC 7616 §3.3). A wrong
        // answer counted as a failure above whatever the nonce.
        let NonceState::Fresh { issued } = nonce else {
            return Err(Denied::Challenge(self.challenge_at(now, true)));
        };
        let expired_before = now.saturating_sub(self.config.nonce_lifetime.as_secs());
        let fresh_count = self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .advance(&creds.nonce, issued, nc, expired_before);
        if !fresh_count {
            tracing::debug!(user = user_key, nc, "replayed nonce count");
            return Err(Denied::Challenge(self.challenge_at(now, false)));
        }
        self.lock_guard().succeed(&user_key, request.source);
        // `right` implies a known user, whose AOR parsed.
        aor.ok_or_else(|| Denied::BadRequest("bad username".into()))
    }

    fn lock_guard(&self) -> std::sync::MutexGuard<'_, Guard> {
        self.guard.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The AOR a digest username stands for: `user@host` as is, a bare user
/// in `domain`.
pub fn user_aor(username: &str, domain: &str) -> Option<Aor> {
    if username.is_empty() {
        return None;
    }
    let text = if username.contains('@') {
        format!("sip:{username}")
    } else {
        format!("sip:{username}@{domain}")
    };
    text.parse::<Aor>().ok().filter(|a| a.user().is_some())
}

/// The digest username of an AOR: its user part.
pub fn username_of(aor: &Aor) -> Option<&str> {
    aor.user()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
