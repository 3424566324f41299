//! XCAP over HTTP through `xcap::app`: methods, node selectors,
//! conditional requests, MIME types, access and limits.

mod common;

use axum::http::StatusCode;
use common::*;

async fn with_list() -> Xcap {
    let x = Xcap::new();
    let r = x.put(RL_DOC, RL_MIME, SMALL_LIST).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    x
}

#[tokio::test]
async fn whole_document_put_get_replace_delete() {
    let x = Xcap::new();
    assert_eq!(x.get(RL_DOC).await.status, StatusCode::NOT_FOUND);
    let created = x.put(RL_DOC, RL_MIME, SMALL_LIST).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let first_etag = created.etag();

    let got = x.get(RL_DOC).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.content_type(), RL_MIME);
    assert_eq!(got.body, SMALL_LIST, "stored byte for byte");
    assert_eq!(got.etag(), first_etag);

    let replaced = x.put(RL_DOC, RL_MIME, SMALL_LIST).await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_ne!(replaced.etag(), first_etag, "a new tag on each change");

    let deleted = x.delete(RL_DOC).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(x.get(RL_DOC).await.status, StatusCode::NOT_FOUND);
    assert_eq!(x.delete(RL_DOC).await.status, StatusCode::NOT_FOUND);

    let changes = x.recorder.changes.lock().unwrap().clone();
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[0].auid, "resource-lists");
    assert_eq!(changes[0].user.as_str(), ALICE);
    assert_eq!(
        changes[0].selector,
        "resource-lists/users/sip:alice@example.com/index"
    );
    assert_eq!(changes[0].previous_etag, None);
    assert_eq!(
        changes[0].new_etag.as_deref().map(|e| format!("\"{e}\"")),
        Some(first_etag)
    );
    assert_eq!(changes[2].new_etag, None, "deleted");
}

