//! Presence authorization by pres-rules managed over XCAP, end to end on
//! the real binary: documents PUT over HTTP change what watchers get at
//! once (RFC 5025 through RFC 4825), and XCAP itself asks for HTTP Digest
//! with the SIP users when a realm is configured (RFC 7616).

use std::net::SocketAddr;

use anyhow::{ensure, Context, Result};
use herald_tests::http;
use pidf::{WatcherEvent, WatcherStatus};
use testkit::presence::{Dialog, Notify, PRESENCE, PRESENCE_WINFO};
use testkit::{secs, Herald, UdpUa};

fn rules_path(owner: &str) -> String {
    format!("/xcap-root/pres-rules/users/{owner}/index")
}

/// A pres-rules document of `rules` (each a `<cr:rule>`).
fn ruleset(rules: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<cr:ruleset xmlns:cr="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules">{rules}</cr:ruleset>"#
    )
}

fn rule(id: &str, who: &str, sub_handling: &str, transformations: &str) -> String {
    format!(
        r#"<cr:rule id="{id}"><cr:conditions><cr:identity><cr:one id="{who}"/></cr:identity></cr:conditions><cr:actions><pr:sub-handling>{sub_handling}</pr:sub-handling></cr:actions><cr:transformations>{transformations}</cr:transformations></cr:rule>"#
    )
}

const ALL_SERVICES: &str = "<pr:provide-services><pr:all-services/></pr:provide-services>";
const NOTE: &str = "<pr:provide-note>true</pr:provide-note>";
const PERSONS: &str = "<pr:provide-persons><pr:all-persons/></pr:provide-persons><pr:provide-activities>true</pr:provide-activities>";

/// A tuple with a note and a person in a meeting.
fn rich(entity: &str, note: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rp="urn:ietf:params:xml:ns:pidf:rpid" entity="{entity}">
<tuple id="t1"><status><basic>open</basic></status><note>{note}</note></tuple>
<dm:person id="p1"><rp:activities><rp:meeting/></rp:activities></dm:person>
</presence>"#
    )
}

fn put_rules(xcap: SocketAddr, owner: &str, document: &str) -> Result<()> {
    let r = http(
        xcap,
        "PUT",
        &rules_path(owner),
        &[("Content-Type", "application/auth-policy+xml")],
        document,
    )?;
    ensure!(
        r.status == 200 || r.status == 201,
        "PUT pres-rules: {}",
        r.head
    );
    Ok(())
}

/// The next NOTIFY of `dialog` (the others' NOTIFYs may interleave).
fn next(ua: &mut UdpUa, dialog: &mut Dialog) -> Result<Notify> {
    ua.recv_notify(dialog, secs(5))
}

#[test]
fn approval_over_xcap_then_block() -> Result<()> {
    // confirm: with no rules yet, a watcher waits for the presentity.
    let herald = Herald::start(&["--presence-policy", "confirm"])?;
    let xcap = herald.xcap.context("XCAP address")?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let (a, b) = (alice.aor(), bob.aor());
    ensure!(alice.publish(&rich(&a, "in a meeting"), 600)?.status == 200);

    let (mut winfo, _) = alice.watch(&a, PRESENCE_WINFO, 600, secs(5))?;
    let (mut watching, first) = bob.watch(&a, PRESENCE, 600, secs(5))?;
    ensure!(first.is_pending() && !first.has_body(), "{:?}", first.state);
    let seen = next(&mut alice, &mut winfo)?.winfo()?;
    let w = &seen.lists[0].watchers[0];
    ensure!(
        w.uri == b && w.status == WatcherStatus::Pending,
        "winfo shows bob pending: {w:?}"
    );

    // The presentity allows bob (tuples with notes, no person data).
    put_rules(
        xcap,
        &a,
        &ruleset(&rule("bob", &b, "allow", &format!("{ALL_SERVICES}{NOTE}"))),
    )?;
    let active = next(&mut bob, &mut watching)?;
    ensure!(active.is_active(), "approved: {:?}", active.state);
    let doc = active.body_text();
    ensure!(
        doc.contains("<basic>open</basic>") && doc.contains("in a meeting"),
        "{doc}"
    );
    ensure!(
        !doc.contains("activities"),
        "person data filtered out: {doc}"
    );
    let seen = next(&mut alice, &mut winfo)?.winfo()?;
    let w = &seen.lists[0].watchers[0];
    ensure!(
        w.status == WatcherStatus::Active && w.event == WatcherEvent::Approved,
        "winfo shows the approval: {w:?}"
    );

    // Then blocks him: the subscription ends, rejected.
    put_rules(xcap, &a, &ruleset(&rule("bob", &b, "block", "")))?;
    let end = next(&mut bob, &mut watching)?;
    ensure!(
        end.is_terminated() && end.reason() == Some("rejected"),
        "blocked: {:?}",
        end.state
    );
    let (again, _) = bob.subscribe(&a, PRESENCE, 600)?;
    ensure!(again.status == 403, "a blocked watcher: {}", again.status);
    Ok(())
}

