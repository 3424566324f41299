//! XCAP over a real socket: `herald xcap` with documents in a real Redis
//! (they outlive the process), and `herald all` serving XCAP beside SIP.

use std::net::SocketAddr;

use herald_tests::HttpReply;

use testkit::{Herald, RedisServer};

fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpReply {
    let mut r = herald_tests::http(addr, method, path, headers, body).expect("an HTTP answer");
    // Header names compared case-blind.
    r.head = r.head.to_ascii_lowercase();
    r
}

const DOC: &str = "/xcap-root/resource-lists/users/sip:alice@example.com/index";
const LIST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="friends"><entry uri="sip:bob@example.com"/></list>
</resource-lists>
"#;

#[test]
fn xcap_role_keeps_documents_in_redis() {
    let redis = RedisServer::start().unwrap();
    let url = redis.url();
    let args = ["xcap", "--redis", &url, "--xcap-listen", "127.0.0.1:0"];
    let herald = Herald::start(&args).unwrap();
    let addr = herald.xcap.expect("an XCAP address");

    let ct = [("Content-Type", "application/resource-lists+xml")];
    let r = http(addr, "PUT", DOC, &ct, LIST);
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.head.contains("\r\netag: \""), "{}", r.head);
    let entry = format!(
        "{DOC}/~~/resource-lists/list%5B@name=%22friends%22%5D/entry%5B@uri=%22sip:carol@example.com%22%5D"
    );
    let el = [("Content-Type", "application/xcap-el+xml")];
    let r = http(
        addr,
        "PUT",
        &entry,
        &el,
        r#"<entry uri="sip:carol@example.com"/>"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = http(addr, "GET", &entry, &[], "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, r#"<entry uri="sip:carol@example.com"/>"#);
    assert!(r.head.contains("content-type: application/xcap-el+xml"));
    let r = http(addr, "PUT", DOC, &[("Content-Type", "text/plain")], LIST);
    assert_eq!(r.status, 415);
    drop(herald);

    // A new process on the same Redis serves the same document.
    let herald = Herald::start(&args).unwrap();
    let addr = herald.xcap.unwrap();
    let r = http(addr, "GET", DOC, &[], "");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("sip:carol@example.com"), "{}", r.body);
    let caps = http(addr, "GET", "/xcap-root/xcap-caps/global/index", &[], "");
    assert_eq!(caps.status, 200);
    assert!(caps.body.contains("<auid>pres-rules</auid>"));
}

#[test]
fn all_serves_xcap_beside_sip() {
    let herald = Herald::start(&["all"]).unwrap();
    let addr = herald.xcap.expect("`all` serves XCAP by default");
    let r = http(addr, "GET", DOC, &[], "");
    assert_eq!(r.status, 404);
    let r = http(
        addr,
        "PUT",
        DOC,
        &[("Content-Type", "application/resource-lists+xml")],
        "<resource-lists",
    );
    assert_eq!(r.status, 409);
    assert!(r.body.contains("<not-well-formed/>"), "{}", r.body);
    // SIP still answers.
    let mut ua = herald.udp_ua("alice").unwrap();
    let ok = ua.register(60).unwrap();
    assert_eq!(ok.status, 200);
}