#[tokio::test]
async fn element_get_by_name_position_attribute_and_both() {
    let x = with_list().await;
    let bob = r#"<entry uri="sip:bob@example.com"><display-name>Bob</display-name></entry>"#;
    for selector in [
        r#"resource-lists/list[@name="friends"]/entry[@uri="sip:bob@example.com"]"#,
        "resource-lists/list/entry[1]",
        "resource-lists/list/*[1]",
        "*/*/entry[1][@uri='sip:bob@example.com']",
        "rl:resource-lists/rl:list/rl:entry[1]",
    ] {
        let uri = format!(
            "{RL_DOC}/~~/{}?xmlns(rl=urn:ietf:params:xml:ns:resource-lists)",
            sel(selector)
        );
        let r = x.get(&uri).await;
        assert_eq!(r.status, StatusCode::OK, "{selector}");
        assert_eq!(r.body, bob, "{selector}");
        assert_eq!(r.content_type(), EL_MIME);
        assert!(r.headers.contains_key("etag"));
    }
    // Brackets and quotes left raw in the path work too.
    let raw = format!(r#"{RL_DOC}/~~/resource-lists/list/entry[2]"#);
    assert!(x.get(&raw).await.body.contains("carol"));
    for missing in [
        "resource-lists/list/entry[3]",
        r#"resource-lists/list/entry[1][@uri="sip:carol@example.com"]"#,
        "resource-lists/list/entry",
        "resource-lists/nothing",
    ] {
        let r = x.get(&format!("{RL_DOC}/~~/{}", sel(missing))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{missing}: zero or two");
    }
    // A prefix the query does not bind.
    let r = x.get(&format!("{RL_DOC}/~~/p:resource-lists")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = x.get(&format!("{RL_DOC}/~~/resource-lists/list[0]")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn attribute_and_namespace_selectors() {
    let x = with_list().await;
    let uri = format!("{RL_DOC}/~~/{}", sel("resource-lists/list/entry[2]/@uri"));
    let r = x.get(&uri).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "sip:carol@example.com");
    assert_eq!(r.content_type(), ATT_MIME);

    let ns = x
        .get(&format!("{RL_DOC}/~~/resource-lists/list/namespace::*"))
        .await;
    assert_eq!(ns.status, StatusCode::OK);
    assert_eq!(ns.content_type(), "application/xcap-ns+xml");
    assert_eq!(
        ns.body,
        r#"<list xmlns="urn:ietf:params:xml:ns:resource-lists"/>"#
    );
    // Namespace bindings are read-only.
    let r = x
        .put(
            &format!("{RL_DOC}/~~/resource-lists/list/namespace::*"),
            EL_MIME,
            "<x/>",
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn element_insert_replace_and_delete() {
    let x = with_list().await;
    let dave = format!(
        "{RL_DOC}/~~/{}",
        sel(r#"resource-lists/list[@name="friends"]/entry[@uri="sip:dave@example.com"]"#)
    );
    let body = r#"<entry uri="sip:dave@example.com"/>"#;
    let r = x.put(&dave, EL_MIME, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let got = x.get(&dave).await;
    assert_eq!(got.body, body);
    assert_eq!(got.etag(), r.etag());
    // Appended after the last entry, the rest of the text untouched.
    let doc = x.get(RL_DOC).await.body;
    assert!(
        doc.contains(r#"<entry uri="sip:carol@example.com"/><entry uri="sip:dave@example.com"/>"#)
    );
    assert!(doc.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resource-lists"));

    // Replace in place.
    let replaced = x
        .put(
            &dave,
            EL_MIME,
            r#"<entry uri="sip:dave@example.com"><display-name>Dave</display-name></entry>"#,
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert!(x.get(&dave).await.body.contains("Dave"));

    // Positional insert: becomes the second entry.
    let second = format!("{RL_DOC}/~~/{}", sel("resource-lists/list/entry[2]"));
    let eve = r#"<entry uri="sip:eve@example.com"/>"#;
    // entry[2] exists (carol): this is a replace of carol by eve.
    assert_eq!(x.put(&second, EL_MIME, eve).await.status, StatusCode::OK);
    let fifth = format!("{RL_DOC}/~~/{}", sel("resource-lists/list/entry[4]"));
    let frank = r#"<entry uri="sip:frank@example.com"/>"#;
    assert_eq!(
        x.put(&fifth, EL_MIME, frank).await.status,
        StatusCode::CREATED
    );
    assert_eq!(x.get(&fifth).await.body, frank);

    // Insert into an empty element written `<list/>`.
    let empty = r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="a"/></resource-lists>"#;
    assert_eq!(x.put(RL_DOC, RL_MIME, empty).await.status, StatusCode::OK);
    let first = format!("{RL_DOC}/~~/{}", sel("resource-lists/list/entry[1]"));
    assert_eq!(
        x.put(&first, EL_MIME, frank).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        x.get(RL_DOC).await.body,
        r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="a"><entry uri="sip:frank@example.com"/></list></resource-lists>"#
    );

    // Delete.
    assert_eq!(x.delete(&first).await.status, StatusCode::OK);
    assert_eq!(x.get(&first).await.status, StatusCode::NOT_FOUND);
    assert_eq!(x.delete(&first).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_content_and_prefixes_survive_a_change() {
    let x = Xcap::new();
    let doc = r#"<rl:resource-lists xmlns:rl="urn:ietf:params:xml:ns:resource-lists" xmlns:v="urn:vendor">
  <!-- kept -->
  <rl:list name="l"><v:extra v:flag="1">text</v:extra><rl:entry uri="sip:a@x"/></rl:list>
</rl:resource-lists>"#;
    assert_eq!(
        x.put(RL_DOC, RL_MIME, doc).await.status,
        StatusCode::CREATED
    );
    let uri = format!(
        "{RL_DOC}/~~/{}",
        sel(r#"resource-lists/list/entry[@uri="sip:b@x"]"#)
    );
    // The body uses the document's prefix, bound where it is inserted.
    let r = x.put(&uri, EL_MIME, r#"<rl:entry uri="sip:b@x"/>"#).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let after = x.get(RL_DOC).await.body;
    assert_eq!(
        after,
        doc.replace(
            r#"<rl:entry uri="sip:a@x"/>"#,
            r#"<rl:entry uri="sip:a@x"/><rl:entry uri="sip:b@x"/>"#
        )
    );
}

#[tokio::test]
async fn attribute_put_and_delete() {
    let x = with_list().await;
    let attr = format!(
        "{RL_DOC}/~~/{}",
        sel("resource-lists/list/entry[2]/@x-note")
    );
    // A new attribute (201), then a replaced one (200), escaped as needed.
    let r = x.put(&attr, ATT_MIME, "a &amp; b").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = x.put(&attr, ATT_MIME, "say \"hi\"").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(x.get(&attr).await.body, "say &quot;hi&quot;");
    assert!(x
        .get(RL_DOC)
        .await
        .body
        .contains(r#"x-note="say &quot;hi&quot;""#));
    assert_eq!(x.delete(&attr).await.status, StatusCode::OK);
    assert_eq!(x.get(&attr).await.status, StatusCode::NOT_FOUND);
    assert!(x
        .get(RL_DOC)
        .await
        .body
        .contains(r#"<entry uri="sip:carol@example.com"/>"#));
    // Not an attribute value.
    let r = x.put(&attr, ATT_MIME, "a < b").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("<not-xml-att-value/>"));
    // Changing the attribute the step selects by is not idempotent.
    let by_uri = format!(
        "{RL_DOC}/~~/{}",
        sel(r#"resource-lists/list/entry[@uri="sip:carol@example.com"]/@uri"#)
    );
    let r = x.put(&by_uri, ATT_MIME, "sip:zed@example.com").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("<cannot-insert/>"), "{}", r.body);
}

#[tokio::test]
async fn conditional_requests() {
    let x = with_list().await;
    let etag = x.get(RL_DOC).await.etag();
    let stale = "\"0000\"";

    // GET: If-None-Match matching gives 304 with the tag.
    let r = x
        .send("GET", RL_DOC, "alice", &[("if-none-match", &etag)], "")
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert_eq!(r.etag(), etag);
    let r = x
        .send("GET", RL_DOC, "alice", &[("if-none-match", stale)], "")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = x
        .send("GET", RL_DOC, "alice", &[("if-match", stale)], "")
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    // Element GETs use the document's tag too.
    let el = format!("{RL_DOC}/~~/resource-lists/list");
    let r = x
        .send("GET", &el, "alice", &[("if-none-match", &etag)], "")
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);

    // PUT with a stale If-Match: 412, nothing changes.
    let headers = |cond: &'static str, tag: &str| {
        vec![
            ("content-type", RL_MIME.to_string()),
            (cond, tag.to_string()),
        ]
    };
    let send = |h: Vec<(&'static str, String)>| {
        let x = &x;
        async move {
            let h: Vec<(&str, &str)> = h.iter().map(|(a, b)| (*a, b.as_str())).collect();
            x.send("PUT", RL_DOC, "alice", &h, SMALL_LIST).await
        }
    };
    assert_eq!(
        send(headers("if-match", stale)).await.status,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(x.get(RL_DOC).await.etag(), etag);
    // If-None-Match: * refuses to overwrite.
    assert_eq!(
        send(headers("if-none-match", "*")).await.status,
        StatusCode::PRECONDITION_FAILED
    );
    // The current tag (and *) pass.
    let r = send(headers("if-match", &etag)).await;
    assert_eq!(r.status, StatusCode::OK);
    let new = r.etag();
    assert_eq!(send(headers("if-match", "*")).await.status, StatusCode::OK);
    // The old tag is stale now, also for an element DELETE.
    let r = x
        .send(
            "DELETE",
            &format!("{RL_DOC}/~~/{}", sel("resource-lists/list/entry[1]")),
            "alice",
            &[("if-match", &new)],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);

    // No document: If-Match fails, If-None-Match: * creates.
    let other = "/xcap-root/resource-lists/users/sip:alice@example.com/other";
    let r = x
        .send(
            "PUT",
            other,
            "alice",
            &[("content-type", RL_MIME), ("if-match", "*")],
            SMALL_LIST,
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = x
        .send(
            "PUT",
            other,
            "alice",
            &[("content-type", RL_MIME), ("if-none-match", "*")],
            SMALL_LIST,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn content_types_are_checked() {
    let x = with_list().await;
    let r = x.put(RL_DOC, "application/xml", SMALL_LIST).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = x
        .put(
            RL_DOC,
            "application/resource-lists+xml; charset=utf-8",
            SMALL_LIST,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "parameters are ignored");
    let el = format!("{RL_DOC}/~~/{}", sel("resource-lists/list/entry[3]"));
    let r = x.put(&el, RL_MIME, r#"<entry uri="sip:x@y"/>"#).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let at = format!("{RL_DOC}/~~/resource-lists/list/@name");
    assert_eq!(
        x.put(&at, EL_MIME, "x").await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

#[tokio::test]
async fn users_reach_only_their_own_documents() {
    let x = with_list().await;
    // Bob reads or writes Alice's documents: 403.
    let r = x.send("GET", RL_DOC, "bob", &[], "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = x
        .send(
            "PUT",
            RL_DOC,
            "bob",
            &[("content-type", RL_MIME)],
            SMALL_LIST,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = x.send("DELETE", RL_DOC, "bob", &[], "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(x.get(RL_DOC).await.body, SMALL_LIST, "untouched");
    // No credentials: 401 with the challenge.
    let r = x.send("GET", RL_DOC, "", &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.contains_key("www-authenticate"));
    // The XUI is compared as an AOR: percent-encoded and case variants match.
    let encoded = "/xcap-root/resource-lists/users/sip%3Aalice%40EXAMPLE.com/index";
    assert_eq!(x.get(encoded).await.body, SMALL_LIST);
    // Global documents are read-only.
    let caps = x.get("/xcap-root/xcap-caps/global/index").await;
    assert_eq!(caps.status, StatusCode::OK);
    assert_eq!(caps.content_type(), "application/xcap-caps+xml");
    for auid in [
        "pres-rules",
        "org.openmobilealliance.pres-rules",
        "resource-lists",
        "rls-services",
        "pidf-manipulation",
    ] {
        assert!(
            caps.body.contains(&format!("<auid>{auid}</auid>")),
            "{auid}"
        );
    }
    assert!(caps.headers.contains_key("etag"));
    let r = x
        .put(
            "/xcap-root/xcap-caps/global/index",
            "application/xcap-caps+xml",
            &caps.body,
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers.get("allow").unwrap(), "GET");
    let r = x
        .put(
            "/xcap-root/resource-lists/global/index",
            RL_MIME,
            SMALL_LIST,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Unknown usages, paths outside the root, other methods.
    assert_eq!(
        x.get("/xcap-root/nope/users/sip:alice@example.com/index")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(x.get("/elsewhere").await.status, StatusCode::NOT_FOUND);
    let r = x.send("POST", RL_DOC, "alice", &[], "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn documents_past_the_size_limit_are_refused() {
    let x = Xcap::with_config(xcap::XcapConfig {
        max_document_size: 400,
        ..Default::default()
    });
    let big = format!(
        r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="{}"/></resource-lists>"#,
        "x".repeat(500)
    );
    assert_eq!(
        x.put(RL_DOC, RL_MIME, &big).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(x.get(RL_DOC).await.status, StatusCode::NOT_FOUND);
    // A change that grows a stored document past the limit is refused too.
    assert_eq!(
        x.put(RL_DOC, RL_MIME, SMALL_LIST).await.status,
        StatusCode::CREATED
    );
    let el = format!("{RL_DOC}/~~/{}", sel("resource-lists/list/entry[3]"));
    let grow = format!(r#"<entry uri="sip:{}@x"/>"#, "y".repeat(300));
    assert_eq!(
        x.put(&el, EL_MIME, &grow).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn a_custom_root() {
    let x = Xcap::with_config(xcap::XcapConfig {
        root: "/services/xcap".into(),
        ..Default::default()
    });
    let uri = "/services/xcap/resource-lists/users/sip:alice@example.com/index";
    assert_eq!(
        x.put(uri, RL_MIME, SMALL_LIST).await.status,
        StatusCode::CREATED
    );
    assert_eq!(x.get(RL_DOC).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_element_puts_all_land() {
    let x = std::sync::Arc::new(with_list().await);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let x = x.clone();
        tasks.push(tokio::spawn(async move {
            let uri = format!(
                "{RL_DOC}/~~/{}",
                sel(&format!(
                    r#"resource-lists/list/entry[@uri="sip:u{i}@example.com"]"#
                ))
            );
            x.put(
                &uri,
                EL_MIME,
                &format!(r#"<entry uri="sip:u{i}@example.com"/>"#),
            )
            .await
            .status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::CREATED);
    }
    let doc = x.get(RL_DOC).await.body;
    for i in 0..24 {
        assert!(doc.contains(&format!("sip:u{i}@example.com")), "u{i} lost");
    }
    // One change event per write, each from the tag the previous one left.
    let changes = x.recorder.changes.lock().unwrap().clone();
    assert_eq!(changes.len(), 25);
    for pair in changes.windows(2) {
        assert_eq!(pair[1].previous_etag, pair[0].new_etag);
    }
}
