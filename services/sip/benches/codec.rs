//! Parse and serialize cost of the messages Herald handles most.
//! Run: cargo bench -p sip --bench codec -- --warm-up-time 1 --measurement-time 3

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sip::{frame_stream, parse, Limits, Message};

const PIDF: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">
  <tuple id="t8a7d3c1">
    <status><basic>open</basic></status>
    <contact priority="0.8">sip:alice@192.0.2.4:5060;transport=tcp</contact>
    <timestamp>2026-11-02T10:15:30Z</timestamp>
  </tuple>
  <dm:person id="p1">
    <rpid:activities><rpid:busy/></rpid:activities>
    <dm:note>In a meeting until 11</dm:note>
  </dm:person>
  <dm:device id="d1"><dm:deviceID>urn:uuid:00000000-0000-1000-8000-000A95A0E128</dm:deviceID></dm:device>
</presence>
"#;

fn register() -> String {
    "REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 192.0.2.4:52114;branch=z9hG4bK-524287-1---8f1b2c3d4e5f6a7b;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:alice@192.0.2.4:52114;transport=tcp;ob>;expires=600;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1\r\n\
To: \"Alice\" <sip:alice@example.com>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=3a1f9c2b\r\n\
Call-ID: 9d2f8e1c-3b4a-4c5d-8e6f-7a8b9c0d1e2f\r\n\
CSeq: 2 REGISTER\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE, PUBLISH\r\n\
Supported: replaces, outbound, gruu, path\r\n\
User-Agent: Linphone-Desktop/5.2.6 (belle-sip/5.3.0)\r\n\
Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"b7c9036f2c7e4a1d\", uri=\"sip:example.com\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5\r\n\
Content-Length: 0\r\n\
\r\n"
        .to_owned()
}

fn message() -> String {
    let body = "Hello Bob, are we still on for lunch today?";
    format!(
        "MESSAGE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/TLS 192.0.2.4:52114;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:bob@example.com>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=49583\r\n\
Call-ID: asd88asd77a@192.0.2.4\r\n\
CSeq: 1 MESSAGE\r\n\
Content-Type: text/plain\r\n\
Content-Length: {}\r\n\
\r\n{body}",
        body.len()
    )
}

fn publish() -> String {
    format!(
        "PUBLISH sip:alice@example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 192.0.2.4:52114;branch=z9hG4bK-d8754z-1a2b3c4d;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:alice@example.com>\r\n\
From: <sip:alice@example.com>;tag=5a6b7c\r\n\
Call-ID: 0c1d2e3f4a5b6c7d@192.0.2.4\r\n\
CSeq: 7 PUBLISH\r\n\
Event: presence\r\n\
Expires: 3600\r\n\
SIP-If-Match: dx200xyz\r\n\
User-Agent: baresip v3.16.0 (x86_64/linux)\r\n\
Content-Type: application/pidf+xml\r\n\
Content-Length: {}\r\n\
\r\n{PIDF}",
        PIDF.len()
    )
}

fn notify() -> String {
    format!(
        "NOTIFY sip:bob@192.0.2.9:40112;transport=tcp;ob SIP/2.0\r\n\
Via: SIP/2.0/TCP 198.51.100.1:5060;branch=z9hG4bK.presence.00017\r\n\
Max-Forwards: 70\r\n\
To: <sip:bob@example.com>;tag=bob-sub-1\r\n\
From: <sip:alice@example.com>;tag=herald-7f3a\r\n\
Call-ID: sub-8c7d6e5f@192.0.2.9\r\n\
CSeq: 12 NOTIFY\r\n\
Contact: <sip:198.51.100.1:5060;transport=tcp>\r\n\
Event: presence\r\n\
Subscription-State: active;expires=3412\r\n\
Server: Herald/0.1\r\n\
Content-Type: application/pidf+xml\r\n\
Content-Length: {}\r\n\
\r\n{PIDF}",
        PIDF.len()
    )
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let cases = [
        ("register", register()),
        ("message", message()),
        ("publish", publish()),
        ("notify", notify()),
    ];
    let mut g = c.benchmark_group("sip");
    for (name, raw) in &cases {
        let bytes = raw.as_bytes();
        let msg = parse(bytes, &limits).expect("bench message parses");
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(format!("parse/{name}_{}B", bytes.len()), |b| {
            b.iter(|| parse(black_box(bytes), &limits))
        });
        g.bench_function(format!("serialize/{name}_{}B", bytes.len()), |b| {
            b.iter(|| black_box(&msg).to_bytes())
        });
    }
    let (_, reg) = &cases[0];
    let bytes = reg.as_bytes();
    g.bench_function("frame_stream/register", |b| {
        b.iter(|| frame_stream(black_box(bytes), &limits))
    });
    // What a registrar does per REGISTER: parse plus the typed headers it reads.
    g.bench_function("parse+typed/register", |b| {
        b.iter(|| {
            let Ok(Message::Request(r)) = parse(black_box(bytes), &limits) else {
                unreachable!()
            };
            let h = &r.headers;
            (
                h.top_via().is_ok(),
                h.from_addr().is_ok(),
                h.to_addr().is_ok(),
                h.cseq().is_ok(),
                h.call_id().is_ok(),
                h.contacts().is_ok(),
                h.expires().is_ok(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
