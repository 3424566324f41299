//! The client side of SIP Digest (RFC 3261 §22.2 with RFC 8760, qop=auth),
//! written apart from Herald's `auth` crate so tests check the server
//! against a second reading of the RFCs.

use anyhow::{bail, Context, Result};
use md5::Md5;
use sha2::{Digest, Sha256};
use sip::{HeaderName, Request, Response};

use crate::ua::{Transport, Ua};
use crate::{fresh_branch, random_hex, wait::secs};

/// One challenge of a 401 or 407.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    pub realm: String,
    pub nonce: String,
    /// As written (`SHA-256`, `MD5`); `MD5` when absent.
    pub algorithm: String,
    pub qop: Option<String>,
    pub stale: bool,
}

/// The challenges of a 401 (WWW-Authenticate) or 407
/// (Proxy-Authenticate), in the order sent.
pub fn challenges(resp: &Response) -> Vec<DigestChallenge> {
    let name = if resp.status == 407 {
        HeaderName::ProxyAuthenticate
    } else {
        HeaderName::WwwAuthenticate
    };
    resp.headers
        .get_all(&name)
        .filter_map(parse_challenge)
        .collect()
}

/// One WWW-Authenticate or Proxy-Authenticate value, read (HTTP as SIP).
pub fn parse_challenge(value: &str) -> Option<DigestChallenge> {
    let rest = value.trim().strip_prefix("Digest")?;
    let mut params = Vec::new();
    for part in split_params(rest) {
        let (name, value) = part.split_once('=')?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        params.push((name.trim().to_ascii_lowercase(), value.to_string()));
    }
    let get = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    Some(DigestChallenge {
        realm: get("realm")?,
        nonce: get("nonce")?,
        algorithm: get("algorithm").unwrap_or_else(|| "MD5".into()),
        qop: get("qop"),
        stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
    })
}

/// Splits on commas outside quotes.
fn split_params(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out.retain(|p| !p.is_empty());
    out
}

fn h(algorithm: &str, data: &str) -> String {
    if algorithm.eq_ignore_ascii_case("SHA-256") {
        hex::encode(Sha256::digest(data.as_bytes()))
    } else {
        hex::encode(Md5::digest(data.as_bytes()))
    }
}

/// An Authorization value answering `challenge` for `method` `uri`.
pub fn authorization(
    challenge: &DigestChallenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
) -> String {
    let alg = &challenge.algorithm;
    let cnonce = random_hex(16);
    let nc = format!("{nc:08x}");
    let ha1 = h(alg, &format!("{username}:{}:{password}", challenge.realm));
    let ha2 = h(alg, &format!("{method}:{uri}"));
    let response = h(
        alg,
        &format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", challenge.nonce),
    );
    format!(
        "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm={alg}, qop=auth, nc={nc}, cnonce=\"{cnonce}\"",
        challenge.realm, challenge.nonce
    )
}

impl<T: Transport> Ua<T> {
    /// `req` again as a new transaction (fresh branch, next CSeq), with
    /// `authorization` in the header a `status` challenge asks for.
    pub fn with_credentials(&mut self, req: &Request, status: u16, authorization: &str) -> Request {
        let mut again = req.clone();
        let cseq = self.next_cseq();
        let h = &mut again.headers;
        h.set(HeaderName::Via, self.via(&fresh_branch()));
        h.set(HeaderName::CSeq, format!("{cseq} {}", again.method));
        let h = &mut again.headers;
        h.remove(&HeaderName::Authorization);
        h.remove(&HeaderName::ProxyAuthorization);
        let name = if status == 407 {
            HeaderName::ProxyAuthorization
        } else {
            HeaderName::Authorization
        };
        h.push(name, authorization);
        again
    }

    /// Sends `req`; if challenged, answers the challenge for `algorithm`
    /// with this agent's user name and `password` and sends it again.
    /// Returns the request finally sent (for dialogs) and its response.
    pub fn transact_digest(
        &mut self,
        req: &Request,
        password: &str,
        algorithm: &str,
    ) -> Result<(Request, Response)> {
        let first = self.transact(req)?;
        if first.status != 401 && first.status != 407 {
            return Ok((req.clone(), first));
        }
        let challenge = challenges(&first)
            .into_iter()
            .find(|c| c.algorithm.eq_ignore_ascii_case(algorithm))
            .with_context(|| format!("no {algorithm} challenge in {first:?}"))?;
        if challenge.qop.as_deref() != Some("auth") {
            bail!("challenge without qop=auth: {challenge:?}");
        }
        let user = self.user().to_string();
        let value = authorization(
            &challenge,
            &user,
            password,
            req.method.as_str(),
            &req.uri.to_string(),
            1,
        );
        let again = self.with_credentials(req, first.status, &value);
        let resp = self.transact_within(&again, secs(5))?;
        Ok((again, resp))
    }
}
