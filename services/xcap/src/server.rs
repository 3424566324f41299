//! The HTTP side: one handler for everything under the XCAP root. It
//! parses the XCAP URI (RFC 4825 §6), authenticates, checks the user's
//! access, applies the conditional headers to the document's entity tag,
//! and reads or changes the document with compare-and-set in the store.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use headers::{ETag, HeaderMapExt, IfMatch, IfNoneMatch};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use sip::Aor;
use store::{DocumentBase, StoreError, StoredDocument};

use crate::document::{self, Bindings};
use crate::error::{Conflict, XcapError};
use crate::selector::{self, NodeSelector, Terminal};
use crate::usage::{self, AppUsage};
use crate::{AuthRequest, DocumentChange, XcapState, ATTRIBUTE_MIME, ELEMENT_MIME};

/// How often a change is retried when another one to the same document
/// landed between read and write.
const WRITE_ATTEMPTS: usize = 5;

/// Characters escaped when a node selector is put back into a URI.
const SELECTOR_ESCAPE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^');

/// The router: every path under `state.config.root` is XCAP, anything
/// else 404. Tests drive it with `tower::ServiceExt::oneshot`.
pub fn app(state: XcapState) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// The parts of an XCAP URI (§6).
struct XcapUri {
    usage: &'static AppUsage,
    tree: Tree,
    /// The document path below the user's or the global directory.
    doc_path: String,
    /// The document URI as the client wrote it (for no-parent ancestors).
    raw_document: String,
    selector: Option<NodeSelector>,
    prefixes: Vec<(String, String)>,
}

enum Tree {
    /// `users/<xui>`: the XUI, percent-decoded.
    User(String),
    Global,
}

fn parse_uri(root: &str, path: &str, query: Option<&str>) -> Result<XcapUri, XcapError> {
    let rest = path
        .strip_prefix(root)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or(XcapError::NotFound)?;
    let (doc_part, raw_selector) = match rest.split_once("/~~/") {
        Some((d, s)) => (d, Some(s)),
        None if rest.ends_with("/~~") => return Err(XcapError::BadRequest("empty node selector")),
        None => (rest, None),
    };
    let segments: Vec<String> = doc_part
        .split('/')
        .map(|s| {
            percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| XcapError::BadRequest("path is not UTF-8"))
        })
        .collect::<Result<_, _>>()?;
    if segments
        .iter()
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(XcapError::NotFound);
    }
    let usage = segments
        .first()
        .and_then(|auid| usage::usage(auid))
        .ok_or(XcapError::NotFound)?;
    let (tree, doc_segments) = match segments.get(1).map(String::as_str) {
        Some("users") if segments.len() >= 4 => (Tree::User(segments[2].clone()), &segments[3..]),
        Some("global") if segments.len() >= 3 => (Tree::Global, &segments[2..]),
        // Directories are not documents (no xcap-directory here).
        _ => return Err(XcapError::NotFound),
    };
    let selector = raw_selector
        .map(|raw| {
            let decoded = percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| XcapError::BadRequest("node selector is not UTF-8"))?;
            selector::parse(&decoded).map_err(XcapError::from)
        })
        .transpose()?;
    let prefixes = match query {
        Some(q) => {
            let decoded = percent_decode_str(q)
                .decode_utf8()
                .map_err(|_| XcapError::BadRequest("query is not UTF-8"))?;
            selector::parse_xmlns_query(&decoded)?
        }
        None => Vec::new(),
    };
    Ok(XcapUri {
        usage,
        tree,
        doc_path: doc_segments.join("/"),
        raw_document: format!("{root}/{doc_part}"),
        selector,
        prefixes,
    })
}

async fn handle(State(state): State<XcapState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let uri = match parse_uri(&state.config.root, parts.uri.path(), parts.uri.query()) {
        Ok(uri) => uri,
        Err(e) => return e.into_response(),
    };
    let auth_request = AuthRequest {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        peer,
    };
    let user = match state.auth.authenticate(&auth_request).await {
        Ok(user) => user,
        Err(rejection) => {
            let mut response = rejection.status.into_response();
            response.headers_mut().extend(rejection.headers);
            return response;
        }
    };
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    let request = XcapRequest {
        state: &state,
        uri,
        user,
        method: parts.method,
        headers: parts.headers,
        host,
    };
    request.serve(body).await.unwrap_or_else(|e| {
        let etag = e.1;
        let mut response = e.0.into_response();
        if let Some(etag) = etag {
            set_etag(&mut response, &etag);
        }
        response
    })
}

