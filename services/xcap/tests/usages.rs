//! Each application usage's validation, and each RFC 4825 §11 error
//! document.

mod common;

use axum::http::StatusCode;
use common::*;

const PRES_RULES_MIME: &str = "application/auth-policy+xml";

fn doc_uri(auid: &str, name: &str) -> String {
    format!("/xcap-root/{auid}/users/sip:alice@example.com/{name}")
}

/// Asserts a 409 with an xcap-error document holding `element`.
fn assert_conflict(r: &Reply, element: &str) {
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.content_type(), "application/xcap-error+xml");
    assert!(
        r.body
            .contains("<xcap-error xmlns=\"urn:ietf:params:xml:ns:xcap-error\">"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(&format!("<{element}")),
        "{element}: {}",
        r.body
    );
    roxmltree::Document::parse(&r.body).expect("error documents are well-formed");
}

#[tokio::test]
async fn the_rfc_examples_are_accepted() {
    let x = Xcap::new();
    for (auid, name, mime, file) in [
        (
            "pres-rules",
            "index",
            PRES_RULES_MIME,
            "rfc5025-pres-rules-example.xml",
        ),
        (
            "org.openmobilealliance.pres-rules",
            "pres-rules",
            PRES_RULES_MIME,
            "rfc5025-pres-rules-example.xml",
        ),
        (
            "resource-lists",
            "index",
            RL_MIME,
            "rfc4826-resource-lists-example.xml",
        ),
        (
            "rls-services",
            "index",
            "application/rls-services+xml",
            "rfc4826-rls-services-example.xml",
        ),
        (
            "pidf-manipulation",
            "index",
            "application/pidf+xml",
            "rfc3863-pidf-example.xml",
        ),
    ] {
        let body = vector(file);
        let r = x.put(&doc_uri(auid, name), mime, &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{auid}: {}", r.body);
        let got = x.get(&doc_uri(auid, name)).await;
        assert_eq!(got.body, body);
        assert_eq!(got.content_type(), mime);
    }
    let changes = x.recorder.changes.lock().unwrap().clone();
    assert_eq!(changes[1].auid, "org.openmobilealliance.pres-rules");
    assert_eq!(
        changes[1].selector,
        "org.openmobilealliance.pres-rules/users/sip:alice@example.com/pres-rules"
    );
}

#[tokio::test]
async fn pres_rules_are_validated() {
    let x = Xcap::new();
    let uri = doc_uri("pres-rules", "index");
    let rules = |body: &str| {
        format!(
            r#"<ruleset xmlns="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules">{body}</ruleset>"#
        )
    };
    let r = x
        .put(
            &uri,
            PRES_RULES_MIME,
            &rules(r#"<rule id="a"/><rule id="a"/>"#),
        )
        .await;
    assert_conflict(&r, "uniqueness-failure");
    assert!(
        r.body
            .contains(r#"<exists field="ruleset/rule/@id"><alt-value>a-2</alt-value></exists>"#),
        "{}",
        r.body
    );
    for bad in [
        "<rule/>",
        r#"<rule id="a"><actions><pr:sub-handling>maybe</pr:sub-handling></actions></rule>"#,
        r#"<rule id="a"><actions/><conditions/></rule>"#,
        r#"<rule id="a"><conditions><identity><one/></identity></conditions></rule>"#,
        r#"<rule id="a"><conditions><validity><from>tomorrow</from><until>2030-01-01T00:00:00Z</until></validity></conditions></rule>"#,
        r#"<rule id="a"><transformations><pr:provide-activities>yes</pr:provide-activities></transformations></rule>"#,
        r#"<rule id="a"><transformations><pr:provide-user-input>all</pr:provide-user-input></transformations></rule>"#,
    ] {
        let r = x.put(&uri, PRES_RULES_MIME, &rules(bad)).await;
        assert_conflict(&r, "schema-validation-error");
    }
    let wrong_root = r#"<ruleset xmlns="urn:other"/>"#;
    assert_conflict(
        &x.put(&uri, PRES_RULES_MIME, wrong_root).await,
        "schema-validation-error",
    );
    let good = rules(
        r#"<rule id="a"><conditions><identity><many domain="example.com"><except id="sip:x@example.com"/></many></identity><validity><from>2026-01-01T00:00:00Z</from><until>2027-01-01T00:00:00Z</until></validity></conditions><actions><pr:sub-handling>confirm</pr:sub-handling></actions></rule>"#,
    );
    assert_eq!(
        x.put(&uri, PRES_RULES_MIME, &good).await.status,
        StatusCode::CREATED
    );
    // The same checks apply to an element PUT: the document after the
    // change is validated.
    let el = format!("{uri}/~~/{}", sel(r#"cp:ruleset/cp:rule[@id="b"]"#))
        + "?xmlns(cp=urn:ietf:params:xml:ns:common-policy)";
    let r = x
        .put(
            &el,
            EL_MIME,
            r#"<rule id="b"><actions><pr:sub-handling>never</pr:sub-handling></actions></rule>"#,
        )
        .await;
    assert_conflict(&r, "schema-validation-error");
    let r = x
        .put(
            &el,
            EL_MIME,
            r#"<rule id="b"><actions><pr:sub-handling>block</pr:sub-handling></actions></rule>"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Unprefixed names are in the usage's default namespace (pres-rules),
    // so the common-policy root is not found without a prefix.
    let r = x.get(&format!("{uri}/~~/ruleset")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn resource_lists_uniqueness() {
    let x = Xcap::new();
    let lists = |body: &str| {
        format!(
            r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">{body}</resource-lists>"#
        )
    };
    for (bad, field) in [
        (
            r#"<list name="a"/><list name="a"/>"#,
            "resource-lists/list/@name",
        ),
        (
            r#"<list><entry uri="sip:b@x"/><entry uri="sip:b@x"/></list>"#,
            "resource-lists/list/entry/@uri",
        ),
        (
            r#"<list><list name="n"/><list name="n"/></list>"#,
            "resource-lists/list/list/@name",
        ),
        (
            r#"<list><entry-ref ref="a/b"/><entry-ref ref="a/b"/></list>"#,
            "resource-lists/list/entry-ref/@ref",
        ),
    ] {
        let r = x.put(RL_DOC, RL_MIME, &lists(bad)).await;
        assert_conflict(&r, "uniqueness-failure");
        assert!(r.body.contains(&format!("field=\"{field}\"")), "{}", r.body);
    }
    // The same uri in two different lists is fine.
    let ok = lists(
        r#"<list name="a"><entry uri="sip:b@x"/></list><list name="b"><entry uri="sip:b@x"/></list>"#,
    );
    assert_eq!(
        x.put(RL_DOC, RL_MIME, &ok).await.status,
        StatusCode::CREATED
    );
    // Inserting a duplicate entry by element PUT.
    let el = format!(
        "{RL_DOC}/~~/{}",
        sel(r#"resource-lists/list[@name="a"]/entry[2]"#)
    );
    let r = x.put(&el, EL_MIME, r#"<entry uri="sip:b@x"/>"#).await;
    assert_conflict(&r, "uniqueness-failure");
    for bad in [
        r#"<list><entry/></list>"#,
        r#"<list><entry uri="sip:a@x"><display-name>a</display-name><display-name>b</display-name></entry></list>"#,
        r#"<list><entry uri="sip:a@x"/><display-name>late</display-name></list>"#,
        r#"<entry uri="sip:a@x"/>"#,
    ] {
        assert_conflict(
            &x.put(RL_DOC, RL_MIME, &lists(bad)).await,
            "schema-validation-error",
        );
    }
    let r = x
        .put(
            RL_DOC,
            RL_MIME,
            &lists(r#"<list><external anchor="ftp://x/y"/></list>"#),
        )
        .await;
    assert_conflict(&r, "constraint-failure");
}

#[tokio::test]
async fn rls_services_and_pidf_are_validated() {
    let x = Xcap::new();
    let uri = doc_uri("rls-services", "index");
    let mime = "application/rls-services+xml";
    let services = |body: &str| {
        format!(
            r#"<rls-services xmlns="urn:ietf:params:xml:ns:rls-services">{body}</rls-services>"#
        )
    };
    let one = r#"<service uri="sip:s@x"><resource-list>http://x/l</resource-list></service>"#;
    let r = x.put(&uri, mime, &services(&format!("{one}{one}"))).await;
    assert_conflict(&r, "uniqueness-failure");
    assert!(r.body.contains(r#"field="rls-services/service/@uri""#));
    assert_conflict(
        &x.put(&uri, mime, &services(r#"<service uri="sip:s@x"/>"#))
            .await,
        "schema-validation-error",
    );
    assert_conflict(
        &x.put(
            &uri,
            mime,
            &services(r#"<service><resource-list>http://x</resource-list></service>"#),
        )
        .await,
        "schema-validation-error",
    );
    assert_eq!(
        x.put(&uri, mime, &services(one)).await.status,
        StatusCode::CREATED
    );

    let pidf = doc_uri("pidf-manipulation", "index");
    let mime = "application/pidf+xml";
    let presence = |body: &str| {
        format!(
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com">{body}</presence>"#
        )
    };
    let tuple = r#"<tuple id="t"><status><basic>open</basic></status></tuple>"#;
    assert_conflict(
        &x.put(&pidf, mime, &presence(&format!("{tuple}{tuple}")))
            .await,
        "uniqueness-failure",
    );
    assert_conflict(
        &x.put(
            &pidf,
            mime,
            &presence(r#"<tuple id="t"><status><basic>maybe</basic></status></tuple>"#),
        )
        .await,
        "schema-validation-error",
    );
    assert_conflict(
        &x.put(&pidf, mime, &presence(r#"<tuple id="t"/>"#)).await,
        "schema-validation-error",
    );
    assert_conflict(
        &x.put(
            &pidf,
            mime,
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"/>"#,
        )
        .await,
        "schema-validation-error",
    );
    assert_eq!(
        x.put(&pidf, mime, &presence(tuple)).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn error_documents() {
    let x = Xcap::new();
    // not-well-formed and not-utf-8 (whole documents).
    assert_conflict(
        &x.put(RL_DOC, RL_MIME, "<resource-lists").await,
        "not-well-formed",
    );
    let r = x
        .send("PUT", RL_DOC, "alice", &[("content-type", RL_MIME)], "")
        .await;
    assert_conflict(&r, "not-well-formed");
    let latin1 = axum::body::Body::from(vec![b'<', b'a', 0xe9, b'/', b'>']);
    let request = axum::http::Request::put(RL_DOC)
        .header("content-type", RL_MIME)
        .header("authorization", "Basic YWxpY2U6c2VjcmV0LWE=")
        .body(latin1)
        .unwrap();
    let response = tower::ServiceExt::oneshot(x.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("<not-utf-8/>"));
    // A DTD is refused (no entity expansion).
    let dtd = r#"<!DOCTYPE r [<!ENTITY a "x">]><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>"#;
    assert_conflict(&x.put(RL_DOC, RL_MIME, dtd).await, "not-well-formed");

    assert_eq!(
        x.put(RL_DOC, RL_MIME, SMALL_LIST).await.status,
        StatusCode::CREATED
    );
    // no-parent, with the closest ancestor that exists.
    let deep = format!(
        "{RL_DOC}/~~/{}",
        sel(r#"resource-lists/list[@name="friends"]/list[@name="x"]/entry"#)
    );
    let r = x.put(&deep, EL_MIME, r#"<entry uri="sip:z@x"/>"#).await;
    assert_conflict(&r, "no-parent");
    assert!(
        r.body.contains("<ancestor>http://localhost/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5B@name=%22friends%22%5D</ancestor>"),
        "{}",
        r.body
    );
    // ... and for a document that does not exist, its directory.
    let nodoc = format!(
        "{}/~~/resource-lists/list",
        doc_uri("resource-lists", "none")
    );
    let r = x.put(&nodoc, EL_MIME, "<list/>").await;
    assert_conflict(&r, "no-parent");
    assert!(r.body.contains("<ancestor>http://localhost/xcap-root/resource-lists/users/sip:alice@example.com/</ancestor>"), "{}", r.body);
    // cannot-insert: the body does not match the selector's last step.
    let el = format!(
        "{RL_DOC}/~~/{}",
        sel(r#"resource-lists/list/entry[@uri="sip:q@x"]"#)
    );
    assert_conflict(
        &x.put(&el, EL_MIME, r#"<entry uri="sip:other@x"/>"#).await,
        "cannot-insert",
    );
    assert_conflict(
        &x.put(&el, EL_MIME, r#"<list name="q"/>"#).await,
        "cannot-insert",
    );
    let far = format!("{RL_DOC}/~~/{}", sel("resource-lists/list/entry[9]"));
    assert_conflict(
        &x.put(&far, EL_MIME, r#"<entry uri="sip:q@x"/>"#).await,
        "cannot-insert",
    );
    // not-xml-frag: two elements, text, or an unbound prefix.
    for bad in [
        "<entry uri='a'/><entry uri='b'/>",
        "text",
        "<x:entry uri='a'/>",
        "<entry uri='a'>",
    ] {
        assert_conflict(&x.put(&el, EL_MIME, bad).await, "not-xml-frag");
    }
    // cannot-delete: deleting entry[1] would leave another entry[1].
    let first = format!("{RL_DOC}/~~/{}", sel("resource-lists/list/entry[1]"));
    assert_conflict(&x.delete(&first).await, "cannot-delete");
    assert_conflict(
        &x.delete(&format!("{RL_DOC}/~~/resource-lists")).await,
        "cannot-delete",
    );
    // Deleting by a unique attribute is idempotent and goes through.
    let bob = format!(
        "{RL_DOC}/~~/{}",
        sel(r#"resource-lists/list/entry[@uri="sip:bob@example.com"]"#)
    );
    assert_eq!(x.delete(&bob).await.status, StatusCode::OK);
    // Now entry[1] is the last one: deleting it is idempotent.
    assert_eq!(x.delete(&first).await.status, StatusCode::OK);
    // schema-validation-error and uniqueness-failure: see the usage tests;
    // constraint-failure: resource_lists_uniqueness.
    let unchanged = x.get(RL_DOC).await;
    assert!(unchanged.headers.contains_key("etag"));
    // A failed change carries the document's current tag.
    let r = x.put(&el, EL_MIME, "text").await;
    assert_eq!(r.etag(), unchanged.etag());
}

/// Validates `xml` against an XSD of the shared vectors with xmllint
/// (Debian libxml2-utils); `false` when xmllint is not installed.
fn xmllint(xsd: &str, xml: &str) -> bool {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let schema = format!(
        "{}/../../../shared/vectors/xsd/openxcap/{xsd}",
        env!("CARGO_MANIFEST_DIR")
    );
    let child = Command::new("xmllint")
        .args(["--noout", "--schema", &schema, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("xmllint not installed: schema check skipped");
        return false;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{xsd} rejects:\n{xml}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

#[tokio::test]
async fn what_herald_produces_meets_the_schemas() {
    let x = Xcap::new();
    assert_eq!(
        x.put(RL_DOC, RL_MIME, SMALL_LIST).await.status,
        StatusCode::CREATED
    );
    // Element and attribute changes keep the document schema-valid.
    let dave = format!(
        "{RL_DOC}/~~/{}",
        sel(r#"resource-lists/list/entry[@uri="sip:dave@example.com"]"#)
    );
    let r = x
        .put(
            &dave,
            EL_MIME,
            r#"<entry uri="sip:dave@example.com"><display-name>D</display-name></entry>"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let nested = format!(
        "{RL_DOC}/~~/{}",
        sel(r#"resource-lists/list/list[@name="work"]"#)
    );
    assert_eq!(
        x.put(&nested, EL_MIME, r#"<list name="work"/>"#)
            .await
            .status,
        StatusCode::CREATED
    );
    let attr = format!("{RL_DOC}/~~/{}", sel("resource-lists/list/list/@name"));
    assert_eq!(
        x.put(&attr, ATT_MIME, "office").await.status,
        StatusCode::OK
    );
    let first = format!(
        "{RL_DOC}/~~/{}",
        sel(r#"resource-lists/list/entry[@uri="sip:bob@example.com"]"#)
    );
    assert_eq!(x.delete(&first).await.status, StatusCode::OK);
    let doc = x.get(RL_DOC).await.body;
    assert!(doc.contains(r#"<list name="office"/>"#), "{doc}");
    if !xmllint("resource-lists.xsd", &doc) {
        return;
    }
    xmllint(
        "xcap-caps.xsd",
        &x.get("/xcap-root/xcap-caps/global/index").await.body,
    );
    // Error documents.
    let deep = format!("{RL_DOC}/~~/{}", sel("resource-lists/list/list/list/entry"));
    let no_parent = x.put(&deep, EL_MIME, r#"<entry uri="sip:z@x"/>"#).await;
    xmllint("xcap-error.xsd", &no_parent.body);
    let dup = x
        .put(RL_DOC, RL_MIME, r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="a"/><list name="a"/></resource-lists>"#)
        .await;
    xmllint("xcap-error.xsd", &dup.body);
    let invalid = x.put(RL_DOC, RL_MIME, "<other/>").await;
    xmllint("xcap-error.xsd", &invalid.body);
    // The RFC examples the usage tests store.
    xmllint(
        "presence-rules.xsd",
        &vector("rfc5025-pres-rules-example.xml"),
    );
    xmllint(
        "rls-services.xsd",
        &vector("rfc4826-rls-services-example.xml"),
    );
}
