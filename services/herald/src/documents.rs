//! The seams between XCAP and the other roles, as the binary wires them:
//! presence reads a user's documents from the store ([`StoreDocuments`]),
//! the XCAP server tells presence about every change ([`TellPresence`]),
//! and XCAP requests are authenticated with the SIP credentials
//! ([`DigestXcap`], RFC 7616 through the same `auth` crate as the edge).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use api::{DocumentChange, Presence};
use async_trait::async_trait;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use presence::PresenceDocuments;
use sip::Aor;
use store::{Store, StoreError};
use xcap::{AuthRejection, AuthRequest, XcapAuth, XcapObserver};

/// Document paths relative to the XCAP root, as the XCAP server keys them
/// (`<auid>/users/<aor>/<document>`).
fn path(auid: &str, user: &Aor, document: &str) -> String {
    format!("{auid}/users/{user}/{document}")
}

/// The documents an xcap-diff subscription without a list watches. The
/// store keeps documents by path and has no listing per user yet, so these
/// are the documents clients create under their usages' well-known names
/// (RFC 5025 §9.6, OMA, RFC 4826 §3.6 and §4.6, RFC 4827 §4.7).
const WELL_KNOWN: &[(&str, &str)] = &[
    ("pres-rules", "index"),
    ("org.openmobilealliance.pres-rules", "pres-rules"),
    ("resource-lists", "index"),
    ("rls-services", "index"),
    ("pidf-manipulation", "index"),
];

/// Presence's view of the XCAP store.
pub(crate) struct StoreDocuments {
    store: Arc<dyn Store>,
    xcap_root: String,
}

impl StoreDocuments {
    pub(crate) fn new(store: Arc<dyn Store>, xcap_root: String) -> StoreDocuments {
        StoreDocuments { store, xcap_root }
    }

    async fn text(&self, path: &str, user: &Aor) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .document(user, path)
            .await?
            .map(|d| String::from_utf8_lossy(&d.content).into_owned()))
    }
}

#[async_trait]
impl PresenceDocuments for StoreDocuments {
    async fn pres_rules(&self, presentity: &Aor) -> Result<Option<String>, StoreError> {
        // Both names of the usage (RFC 5025 and OMA); the IETF one first.
        for (auid, document) in &WELL_KNOWN[..2] {
            if let Some(text) = self
                .text(&path(auid, presentity, document), presentity)
                .await?
            {
                return Ok(Some(text));
            }
        }
        Ok(None)
    }

    async fn pidf_manipulation(&self, presentity: &Aor) -> Result<Option<String>, StoreError> {
        self.text(&path("pidf-manipulation", presentity, "index"), presentity)
            .await
    }

    async fn documents(&self, user: &Aor) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for (auid, document) in WELL_KNOWN {
            let path = path(auid, user, document);
            if let Some(d) = self.store.document(user, &path).await? {
                out.push((path, d.etag));
            }
        }
        Ok(out)
    }

    fn xcap_root(&self) -> String {
        self.xcap_root.clone()
    }
}

/// Tells presence (in process, or the owning shard over gRPC) about each
/// stored change, so it re-authorizes watchers and NOTIFYs xcap-diff
/// subscribers at once.
pub(crate) struct TellPresence(pub(crate) Arc<dyn Presence>);

#[async_trait]
impl XcapObserver for TellPresence {
    async fn document_changed(&self, change: DocumentChange) {
        let user = change.user.clone();
        if let Err(e) = self.0.documents_changed(change).await {
            // The document is stored; presence picks it up when it next
            // loads the presentity (restart, owner change).
            tracing::warn!(%user, error = %e, "presence not told of a document change");
        }
    }
}

/// HTTP Digest (RFC 7616) for XCAP with the users and realm of SIP.
pub(crate) struct DigestXcap(pub(crate) Arc<auth::Authenticator>);

#[async_trait]
impl XcapAuth for DigestXcap {
    async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Aor, AuthRejection> {
        let values: Vec<&str> = request
            .headers
            .get_all(axum::http::header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        // A username without a domain belongs to the XUI's domain (what
        // XCAP clients send), else to the realm.
        let target = request
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let xui_domain = xui_domain(request.uri.path());
        let digest = auth::DigestRequest {
            method: request.method.as_str(),
            uri: target,
            authorization: &values,
            source: request
                .peer
                .map(|p| p.ip())
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            domain: xui_domain.as_deref().unwrap_or(self.0.realm()),
        };
        match self.0.verify(&digest).await {
            Ok(user) => Ok(user),
            Err(denied) => {
                let mut headers = HeaderMap::new();
                if let auth::Denied::Challenge(challenge) = &denied {
                    for value in challenge.header_values() {
                        if let Ok(v) = HeaderValue::from_str(&value) {
                            headers.append(axum::http::header::WWW_AUTHENTICATE, v);
                        }
                    }
                }
                if let Some(secs) = denied.retry_after() {
                    headers.insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
                }
                let status =
                    StatusCode::from_u16(denied.status(false)).unwrap_or(StatusCode::UNAUTHORIZED);
                Err(AuthRejection { status, headers })
            }
        }
    }
}

/// The domain of the XUI in `.../users/<xui>/...`, if the path has one.
fn xui_domain(path: &str) -> Option<String> {
    let xui = path.split('/').skip_while(|s| *s != "users").nth(1)?;
    let xui = percent_encoding::percent_decode_str(xui)
        .decode_utf8()
        .ok()?;
    xui.parse::<Aor>().ok().map(|a| a.domain().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xui_domain_is_read_from_the_path() {
        assert_eq!(
            xui_domain("/xcap-root/pres-rules/users/sip:alice@example.com/index").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            xui_domain("/xcap-root/pres-rules/users/sip%3Abob%40example.org/index").as_deref(),
            Some("example.org")
        );
        assert_eq!(xui_domain("/xcap-root/xcap-caps/global/index"), None);
    }

    #[tokio::test]
    async fn presence_reads_both_names_of_pres_rules() {
        let store: Arc<dyn Store> = Arc::new(store::MemoryStore::new());
        let alice: Aor = "sip:alice@example.com".parse().unwrap();
        let docs = StoreDocuments::new(store.clone(), "http://x/xcap-root/".into());
        assert_eq!(docs.pres_rules(&alice).await.unwrap(), None);
        let oma = path("org.openmobilealliance.pres-rules", &alice, "pres-rules");
        store
            .put_document(
                &alice,
                &oma,
                store::DocumentBase::Absent,
                store::StoredDocument {
                    etag: "e1".into(),
                    content: b"<ruleset/>".to_vec(),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            docs.pres_rules(&alice).await.unwrap().as_deref(),
            Some("<ruleset/>")
        );
        assert_eq!(
            docs.documents(&alice).await.unwrap(),
            vec![(oma, "e1".to_string())]
        );
    }
}
