//! PUBLISH bodies Herald must refuse (RFC 3903 §6 step 3, RFC 3863): XML
//! that is not well-formed or asks for a DOCTYPE, a root outside the PIDF
//! namespace, a document about another entity, and a body over
//! --max-body-size (413). Each is answered, as an initial PUBLISH and as a
//! modify of a live publication, and nothing stored changes: the watcher
//! gets no NOTIFY, a fetch still shows what was published, and the live
//! entity tag still works.

use std::collections::BTreeMap;

use anyhow::{ensure, Context, Result};
use herald_tests::{vectors_dir, QUIET};
use pidf::BasicStatus;
use sip::HeaderName;
use testkit::presence::{basic_by_tuple, etag, pidf_tuple, RequestExt, PIDF, PRESENCE};
use testkit::{secs, Herald, HeraldProcess};

/// The RFC 3863 §3.4 example, published as is by `someone@example.com`
/// (its entity is `pres:someone@example.com`).
fn rfc3863_example() -> Result<String> {
    let path = vectors_dir()
        .join("presence-docs")
        .join("rfc3863-pidf-example.xml");
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

fn example_tuples() -> BTreeMap<String, Option<BasicStatus>> {
    [
        ("bs35r9".to_string(), Some(BasicStatus::Open)),
        ("eg92n8".to_string(), Some(BasicStatus::Open)),
    ]
    .into_iter()
    .collect()
}

/// Publishes the RFC 3863 example as `someone`, has `watcher` watch it,
/// then sends each bad body twice (initial, and modify of the live
/// publication) and checks the answer and that nothing changed.
fn refused_and_nothing_changes(
    herald: &HeraldProcess,
    cases: &[(&str, Vec<u8>, u16)],
) -> Result<()> {
    let mut someone = herald.udp_ua("someone")?;
    let mut watcher = herald.udp_ua("watcher")?;
    let r = someone.publish(&rfc3863_example()?, 600)?;
    ensure!(
        r.status == 200,
        "the RFC 3863 example must be accepted, got {} {}",
        r.status,
        r.reason
    );
    let live = etag(&r)?;
    let (_dialog, first) = watcher.watch(&someone.aor(), PRESENCE, 600, secs(5))?;
    ensure!(
        basic_by_tuple(&first.pidf()?) == example_tuples(),
        "the watcher sees the example's tuples:\n{}",
        first.body_text()
    );

    for (what, body, status) in cases {
        let initial = someone.publish_request(Some(600)).with_body(PIDF, body);
        let r = someone.transact(&initial)?;
        ensure!(
            r.status == *status,
            "initial PUBLISH with {what}: want {status}, got {} {}",
            r.status,
            r.reason
        );
        ensure!(
            r.headers.get(&HeaderName::SipETag).is_none(),
            "a refused PUBLISH ({what}) must not hand out an entity tag"
        );
        let modify = someone
            .publish_request(Some(600))
            .with_header(HeaderName::SipIfMatch, live.as_str())
            .with_body(PIDF, body);
        let r = someone.transact(&modify)?;
        ensure!(
            r.status == *status,
            "modify with {what}: want {status}, got {} {}",
            r.status,
            r.reason
        );
        watcher
            .expect_nothing(QUIET)
            .with_context(|| format!("a refused PUBLISH ({what}) must not notify"))?;
        let fetched = watcher.fetch(&someone.aor(), PRESENCE, secs(5))?;
        ensure!(
            basic_by_tuple(&fetched.pidf()?) == example_tuples(),
            "after the refused {what}, a fetch must show the example unchanged:\n{}",
            fetched.body_text()
        );
    }
    let r = someone.publish_refresh(&live, 600)?;
    ensure!(
        r.status == 200,
        "the live tag must survive the refused modifies, got {} {}",
        r.status,
        r.reason
    );
    Ok(())
}

#[test]
fn malformed_xml_is_400() -> Result<()> {
    let herald = Herald::start(&[])?;
    let entity = "sip:someone@example.com";
    let whole = pidf_tuple(entity, "t1", "closed", Some("broken"));
    let truncated = whole.as_bytes()[..whole.len() - 20].to_vec();
    let mismatched = whole.replace("</tuple>", "</tupel>").into_bytes();
    let two_roots = format!("{whole}{whole}").into_bytes();
    let billion_laughs = format!(
        r#"<?xml version="1.0"?>
<!DOCTYPE presence [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{entity}">
  <tuple id="t1"><status><basic>closed</basic></status><note>&b;</note></tuple>
</presence>"#
    )
    .into_bytes();
    let not_utf8 = {
        let mut b = whole.clone().into_bytes();
        let at = whole.find("broken").context("note text")?;
        b[at] = 0xff;
        b
    };
    let no_basic_value = whole.replace("closed", "maybe").into_bytes();
    refused_and_nothing_changes(
        &herald,
        &[
            ("a truncated document", truncated, 400),
            ("mismatched tags", mismatched, 400),
            ("two root elements", two_roots, 400),
            ("a DOCTYPE with entities", billion_laughs, 400),
            ("bytes that are not UTF-8", not_utf8, 400),
            ("basic neither open nor closed", no_basic_value, 400),
        ],
    )
}

#[test]
fn wrong_namespace_is_400() -> Result<()> {
    let herald = Herald::start(&[])?;
    let entity = "sip:someone@example.com";
    let doc = pidf_tuple(entity, "t1", "closed", None);
    let other_ns = doc
        .replace("urn:ietf:params:xml:ns:pidf", "urn:example:not-pidf")
        .into_bytes();
    let no_ns = doc
        .replace(r#" xmlns="urn:ietf:params:xml:ns:pidf""#, "")
        .into_bytes();
    let xpidf = format!(
        r#"<?xml version="1.0"?>
<presence><presentity uri="{entity};method=SUBSCRIBE"/><atom id="1"><address uri="{entity}"><status status="closed"/></address></atom></presence>"#
    )
    .into_bytes();
    refused_and_nothing_changes(
        &herald,
        &[
            ("a root in another namespace", other_ns, 400),
            ("a root in no namespace", no_ns, 400),
            ("an XPIDF document labelled PIDF", xpidf, 400),
        ],
    )
}

#[test]
fn document_about_another_entity_is_400() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mallory = pidf_tuple("sip:mallory@example.com", "t1", "closed", None).into_bytes();
    let other_domain = pidf_tuple("pres:someone@example.org", "t1", "closed", None).into_bytes();
    let example_as_bob = rfc3863_example()?
        .replace("pres:someone@example.com", "pres:bob@example.com")
        .into_bytes();
    refused_and_nothing_changes(
        &herald,
        &[
            ("a document for sip:mallory@example.com", mallory, 400),
            ("a document for pres:someone@example.org", other_domain, 400),
            ("the RFC 3863 example about bob", example_as_bob, 400),
        ],
    )
}

#[test]
fn body_over_the_size_limit_is_413() -> Result<()> {
    let herald = Herald::start(&["--max-body-size", "2000"])?;
    let entity = "sip:someone@example.com";
    // Well-formed PIDF for the right entity: only its size is wrong.
    let big = pidf_tuple(entity, "t1", "closed", Some(&"x".repeat(2500))).into_bytes();
    ensure!(big.len() > 2000);
    refused_and_nothing_changes(
        &herald,
        &[("a 2.6 kB body over a 2000 byte limit", big, 413)],
    )?;

    // The limit is the body's: a document just under it is fine.
    let mut small = herald.udp_ua("small")?;
    let fits = pidf_tuple(&small.aor(), "t1", "open", Some(&"y".repeat(1700)));
    ensure!(fits.len() < 2000, "{} bytes", fits.len());
    let r = small.publish(&fits, 600)?;
    ensure!(
        r.status == 200,
        "a {} byte body under the limit: {} {}",
        fits.len(),
        r.status,
        r.reason
    );
    Ok(())
}

/// Over TCP the 413 arrives too (RFC 3261 §21.4.11 lets the server close
/// the connection afterwards, so nothing is asserted about it).
#[test]
fn body_over_the_size_limit_over_tcp_is_413() -> Result<()> {
    let herald = Herald::start(&["--max-body-size", "2000"])?;
    let mut someone = herald.tcp_ua("someone")?;
    let big = pidf_tuple(&someone.aor(), "t1", "closed", Some(&"x".repeat(2500)));
    let req = someone.publish_request(Some(600)).with_body(PIDF, &big);
    let r = someone.transact(&req)?;
    ensure!(
        r.status == 413,
        "PUBLISH with a {} byte body over TCP: want 413, got {} {}",
        big.len(),
        r.status,
        r.reason
    );
    Ok(())
}
