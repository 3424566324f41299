//! Answers to requests that did not parse. RFC 3261 §8.2: a request with
//! enough of its head to address a response should get one (400, 413,
//! 505, ...); the rest is dropped.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use sip::{HeaderName, Response, Via};

/// Builds the error response from the raw head, reading only the fields a
/// response must echo. Returns it with the UDP address it goes to (from the
/// top Via, §18.2.2). `None` if the bytes are a response, or lack a Via,
/// From, To, Call-ID or CSeq line.
pub(crate) fn error_response(
    bytes: &[u8],
    status: u16,
    source: SocketAddr,
) -> Option<(Bytes, SocketAddr)> {
    let head_end = find_head_end(bytes).unwrap_or(bytes.len());
    let head = String::from_utf8_lossy(&bytes[..head_end]);
    let mut lines = head.lines().skip_while(|l| l.trim().is_empty());
    let start = lines.next()?;
    if start.starts_with("SIP/") {
        return None;
    }
    let mut vias = Vec::new();
    let (mut from, mut to, mut call_id, mut cseq) = (None, None, None, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match HeaderName::parse(name.trim()) {
            HeaderName::Via => vias.push(value),
            HeaderName::From => from = from.or(Some(value)),
            HeaderName::To => to = to.or(Some(value)),
            HeaderName::CallId => call_id = call_id.or(Some(value)),
            HeaderName::CSeq => cseq = cseq.or(Some(value)),
            _ => {}
        }
    }
    let (from, mut to, call_id, cseq) = (from?, to?, call_id?, cseq?);
    let top = Via::parse(vias.first()?.split(',').next()?).ok()?;
    if !to.contains(";tag=") {
        to.push_str(";tag=");
        to.push_str(&crate::core::local_tag());
    }
    let mut out = String::with_capacity(512);
    out.push_str(&format!(
        "SIP/2.0 {} {}\r\n",
        status,
        Response::reason_phrase(status)
    ));
    for (i, via) in vias.iter().enumerate() {
        if i == 0 {
            out.push_str(&format!("Via: {}\r\n", with_received(&top, source)));
        } else {
            out.push_str(&format!("Via: {via}\r\n"));
        }
    }
    out.push_str(&format!(
        "From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
    ));
    let target = if top.param("rport").is_some() {
        source
    } else {
        SocketAddr::new(source.ip(), top.port.unwrap_or(5060))
    };
    Some((Bytes::from(out), target))
}

fn with_received(via: &Via, source: SocketAddr) -> String {
    let mut via = via.clone();
    let host = via.host.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<IpAddr>().ok() != Some(source.ip()) || via.param("rport").is_some() {
        via.set_param("received", Some(&source.ip().to_string()));
    }
    if via.param("rport").is_some() {
        via.set_param("rport", Some(&source.port().to_string()));
    }
    via.to_string()
}

fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| bytes.windows(2).position(|w| w == b"\n\n"))
}
