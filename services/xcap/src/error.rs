//! Every way an XCAP request fails, and the one place each maps to its HTTP
//! status and, for 409, its RFC 4825 §11 error document.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use thiserror::Error;

use crate::selector::SelectorError;

pub(crate) const ERROR_MIME: &str = "application/xcap-error+xml";
const ERROR_NS: &str = "urn:ietf:params:xml:ns:xcap-error";

/// A request that cannot be served.
#[derive(Debug, Error)]
pub enum XcapError {
    #[error("bad request: {0}")]
    BadSelector(#[from] SelectorError),
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("not found")]
    NotFound,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The resource exists but never takes this method (`Allow` lists what it takes).
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("unsupported media type, expected {0}")]
    UnsupportedMediaType(&'static str),
    #[error("document larger than {0} bytes")]
    TooLarge(usize),
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl From<Conflict> for XcapError {
    fn from(c: Conflict) -> Self {
        XcapError::Conflict(c)
    }
}

impl From<store::StoreError> for XcapError {
    fn from(e: store::StoreError) -> Self {
        XcapError::Unavailable(e.to_string())
    }
}

/// The 409 causes of RFC 4825 §11.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    NotWellFormed,
    NotUtf8,
    NotXmlFrag,
    NotXmlAttValue,
    SchemaValidation(String),
    /// `ancestor`: the HTTP URI of the closest existing ancestor.
    NoParent {
        ancestor: Option<String>,
    },
    CannotInsert,
    CannotDelete,
    Uniqueness(Vec<Exists>),
    ConstraintFailure(String),
}

/// One value that is not unique: `field` names it (a node selector
/// relative to the document), `alt_values` are suggestions that would be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exists {
    pub field: String,
    pub alt_values: Vec<String>,
}

impl Conflict {
    /// The `application/xcap-error+xml` document for this conflict.
    pub fn document(&self) -> String {
        let inner = match self {
            Conflict::NotWellFormed => "<not-well-formed/>".to_string(),
            Conflict::NotUtf8 => "<not-utf-8/>".to_string(),
            Conflict::NotXmlFrag => "<not-xml-frag/>".to_string(),
            Conflict::NotXmlAttValue => "<not-xml-att-value/>".to_string(),
            Conflict::SchemaValidation(phrase) => {
                format!("<schema-validation-error phrase=\"{}\"/>", escape(phrase))
            }
            Conflict::NoParent { ancestor: None } => "<no-parent/>".to_string(),
            Conflict::NoParent {
                ancestor: Some(uri),
            } => format!(
                "<no-parent><ancestor>{}</ancestor></no-parent>",
                escape(uri)
            ),
            Conflict::CannotInsert => "<cannot-insert/>".to_string(),
            Conflict::CannotDelete => "<cannot-delete/>".to_string(),
            Conflict::Uniqueness(exists) => {
                let mut s = String::from("<uniqueness-failure>");
                for e in exists {
                    s.push_str(&format!("<exists field=\"{}\">", escape(&e.field)));
                    for alt in &e.alt_values {
                        s.push_str(&format!("<alt-value>{}</alt-value>", escape(alt)));
                    }
                    s.push_str("</exists>");
                }
                s.push_str("</uniqueness-failure>");
                s
            }
            Conflict::ConstraintFailure(phrase) => {
                format!("<constraint-failure phrase=\"{}\"/>", escape(phrase))
            }
        };
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-error xmlns=\"{ERROR_NS}\">{inner}</xcap-error>\n"
        )
    }
}

impl XcapError {
    pub fn status(&self) -> StatusCode {
        match self {
            XcapError::BadSelector(_) | XcapError::BadRequest(_) => StatusCode::BAD_REQUEST,
            XcapError::NotFound => StatusCode::NOT_FOUND,
            XcapError::Forbidden(_) => StatusCode::FORBIDDEN,
            XcapError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            XcapError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            XcapError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            XcapError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            XcapError::Conflict(_) => StatusCode::CONFLICT,
            XcapError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for XcapError {
    fn into_response(self) -> Response {
        let status = self.status();
        match self {
            XcapError::Conflict(c) => {
                (status, [(header::CONTENT_TYPE, ERROR_MIME)], c.document()).into_response()
            }
            XcapError::MethodNotAllowed(allow) => {
                let mut r = status.into_response();
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
                r
            }
            other => {
                if status.is_server_error() {
                    tracing::warn!(error = %other, "XCAP request failed");
                }
                (
                    status,
                    [(header::CONTENT_TYPE, "text/plain")],
                    other.to_string(),
                )
                    .into_response()
            }
        }
    }
}

/// Escapes text for an XML attribute value or element content.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}
