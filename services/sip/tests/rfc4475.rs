//! RFC 4475 torture messages against `sip::parse`, with the verdicts of
//! `shared/vectors/rfc4475/manifest.json`. Every message is also framed as
//! a stream, serialized back, and read through the typed accessors, each
//! under `catch_unwind`: nothing may panic.
//!
//! Where this parser's outcome differs from the manifest's `check`, the
//! case is listed in `DIVERGES` with the RFC text that decides it.

use std::collections::BTreeMap;
use std::panic::catch_unwind;
use std::path::PathBuf;

use serde_json::Value;
use sip::{
    error_response, frame_stream, parse, Aor, CodecError, ContactList, Frame, HeaderName, Limits,
    Message, Method,
};

fn vectors() -> PathBuf {
    // The repository is cloned next to a `shared/` folder.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/rfc4475")
}

fn manifest() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(vectors().join("manifest.json")).expect("manifest.json");
    let v: Value = serde_json::from_str(&text).expect("manifest is JSON");
    v["messages"]
        .as_object()
        .expect("messages object")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(vectors().join("messages").join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Manifest `parse_ok` cases this parser rejects, the status the rejection
/// maps to, and why. In each the RFC asks for exactly that error response,
/// and [`sip::error_response`] builds it.
const DIVERGES: &[(&str, u16, &str)] = &[
    // RFC 4475 §3.3.1: "Ideally, it will respond with a 400 Bad Request".
    // parse() enforces RFC 3261 §8.1.1 mandatory headers (its contract), so
    // the missing Call-ID/From/To are a MissingHeader error (400).
    ("insuf.dat", 400, "missing Call-ID, From, To"),
    // RFC 4475 §3.3.2: "should respond with a 416". `Uri` holds only
    // sip/sips/tel, so the unknown scheme is an UnsupportedScheme error (416),
    // which is the manifest's wire_code; no Request is built to route on.
    ("unkscm.dat", 416, "unknown Request-URI scheme"),
    // RFC 4475 §3.3.3: 416 when the scheme is never accepted (soap.beep).
    ("novelsc.dat", 416, "soap.beep Request-URI"),
    // RFC 4475 §3.3.8: "would respond with a 400"; the manifest notes a
    // strict parser may reject at parse time.
    (
        "multi01.dat",
        400,
        "several Call-ID/To/From/CSeq/Max-Forwards",
    ),
    // RFC 4475 §3.3.9: an error response; the manifest notes a parser MAY
    // reject at parse time (two different Content-Length values).
    ("mcl01.dat", 400, "Content-Length 13 and 5"),
];

/// Manifest `parse_reject` cases with `liberal_ok` that this parser
/// accepts, and why that is safe.
const LIBERAL: &[(&str, &str)] = &[
    // Herald never reads Date; RFC 4475 §3.1.2.12 lets such elements ignore it.
    ("baddate.dat", "Date is not interpreted"),
    // parse() does not read Contact; Headers::contacts() rejects the
    // addr-spec with `?` (checked below), so a registrar answers 400.
    ("regbadct.dat", "Contact checked by the typed accessor"),
];

fn exercise(msg: &Message) {
    let h = msg.headers();
    let _ = h.vias();
    let _ = h.top_via();
    let _ = h.from_addr();
    let _ = h.to_addr();
    let _ = h.call_id();
    let _ = h.cseq();
    let _ = h.max_forwards();
    let _ = h.expires();
    let _ = h.event();
    let _ = h.content_type();
    let _ = h.accept();
    let _ = h.allow_events();
    let _ = h.routes();
    let _ = h.record_routes();
    let _ = h.supported();
    let _ = h.require();
    let _ = h.proxy_require();
    if let Ok(Some(ContactList::List(l))) = h.contacts() {
        for c in l {
            let _ = (c.expires(), c.q(), c.sip_instance(), c.reg_id());
            let _ = Aor::from_uri(&c.0.uri);
            let _ = c.0.to_string();
        }
    }
    if let Ok(to) = h.to_addr() {
        let _ = Aor::from_uri(&to.uri);
    }
    if let Message::Request(r) = msg {
        let mut resp = sip::Response::for_request(r, 200);
        resp.set_to_tag("x");
        let _ = resp.to_bytes();
    }
}

/// Serializing and parsing again gives the same message (Content-Length
/// aside: it is recomputed and moved last).
fn assert_round_trip(name: &str, msg: &Message) {
    let wire = msg.to_bytes();
    let again = parse(&wire, &Limits::default())
        .unwrap_or_else(|e| panic!("{name}: re-parse of serialized form failed: {e}"));
    let strip = |m: &Message| {
        let mut hs: Vec<(String, String)> = m
            .headers()
            .iter()
            .filter(|h| h.name != HeaderName::ContentLength)
            .map(|h| (h.name.as_str().to_ascii_lowercase(), h.value.clone()))
            .collect();
        hs.sort();
        hs
    };
    assert_eq!(
        strip(msg),
        strip(&again),
        "{name}: headers after round trip"
    );
    match (msg, &again) {
        (Message::Request(a), Message::Request(b)) => {
            assert_eq!(
                (&a.method, &a.uri, &a.body),
                (&b.method, &b.uri, &b.body),
                "{name}"
            );
        }
        (Message::Response(a), Message::Response(b)) => {
            assert_eq!(
                (a.status, &a.reason, &a.body),
                (b.status, &b.reason, &b.body),
                "{name}"
            );
        }
        _ => panic!("{name}: kind changed in round trip"),
    }
}

#[test]
fn every_message_meets_its_verdict() {
    let manifest = manifest();
    assert_eq!(manifest.len(), 49, "RFC 4475 has 49 messages");
    let limits = Limits::default();
    let mut failures = Vec::new();
    for (name, meta) in &manifest {
        let bytes = load(name);
        let check = meta["check"].as_str().unwrap_or("");
        let liberal_ok = meta["liberal_ok"].as_bool().unwrap_or(false);

        let parsed = catch_unwind(|| parse(&bytes, &limits));
        let Ok(result) = parsed else {
            failures.push(format!("{name}: parse panicked"));
            continue;
        };
        // Nothing downstream may panic either.
        if catch_unwind(|| {
            let _ = frame_stream(&bytes, &limits);
            match &result {
                Ok(m) => exercise(m),
                Err(e) => {
                    let _ = error_response(&bytes, e, &limits);
                }
            }
        })
        .is_err()
        {
            failures.push(format!(
                "{name}: framing, accessors or error_response panicked"
            ));
            continue;
        }

        let diverge = DIVERGES.iter().find(|(n, ..)| n == name);
        let liberal = LIBERAL.iter().find(|(n, _)| n == name);
        match (check, &result, diverge, liberal) {
            ("parse_ok", Ok(m), None, _) => assert_round_trip(name, m),
            ("parse_ok", Err(e), Some((_, status, _)), _) => {
                if e.status() != Some(*status) {
                    failures.push(format!(
                        "{name}: rejected with {e:?}, expected status {status}"
                    ));
                }
                // The edge can still send the response the RFC asks for.
                match error_response(&bytes, e, &limits) {
                    Some(r) if r.status == *status => {}
                    other => failures.push(format!("{name}: error_response gave {other:?}")),
                }
            }
            ("parse_reject", Err(_), _, None) => {}
            ("parse_reject", Ok(m), _, Some(_)) if liberal_ok => assert_round_trip(name, m),
            _ => failures.push(format!(
                "{name}: check {check}, liberal_ok {liberal_ok}, got {:?}",
                result.as_ref().map(|_| "Ok")
            )),
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    // Every exception names a real case.
    for (n, ..) in DIVERGES {
        assert!(manifest.contains_key(*n), "{n}");
    }
    for (n, _) in LIBERAL {
        assert!(manifest.contains_key(*n), "{n}");
    }
}

fn req(name: &str) -> sip::Request {
    match parse(&load(name), &Limits::default()) {
        Ok(Message::Request(r)) => r,
        other => panic!("{name}: {other:?}"),
    }
}

fn resp(name: &str) -> sip::Response {
    match parse(&load(name), &Limits::default()) {
        Ok(Message::Response(r)) => r,
        other => panic!("{name}: {other:?}"),
    }
}

fn err(name: &str) -> CodecError {
    parse(&load(name), &Limits::default()).expect_err(name)
}

#[test]
fn wsinv_folding_short_forms_leading_zeros() {
    let r = req("wsinv.dat");
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.headers.max_forwards().unwrap(), Some(68));
    assert_eq!(r.headers.cseq().unwrap().seq, 9);
    assert_eq!(
        r.headers
            .get(&HeaderName::parse("UnknownHeaderWithUnusualValue")),
        Some(";;,,;;,;")
    );
    assert_eq!(
        r.headers.get(&HeaderName::parse("NewFangledHeader")),
        Some("newfangled value continued newfangled value")
    );
    let vias = r.headers.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert_eq!(vias[1].transport, "TCP");
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(r.headers.to_addr().unwrap().tag(), Some("1918181833n"));
    let from = r.headers.from_addr().unwrap();
    assert_eq!(from.display.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.tag(), Some("98asjd8"));
    let Some(ContactList::List(c)) = r.headers.contacts().unwrap() else {
        panic!("contacts")
    };
    assert_eq!(c[0].0.display.as_deref(), Some("Quoted string \"\""));
    assert_eq!(c[0].q().unwrap(), Some(330));
    assert_eq!(c[0].0.param("newparam"), Some(Some("newvalue")));
    assert_eq!(r.body.len(), 150);
}

#[test]
fn intmeth_unusual_characters() {
    let r = req("intmeth.dat");
    assert_eq!(
        r.method,
        Method::Extension("!interesting-Method0123456789_*+`.%indeed'~".into())
    );
    assert_eq!(r.uri.host, "example.com");
    let to = r.headers.to_addr().unwrap();
    assert_eq!(
        to.display.as_deref(),
        Some("BEL:\u{7} NUL:\u{0} DEL:\u{7f}")
    );
    let from = r.headers.from_addr().unwrap();
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        from.param("fromParam''~+*_!.-%"),
        Some(Some(
            "\u{440}\u{430}\u{431}\u{43e}\u{442}\u{430}\u{44e}\u{449}\u{438}\u{439}"
        ))
    );
}

#[test]
fn escapes() {
    let r = req("esc01.dat");
    assert_eq!(r.uri.user.as_deref(), Some("sips%3Auser%40example.com"));
    let to = Aor::from_uri(&r.headers.to_addr().unwrap().uri).unwrap();
    assert_eq!(to.as_str(), "sip:user@example.com");

    let r = req("escnull.dat");
    let to = Aor::from_uri(&r.headers.to_addr().unwrap().uri).unwrap();
    assert_eq!(to.as_str(), "sip:null-%00-null@example.com");
    let Some(ContactList::List(c)) = r.headers.contacts().unwrap() else {
        panic!("contacts")
    };
    assert_eq!(c.len(), 2);
    assert_ne!(
        Aor::from_uri(&c[0].0.uri).unwrap(),
        Aor::from_uri(&c[1].0.uri).unwrap()
    );

    let r = req("esc02.dat");
    assert_eq!(r.method, Method::Extension("RE%47IST%45R".into()));
    let Some(ContactList::List(c)) = r.headers.contacts().unwrap() else {
        panic!("contacts")
    };
    assert_eq!(c.len(), 2, "C%6Fntact is not Contact");
}

#[test]
fn uri_and_address_cases() {
    assert_eq!(
        req("semiuri.dat").uri.user.as_deref(),
        Some("user;par=u%40example.net")
    );
    assert_eq!(req("semiuri.dat").headers.accept().len(), 6);
    assert_eq!(
        req("lwsdisp.dat")
            .headers
            .from_addr()
            .unwrap()
            .display
            .as_deref(),
        Some("caller")
    );
    let t: Vec<_> = req("transports.dat")
        .headers
        .vias()
        .unwrap()
        .into_iter()
        .map(|v| v.transport)
        .collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    assert_eq!(
        req("badbranch.dat").headers.top_via().unwrap().branch(),
        Some("z9hG4bK")
    );
    assert_eq!(req("zeromf.dat").headers.max_forwards().unwrap(), Some(0));
    let b = req("bext01.dat");
    assert_eq!(
        b.headers.require(),
        ["nothingsupportsthis", "nothingsupportsthiseither"]
    );
    assert_eq!(b.headers.proxy_require().len(), 2);

    // Unknown schemes in headers: parse accepts, typed access refuses.
    let u = req("unksm2.dat");
    assert!(u.headers.to_addr().is_err());
    assert!(u.headers.from_addr().is_err());
    assert!(u.headers.contacts().is_err());

    let contact = |name: &str| match req(name).headers.contacts().unwrap() {
        Some(ContactList::List(mut l)) => l.remove(0).0,
        other => panic!("{name}: {other:?}"),
    };
    let c1 = contact("cparam01.dat");
    assert_eq!(c1.param("unknownparam"), Some(None));
    assert!(c1.uri.params.is_empty());
    let c2 = contact("cparam02.dat");
    assert_eq!(c2.uri.param("unknownparam"), Some(None));
    assert!(c2.params.is_empty());
    assert_eq!(
        contact("regescrt.dat").uri.headers.as_deref(),
        Some("Route=%3Csip:sip.example.com%3E")
    );
    assert!(req("regbadct.dat").headers.contacts().is_err());
}

#[test]
fn bodies_and_framing() {
    let l = req("longreq.dat");
    assert_eq!(l.headers.vias().unwrap().len(), 34);
    // dblreq: the REGISTER only; the trailing INVITE is dropped.
    let d = req("dblreq.dat");
    assert_eq!(d.method, Method::Register);
    assert!(d.body.is_empty());
    let raw = load("dblreq.dat");
    match frame_stream(&raw, &Limits::default()) {
        Ok(Frame::Message(n)) => assert!(
            n < raw.len(),
            "over a stream the INVITE is a second message"
        ),
        other => panic!("{other:?}"),
    }
    let m = req("mpart01.dat");
    assert_eq!(m.body.len(), 553);
    assert!(m.body.contains(&0), "binary part kept");
    let i = req("inv2543.dat");
    assert!(!i.headers.contains(&HeaderName::ContentLength));
    assert!(i.body.starts_with(b"v=0\r\n"));
    assert_eq!(i.headers.top_via().unwrap().branch(), None);
    assert!(i.headers.from_addr().unwrap().tag().is_none());
    // Over a stream inv2543 cannot be framed (RFC 3261 §18.3).
    assert!(frame_stream(&load("inv2543.dat"), &Limits::default()).is_err());
    // clerr over a stream waits for the announced bytes.
    assert_eq!(
        frame_stream(&load("clerr.dat"), &Limits::default()),
        Ok(Frame::Incomplete)
    );
    assert!(frame_stream(&load("ncl.dat"), &Limits::default()).is_err());
    assert!(frame_stream(&load("mcl01.dat"), &Limits::default()).is_err());
}

#[test]
fn responses() {
    let r = resp("unreason.dat");
    assert_eq!(r.status, 200);
    assert!(r.reason.starts_with("= 2**3 * 5**2 "));
    assert!(!r.reason.is_ascii());
    assert_eq!(resp("noreason.dat").reason, "");
    assert_eq!(
        resp("bcast.dat").headers.vias().unwrap()[1].host,
        "255.255.255.255"
    );
    for name in ["scalarlg.dat", "bigcode.dat"] {
        let e = err(name);
        // Responses are never answered.
        assert_eq!(
            error_response(&load(name), &e, &Limits::default()),
            None,
            "{name}"
        );
    }
}

#[test]
fn rejections_map_to_the_expected_status() {
    let status = |name: &str| err(name).status();
    assert_eq!(status("badvers.dat"), Some(505));
    assert!(matches!(err("badvers.dat"), CodecError::BadVersion(_)));
    assert_eq!(status("mismatch01.dat"), Some(400));
    assert_eq!(status("mismatch02.dat"), Some(400));
    assert!(matches!(err("clerr.dat"), CodecError::BadContentLength(_)));
    assert!(matches!(err("ncl.dat"), CodecError::BadContentLength(_)));
    assert!(matches!(
        err("scalar02.dat"),
        CodecError::InvalidHeader { header: "CSeq", .. }
    ));
    assert!(matches!(
        err("unkscm.dat"),
        CodecError::UnsupportedScheme(_)
    ));
    assert_eq!(err("insuf.dat"), CodecError::MissingHeader("From"));
    for name in [
        "badinv01.dat",
        "quotbal.dat",
        "ltgtruri.dat",
        "lwsruri.dat",
        "lwsstart.dat",
        "trws.dat",
        "escruri.dat",
        "badaspec.dat",
        "baddn.dat",
    ] {
        let e = err(name);
        assert_eq!(e.status(), Some(400), "{name}: {e:?}");
        let r = error_response(&load(name), &e, &Limits::default())
            .unwrap_or_else(|| panic!("{name}: no error response"));
        assert_eq!(r.status, 400);
        assert!(r.headers.call_id().is_ok(), "{name}");
    }
}

/// Mutated torture messages (deterministic xorshift): single-byte changes,
/// truncations and spliced delimiters. Nothing may panic.
#[test]
fn mutations_never_panic() {
    let limits = Limits::default();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    const SPICE: &[u8] = b"\0\r\n \t\"\\<>;,:=%@[]?\xff\xc3\x80";
    for name in manifest().keys() {
        let base = load(name);
        for _ in 0..150 {
            let mut m = base.clone();
            for _ in 0..(next() % 4 + 1) {
                if m.is_empty() {
                    break;
                }
                let at = (next() % m.len() as u64) as usize;
                match next() % 4 {
                    0 => m.truncate(at),
                    1 => m.insert(at, SPICE[(next() % SPICE.len() as u64) as usize]),
                    2 => m[at] = SPICE[(next() % SPICE.len() as u64) as usize],
                    _ => {
                        m.remove(at);
                    }
                }
            }
            let ok = catch_unwind(|| {
                let _ = frame_stream(&m, &limits);
                match parse(&m, &limits) {
                    Ok(msg) => {
                        exercise(&msg);
                        // What we accept, we can write and read back.
                        let wire = msg.to_bytes();
                        assert!(
                            parse(&wire, &limits).is_ok(),
                            "{:?}",
                            String::from_utf8_lossy(&wire)
                        );
                    }
                    Err(e) => {
                        let _ = error_response(&m, &e, &limits);
                    }
                }
            });
            assert!(
                ok.is_ok(),
                "{name}: panic on mutation {:?}",
                String::from_utf8_lossy(&m)
            );
        }
    }
}
