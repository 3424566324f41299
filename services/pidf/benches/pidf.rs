//! PIDF hot path of a PUBLISH: parse a ~1 KB RPID document, compose two publications,
//! write the NOTIFY body.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pidf::{compose, PidfDocument, PublicationOrder, WatcherInfo, XmlLimits};

/// A desktop client's publication: one tuple with capabilities-style extensions, a person
/// with RPID activities and mood, a device, about 1 KB.
const DESKTOP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
          xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
          xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
          xmlns:c="urn:ietf:params:xml:ns:pidf:cipid"
          entity="sip:alice@example.com">
  <tuple id="desk-7f3a">
    <status><basic>open</basic></status>
    <dm:deviceID>urn:uuid:8f0e5d1c-4a7b-4c3e-9f21-0d6b2a9c1e11</dm:deviceID>
    <rpid:relationship><rpid:self/></rpid:relationship>
    <rpid:service-class><rpid:electronic/></rpid:service-class>
    <contact priority="0.8">sip:alice@192.0.2.10:5060;transport=tcp</contact>
    <note xml:lang="en">At my desk</note>
    <timestamp>2026-11-28T09:12:44Z</timestamp>
  </tuple>
  <dm:person id="p1">
    <rpid:activities><rpid:meeting/></rpid:activities>
    <rpid:mood><rpid:happy/></rpid:mood>
    <rpid:place-type><rpid:other>office</rpid:other></rpid:place-type>
    <c:homepage>https://example.com/~alice</c:homepage>
    <dm:note>In the weekly review until 11</dm:note>
    <dm:timestamp>2026-11-28T09:12:44Z</dm:timestamp>
  </dm:person>
  <dm:device id="pc-1">
    <rpid:user-input idle-threshold="600">active</rpid:user-input>
    <dm:deviceID>urn:uuid:8f0e5d1c-4a7b-4c3e-9f21-0d6b2a9c1e11</dm:deviceID>
  </dm:device>
  <note>Back at 14:00</note>
</presence>"#;

fn phone() -> String {
    DESKTOP
        .replace("desk-7f3a", "phone-19c")
        .replace("pc-1", "phone-1")
        .replace("<rpid:meeting/>", "<rpid:on-the-phone/>")
        .replace("At my desk", "On the move")
}

fn benches(c: &mut Criterion) {
    let limits = XmlLimits::default();
    let phone = phone();
    let desk_doc = PidfDocument::parse(DESKTOP.as_bytes(), &limits).expect("bench document");
    let phone_doc = PidfDocument::parse(phone.as_bytes(), &limits).expect("bench document");
    let pubs = [
        (PublicationOrder(1), &desk_doc),
        (PublicationOrder(2), &phone_doc),
    ];
    let composed = compose("sip:alice@example.com", &pubs);

    let mut group = c.benchmark_group("pidf");
    group.throughput(criterion::Throughput::Bytes(DESKTOP.len() as u64));
    group.bench_function("parse_1k_rpid", |b| {
        b.iter(|| PidfDocument::parse(black_box(DESKTOP.as_bytes()), &limits))
    });
    group.finish();

    c.bench_function("pidf/compose_2_publications", |b| {
        b.iter(|| compose(black_box("sip:alice@example.com"), black_box(&pubs)))
    });
    c.bench_function("pidf/to_xml", |b| b.iter(|| black_box(&composed).to_xml()));
    c.bench_function("pidf/digest", |b| b.iter(|| black_box(&composed).digest()));
    c.bench_function("pidf/publish_path_parse_compose_xml", |b| {
        b.iter(|| {
            let doc = PidfDocument::parse(black_box(phone.as_bytes()), &limits).expect("parse");
            compose(
                "sip:alice@example.com",
                &[
                    (PublicationOrder(1), &desk_doc),
                    (PublicationOrder(2), &doc),
                ],
            )
            .to_xml()
        })
    });

    let winfo = WatcherInfo::parse(
        include_bytes!("../../../../shared/vectors/presence-docs/rfc3858-watcherinfo-example.xml"),
        &limits,
    )
    .expect("winfo");
    c.bench_function("pidf/watcherinfo_to_xml", |b| {
        b.iter(|| black_box(&winfo).to_xml())
    });
}

criterion_group!(pidf_benches, benches);
criterion_main!(pidf_benches);