#[test]
fn two_watchers_see_what_their_rules_allow() -> Result<()> {
    let herald = Herald::start(&[])?;
    let xcap = herald.xcap.context("XCAP address")?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let mut carol = herald.udp_ua("carol")?;
    let (a, b, c) = (alice.aor(), bob.aor(), carol.aor());
    put_rules(
        xcap,
        &a,
        &ruleset(&format!(
            "{}{}",
            rule("bob", &b, "allow", &format!("{ALL_SERVICES}{NOTE}")),
            rule("carol", &c, "allow", PERSONS)
        )),
    )?;
    let (mut bob_d, _) = bob.watch(&a, PRESENCE, 600, secs(5))?;
    let (mut carol_d, _) = carol.watch(&a, PRESENCE, 600, secs(5))?;

    ensure!(alice.publish(&rich(&a, "in a meeting"), 600)?.status == 200);
    let to_bob = next(&mut bob, &mut bob_d)?.body_text();
    let to_carol = next(&mut carol, &mut carol_d)?.body_text();
    ensure!(
        to_bob.contains("in a meeting") && !to_bob.contains("activities"),
        "bob gets the tuple and its note only: {to_bob}"
    );
    ensure!(
        to_carol.contains("meeting/>") && !to_carol.contains("<tuple"),
        "carol gets the person only: {to_carol}"
    );
    Ok(())
}

#[test]
fn xcap_asks_for_digest_with_the_sip_users() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let creds = dir.path().join("users.toml");
    let creds = creds.to_str().context("utf-8 path")?;
    for user in ["alice", "bob"] {
        let out = Herald::run(
            &[
                "user",
                "add",
                &format!("{user}@example.com"),
                "--password-stdin",
                "--credentials",
                creds,
                "--realm",
                "example.com",
            ],
            Some(&format!("{user}-secret\n")),
        )?;
        ensure!(out.status.success(), "herald user add: {out:?}");
    }
    let herald = Herald::start(&["--realm", "example.com", "--credentials", creds])?;
    let xcap = herald.xcap.context("XCAP address")?;
    let path = rules_path("sip:alice@example.com");
    let doc = ruleset(&rule("bob", "sip:bob@example.com", "allow", ALL_SERVICES));
    let ct = ("Content-Type", "application/auth-policy+xml");

    // No credentials: challenged, SHA-256 and MD5 offered.
    let r = http(xcap, "PUT", &path, &[ct], &doc)?;
    ensure!(r.status == 401, "unauthenticated PUT: {}", r.head);
    let challenges: Vec<&str> = r
        .head
        .lines()
        .filter_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate"))
                .map(|(_, v)| v.trim())
        })
        .collect();
    ensure!(
        challenges.iter().any(|c| c.contains("SHA-256"))
            && challenges.iter().any(|c| c.contains("MD5")),
        "{challenges:?}"
    );
    let sha = challenges
        .iter()
        .filter_map(|c| testkit::digest::parse_challenge(c))
        .find(|c| c.algorithm == "SHA-256")
        .context("a SHA-256 challenge")?;
    // One nonce, so each answer counts up (a repeated nc is a replay).
    let answer = |user: &str, method: &str, uri: &str, nc: u32| {
        testkit::authorization(&sha, user, &format!("{user}-secret"), method, uri, nc)
    };

    // Alice, authenticated, writes her own rules.
    let auth = answer("alice", "PUT", &path, 1);
    let r = http(xcap, "PUT", &path, &[ct, ("Authorization", &auth)], &doc)?;
    ensure!(
        r.status == 201 || r.status == 200,
        "alice's PUT: {}",
        r.head
    );

    // Bob, authenticated, may neither read nor write them.
    let auth = answer("bob", "GET", &path, 2);
    let r = http(xcap, "GET", &path, &[("Authorization", &auth)], "")?;
    ensure!(r.status == 403, "bob reading alice's rules: {}", r.head);
    Ok(())
}