struct XcapRequest<'a> {
    state: &'a XcapState,
    uri: XcapUri,
    user: Aor,
    method: Method,
    headers: HeaderMap,
    host: String,
}

/// An error and the current entity tag of the document, if it exists
/// (responses about an existing document carry its tag, errors included).
type Failure = (XcapError, Option<String>);

impl XcapRequest<'_> {
    async fn serve(self, body: Body) -> Result<Response, Failure> {
        let owner = match &self.uri.tree {
            Tree::Global => return self.serve_global(),
            Tree::User(xui) => {
                // The XUI is a SIP URI; compare canonical AORs (§6.2).
                let owner: Aor = xui
                    .parse()
                    .map_err(|_| (XcapError::Forbidden("not your documents"), None))?;
                if owner != self.user {
                    return Err((XcapError::Forbidden("not your documents"), None));
                }
                owner
            }
        };
        if self.uri.usage.read_only {
            return Err((XcapError::NotFound, None));
        }
        let key = format!(
            "{}/users/{}/{}",
            self.uri.usage.auid, owner, self.uri.doc_path
        );
        match self.method {
            Method::GET => self.get(&owner, &key).await,
            Method::PUT => {
                if matches!(
                    self.uri.selector.as_ref().and_then(|s| s.terminal.as_ref()),
                    Some(Terminal::Namespaces)
                ) {
                    return Err((XcapError::MethodNotAllowed("GET"), None));
                }
                let body = self.read_body(body).await?;
                self.write(&owner, &key, Some(body)).await
            }
            Method::DELETE => {
                if matches!(
                    self.uri.selector.as_ref().and_then(|s| s.terminal.as_ref()),
                    Some(Terminal::Namespaces)
                ) {
                    return Err((XcapError::MethodNotAllowed("GET"), None));
                }
                self.write(&owner, &key, None).await
            }
            _ => Err((XcapError::MethodNotAllowed("GET, PUT, DELETE"), None)),
        }
    }

    /// The global tree: only the generated xcap-caps document exists; no
    /// global document is writable by users.
    fn serve_global(&self) -> Result<Response, Failure> {
        let usage = self.uri.usage;
        if usage.auid != "xcap-caps" {
            return match self.method {
                Method::GET => Err((XcapError::NotFound, None)),
                _ => Err((XcapError::Forbidden("global documents are read-only"), None)),
            };
        }
        if self.method != Method::GET {
            return Err((XcapError::MethodNotAllowed("GET"), None));
        }
        if self.uri.doc_path != "index" {
            return Err((XcapError::NotFound, None));
        }
        let text = usage::caps_document();
        let etag = content_etag(&text);
        self.read_response(&text, Some(&etag), usage.mime, &etag)
    }

    async fn read_body(&self, body: Body) -> Result<String, Failure> {
        let max = self.state.config.max_document_size;
        let too_large = || (XcapError::TooLarge(max), None);
        let declared = self
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        let bytes: Bytes = axum::body::to_bytes(body, max)
            .await
            .map_err(|_| too_large())?;
        String::from_utf8(bytes.to_vec()).map_err(|_| (Conflict::NotUtf8.into(), None))
    }

    fn content_type(&self) -> Option<&str> {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim())
    }

    fn bindings(&self) -> Bindings<'_> {
        Bindings {
            default_ns: self.uri.usage.default_ns,
            prefixes: &self.uri.prefixes,
        }
    }

    async fn get(&self, owner: &Aor, key: &str) -> Result<Response, Failure> {
        let doc = self
            .state
            .store
            .document(owner, key)
            .await
            .map_err(|e| (e.into(), None))?
            .ok_or((XcapError::NotFound, None))?;
        let etag = Some(doc.etag.clone());
        let text = std::str::from_utf8(&doc.content).map_err(|_| {
            (
                XcapError::Unavailable("stored document is not UTF-8".into()),
                None,
            )
        })?;
        match &self.uri.selector {
            None => self.read_response(text, Some(&doc.etag), self.uri.usage.mime, &doc.etag),
            Some(sel) => {
                let (body, mime) =
                    document::get(text, sel, &self.bindings()).map_err(|e| (e, etag.clone()))?;
                self.read_response(&body, Some(&doc.etag), mime, &doc.etag)
            }
        }
    }

    fn read_response(
        &self,
        body: &str,
        current: Option<&str>,
        mime: &'static str,
        etag: &str,
    ) -> Result<Response, Failure> {
        self.check_preconditions(current, true)
            .map_err(|e| (e, Some(etag.to_string())))?;
        if let Some(not_modified) = self.not_modified(etag) {
            return Ok(not_modified);
        }
        let mut response = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, mime)],
            body.to_string(),
        )
            .into_response();
        set_etag(&mut response, etag);
        Ok(response)
    }

    /// GET with an If-None-Match that matches: 304 (RFC 7232 §3.2).
    fn not_modified(&self, etag: &str) -> Option<Response> {
        let inm = self.headers.typed_try_get::<IfNoneMatch>().ok()??;
        let tag = wire_etag(etag)?;
        if inm.precondition_passes(&tag) {
            return None;
        }
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        set_etag(&mut response, etag);
        Some(response)
    }

    /// If-Match and, for writes, If-None-Match against the document's
    /// current entity tag (`None`: no document). GETs leave a matching
    /// If-None-Match to [`Self::not_modified`].
    fn check_preconditions(&self, current: Option<&str>, is_read: bool) -> Result<(), XcapError> {
        // Typed parsing with `typed_try_get`: the Option<TypedHeader>
        // extractor reports an absent If-Match as present (STACK.md).
        let if_match = self
            .headers
            .typed_try_get::<IfMatch>()
            .map_err(|_| XcapError::BadRequest("invalid If-Match"))?;
        let if_none_match = self
            .headers
            .typed_try_get::<IfNoneMatch>()
            .map_err(|_| XcapError::BadRequest("invalid If-None-Match"))?;
        let tag = current.and_then(wire_etag);
        if let Some(if_match) = if_match {
            match &tag {
                Some(tag) if if_match.precondition_passes(tag) => {}
                _ => return Err(XcapError::PreconditionFailed),
            }
        }
        if let (Some(inm), Some(tag), false) = (if_none_match, &tag, is_read) {
            if !inm.precondition_passes(tag) {
                return Err(XcapError::PreconditionFailed);
            }
        }
        Ok(())
    }

    /// PUT (`body` is `Some`) or DELETE of the document or of a part of it:
    /// read, check, change, compare-and-set; again if it raced another
    /// change.
    async fn write(
        &self,
        owner: &Aor,
        key: &str,
        body: Option<String>,
    ) -> Result<Response, Failure> {
        self.check_content_type(body.is_some())
            .map_err(|e| (e, None))?;
        let _turn = self.state.write_lock(key).lock().await;
        for _ in 0..WRITE_ATTEMPTS {
            let current = self
                .state
                .store
                .document(owner, key)
                .await
                .map_err(|e| (e.into(), None))?;
            let etag = current.as_ref().map(|d| d.etag.clone());
            let fail = |e: XcapError| (e, etag.clone());
            self.check_preconditions(etag.as_deref(), false)
                .map_err(fail)?;
            let current_text = match &current {
                Some(doc) => Some(std::str::from_utf8(&doc.content).map_err(|_| {
                    fail(XcapError::Unavailable(
                        "stored document is not UTF-8".into(),
                    ))
                })?),
                None => None,
            };
            let (new_text, created) = self.apply(current_text, body.as_deref()).map_err(fail)?;
            let base = match &etag {
                Some(e) => DocumentBase::Etag(e),
                None => DocumentBase::Absent,
            };
            let result = match &new_text {
                Some(text) => {
                    if text.len() > self.state.config.max_document_size {
                        return Err(fail(XcapError::TooLarge(
                            self.state.config.max_document_size,
                        )));
                    }
                    let doc = document::parse(text).map_err(|c| fail(c.into()))?;
                    self.uri.usage.validate(&doc).map_err(|c| fail(c.into()))?;
                    let new_etag = new_etag();
                    self.state
                        .store
                        .put_document(
                            owner,
                            key,
                            base,
                            StoredDocument {
                                etag: new_etag.clone(),
                                content: text.clone().into_bytes(),
                            },
                        )
                        .await
                        .map(|()| Some(new_etag))
                }
                None => match &etag {
                    Some(e) => self
                        .state
                        .store
                        .delete_document(owner, key, e)
                        .await
                        .map(|()| None),
                    None => return Err(fail(XcapError::NotFound)),
                },
            };
            let new_etag = match result {
                Ok(new_etag) => new_etag,
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(fail(e.into())),
            };
            self.state
                .observer
                .document_changed(DocumentChange {
                    user: owner.clone(),
                    auid: self.uri.usage.auid.to_string(),
                    selector: key.to_string(),
                    previous_etag: etag,
                    new_etag: new_etag.clone(),
                })
                .await;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut response = status.into_response();
            if let Some(tag) = &new_etag {
                set_etag(&mut response, tag);
            }
            return Ok(response);
        }
        Err((
            XcapError::Unavailable("the document kept changing; try again".into()),
            None,
        ))
    }

    /// §8.2.1/§8.2.3/§8.2.4: each PUT names its body's type.
    fn check_content_type(&self, is_put: bool) -> Result<(), XcapError> {
        if !is_put {
            return Ok(());
        }
        let expected = match self.uri.selector.as_ref().map(|s| &s.terminal) {
            None => self.uri.usage.mime,
            Some(None) => ELEMENT_MIME,
            Some(Some(Terminal::Attribute(_))) => ATTRIBUTE_MIME,
            Some(Some(Terminal::Namespaces)) => return Err(XcapError::MethodNotAllowed("GET")),
        };
        if self.content_type() == Some(expected) {
            Ok(())
        } else {
            Err(XcapError::UnsupportedMediaType(expected))
        }
    }

    /// The new document text (`None`: the document is deleted) and
    /// whether the addressed resource was created.
    fn apply(
        &self,
        current: Option<&str>,
        body: Option<&str>,
    ) -> Result<(Option<String>, bool), XcapError> {
        let ancestor = |sel: Option<&NodeSelector>| self.ancestor_uri(sel, current.is_some());
        let Some(sel) = &self.uri.selector else {
            return Ok(match body {
                Some(body) => (Some(body.to_string()), current.is_none()),
                None => (None, false),
            });
        };
        let Some(text) = current else {
            return match body {
                // §8.2.3: no document to put the node into.
                Some(_) => Err(Conflict::NoParent {
                    ancestor: Some(ancestor(None)),
                }
                .into()),
                None => Err(XcapError::NotFound),
            };
        };
        let bindings = self.bindings();
        let element_sel = NodeSelector {
            steps: sel.steps.clone(),
            terminal: None,
        };
        match (&sel.terminal, body) {
            (None, Some(body)) => {
                let changed = document::put_element(text, sel, &bindings, body, &ancestor)?;
                Ok((Some(changed.text), changed.created))
            }
            (None, None) => Ok((Some(document::delete_element(text, sel, &bindings)?), false)),
            (Some(Terminal::Attribute(name)), Some(value)) => {
                let changed =
                    document::put_attribute(text, &element_sel, name, &bindings, value, &ancestor)?;
                Ok((Some(changed.text), changed.created))
            }
            (Some(Terminal::Attribute(name)), None) => Ok((
                Some(document::delete_attribute(
                    text,
                    &element_sel,
                    name,
                    &bindings,
                )?),
                false,
            )),
            (Some(Terminal::Namespaces), _) => Err(XcapError::MethodNotAllowed("GET")),
        }
    }

    /// The HTTP URI of the document or of an element in it (no-parent's
    /// ancestor, §11.4); when the document does not exist, its directory.
    fn ancestor_uri(&self, sel: Option<&NodeSelector>, document_exists: bool) -> String {
        let document = format!("http://{}{}", self.host, self.uri.raw_document);
        match sel {
            Some(sel) => format!(
                "{document}/~~/{}",
                utf8_percent_encode(&sel.to_string(), SELECTOR_ESCAPE)
            ),
            None if document_exists => document,
            None => match document.rsplit_once('/') {
                Some((dir, _)) => format!("{dir}/"),
                None => document,
            },
        }
    }
}

fn new_etag() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A stable tag for generated content (xcap-caps): FNV-1a of the text.
fn content_etag(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn wire_etag(etag: &str) -> Option<ETag> {
    format!("\"{etag}\"").parse().ok()
}

fn set_etag(response: &mut Response, etag: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        response.headers_mut().insert(header::ETAG, v);
    }
}
