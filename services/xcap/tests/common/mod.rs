//! A test harness around `xcap::app`: a Basic authenticator with a fixed
//! user table, an observer that records changes, and a request helper.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use sip::Aor;
use tower::ServiceExt;
use xcap::{
    AuthRejection, AuthRequest, DocumentChange, XcapAuth, XcapConfig, XcapObserver, XcapState,
};

pub const ALICE: &str = "sip:alice@example.com";
pub const BOB: &str = "sip:bob@example.com";

/// Basic over a fixed table; 401 with a challenge otherwise.
pub struct TestAuth {
    users: HashMap<String, (String, Aor)>,
}

impl TestAuth {
    pub fn new() -> TestAuth {
        let mut users = HashMap::new();
        users.insert("alice".into(), ("secret-a".into(), ALICE.parse().unwrap()));
        users.insert("bob".into(), ("secret-b".into(), BOB.parse().unwrap()));
        TestAuth { users }
    }
}

#[async_trait]
impl XcapAuth for TestAuth {
    async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Aor, AuthRejection> {
        let credentials = request
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok());
        if let Some((user, password)) = credentials.as_deref().and_then(|c| c.split_once(':')) {
            if let Some((expected, aor)) = self.users.get(user) {
                if expected == password {
                    return Ok(aor.clone());
                }
            }
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"example.com\""),
        );
        Err(AuthRejection {
            status: StatusCode::UNAUTHORIZED,
            headers,
        })
    }
}

#[derive(Default)]
pub struct Recorder {
    pub changes: Mutex<Vec<DocumentChange>>,
}

#[async_trait]
impl XcapObserver for Recorder {
    async fn document_changed(&self, change: DocumentChange) {
        self.changes.lock().unwrap().push(change);
    }
}

pub struct Xcap {
    pub app: axum::Router,
    pub recorder: Arc<Recorder>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn etag(&self) -> String {
        self.headers
            .get(header::ETAG)
            .expect("an ETag")
            .to_str()
            .unwrap()
            .to_string()
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

impl Xcap {
    pub fn new() -> Xcap {
        Xcap::with_config(XcapConfig::default())
    }

    pub fn with_config(config: XcapConfig) -> Xcap {
        let recorder = Arc::new(Recorder::default());
        let state = XcapState::new(
            config,
            Arc::new(store::MemoryStore::new()),
            Arc::new(TestAuth::new()),
            recorder.clone(),
        );
        Xcap {
            app: xcap::app(state),
            recorder,
        }
    }

    /// Sends one request as `user` ("alice", "bob" or "" for none).
    pub async fn send(
        &self,
        method: &str,
        uri: &str,
        user: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        let password = match user {
            "alice" => "secret-a",
            "bob" => "secret-b",
            _ => "",
        };
        if !user.is_empty() {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            request = request.header(header::AUTHORIZATION, format!("Basic {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .app
            .clone()
            .oneshot(request.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send("GET", uri, "alice", &[], "").await
    }

    pub async fn put(&self, uri: &str, content_type: &str, body: &str) -> Reply {
        self.send("PUT", uri, "alice", &[("content-type", content_type)], body)
            .await
    }

    pub async fn delete(&self, uri: &str) -> Reply {
        self.send("DELETE", uri, "alice", &[], "").await
    }
}

pub fn vector(name: &str) -> String {
    let path = format!(
        "{}/../../../shared/vectors/presence-docs/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub const RL_DOC: &str = "/xcap-root/resource-lists/users/sip:alice@example.com/index";
pub const RL_MIME: &str = "application/resource-lists+xml";
pub const EL_MIME: &str = "application/xcap-el+xml";
pub const ATT_MIME: &str = "application/xcap-att+xml";

pub const SMALL_LIST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="friends">
    <entry uri="sip:bob@example.com"><display-name>Bob</display-name></entry>
    <entry uri="sip:carol@example.com"/>
  </list>
</resource-lists>
"#;

/// Percent-encodes what a URI cannot carry raw in a node selector.
pub fn sel(s: &str) -> String {
    s.replace('"', "%22")
        .replace('[', "%5B")
        .replace(']', "%5D")
        .replace(' ', "%20")
}
