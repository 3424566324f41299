//! The registrar rules of RFC 3261 §10.3 and RFC 5626 §6 as Herald
//! applies them, seen from a client: interval checks (423), fetching,
//! several contacts with q, removing one or all, `*` only with
//! `Expires: 0`, the expiry limits, and outbound parameters kept.

use anyhow::{ensure, Result};
use sip::{Contact, HeaderName, Response};
use testkit::{response_contacts, Herald, UdpUa};

const ARGS: &[&str] = &[
    "--min-expires",
    "60",
    "--max-expires",
    "7200",
    "--default-expires",
    "1800",
];

/// REGISTER for `ua`'s AOR with these Contact values (one header line
/// each) and an optional Expires header.
fn register_with(ua: &mut UdpUa, contacts: &[&str], expires: Option<&str>) -> Result<Response> {
    let mut req = ua.fetch_bindings_request();
    for c in contacts {
        req.headers.push(HeaderName::Contact, *c);
    }
    if let Some(e) = expires {
        req.headers.push(HeaderName::Expires, e);
    }
    ua.transact(&req)
}

fn find<'a>(contacts: &'a [Contact], host_port: &str) -> Option<&'a Contact> {
    contacts.iter().find(|c| c.0.uri.host_port() == host_port)
}

fn status(resp: &Response) -> String {
    format!("{} {}", resp.status, resp.reason)
}

#[test]
fn too_brief_interval_gets_423_with_min_expires() -> Result<()> {
    let herald = Herald::start(ARGS)?;
    let mut bob = herald.udp_ua("bob")?;

    let r = bob.register(30)?;
    assert_eq!(r.status, 423, "Expires 30 < min 60: {}", status(&r));
    assert_eq!(r.header(&HeaderName::MinExpires).map(str::trim), Some("60"));

    // The contact parameter counts as much as the header.
    let c = format!("<{}>;expires=10", bob.contact_uri());
    let r = register_with(&mut bob, &[&c], None)?;
    assert_eq!(r.status, 423, "expires=10 < min 60: {}", status(&r));
    assert_eq!(r.header(&HeaderName::MinExpires).map(str::trim), Some("60"));

    // Nothing was bound by the refused requests.
    let r = bob.fetch_bindings()?;
    assert_eq!(r.status, 200);
    assert!(
        response_contacts(&r)?.is_empty(),
        "refused REGISTERs bound something: {r:?}"
    );

    // Exactly the minimum is fine.
    let r = bob.register(60)?;
    assert_eq!(r.status, 200, "{}", status(&r));
    Ok(())
}

#[test]
fn fetch_lists_every_binding_with_its_expiry() -> Result<()> {
    let herald = Herald::start(ARGS)?;
    // Two devices of one user, each registering its own contact.
    let mut phone = herald.udp_ua("bob")?;
    let mut laptop = herald.udp_ua("bob")?;
    assert_eq!(phone.register(3600)?.status, 200);
    let r = laptop.register(600)?;
    assert_eq!(r.status, 200);
    // The 200 to a REGISTER lists all current bindings (§10.3 step 8).
    assert_eq!(response_contacts(&r)?.len(), 2, "{r:?}");

    let fetched = phone.fetch_bindings()?;
    assert_eq!(fetched.status, 200);
    let contacts = response_contacts(&fetched)?;
    assert_eq!(contacts.len(), 2, "{contacts:?}");
    let p = find(&contacts, &phone.local_addr().to_string()).expect("phone's binding");
    let l = find(&contacts, &laptop.local_addr().to_string()).expect("laptop's binding");
    ensure!(
        p.expires().is_some_and(|e| e > 3500 && e <= 3600),
        "phone: {:?}",
        p.expires()
    );
    ensure!(
        l.expires().is_some_and(|e| e > 500 && e <= 600),
        "laptop: {:?}",
        l.expires()
    );
    Ok(())
}

#[test]
fn several_contacts_with_q_then_remove_one_then_all() -> Result<()> {
    let herald = Herald::start(ARGS)?;
    let mut bob = herald.udp_ua("bob")?;

    let c1 = format!("<{}>;q=0.7", bob.contact_uri());
    let c2 = "<sip:bob@192.0.2.10:5070>;q=0.3";
    // One header line with two values and the Expires header for both.
    let both = format!("{c1}, {c2}");
    let r = register_with(&mut bob, &[&both], Some("3600"))?;
    assert_eq!(r.status, 200, "{}", status(&r));
    let contacts = response_contacts(&r)?;
    assert_eq!(contacts.len(), 2, "{contacts:?}");
    let a = find(&contacts, &bob.local_addr().to_string()).expect("first contact");
    let b = find(&contacts, "192.0.2.10:5070").expect("second contact");
    assert_eq!(a.q()?, Some(700));
    assert_eq!(b.q()?, Some(300));
    for c in &contacts {
        ensure!(c.expires().is_some_and(|e| e > 0 && e <= 3600), "{c:?}");
    }

    // Remove the second one only (§10.2.2: expires=0 on that contact).
    let r = register_with(&mut bob, &["<sip:bob@192.0.2.10:5070>;expires=0"], None)?;
    assert_eq!(r.status, 200, "{}", status(&r));
    let contacts = response_contacts(&r)?;
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert!(find(&contacts, &bob.local_addr().to_string()).is_some());

    // Remove everything: `Contact: *` with `Expires: 0`.
    let r = register_with(&mut bob, &["*"], Some("0"))?;
    assert_eq!(r.status, 200, "{}", status(&r));
    assert!(response_contacts(&r)?.is_empty(), "{r:?}");
    let r = bob.fetch_bindings()?;
    assert!(response_contacts(&r)?.is_empty(), "{r:?}");
    Ok(())
}

#[test]
fn star_needs_expires_zero_and_no_other_contact() -> Result<()> {
    let herald = Herald::start(ARGS)?;
    let mut bob = herald.udp_ua("bob")?;
    assert_eq!(bob.register(3600)?.status, 200);

    // §10.3 step 6.
    let r = register_with(&mut bob, &["*"], None)?;
    assert_eq!(r.status, 400, "`*` without Expires: {}", status(&r));
    let r = register_with(&mut bob, &["*"], Some("3600"))?;
    assert_eq!(r.status, 400, "`*` with Expires: 3600: {}", status(&r));
    let other = format!("<{}>", bob.contact_uri());
    let r = register_with(&mut bob, &["*", &other], Some("0"))?;
    assert_eq!(r.status, 400, "`*` beside another contact: {}", status(&r));

    // None of them removed anything.
    let r = bob.fetch_bindings()?;
    assert_eq!(response_contacts(&r)?.len(), 1, "{r:?}");
    Ok(())
}

#[test]
fn expiry_limits_and_precedence() -> Result<()> {
    let herald = Herald::start(ARGS)?;
    let mut bob = herald.udp_ua("bob")?;

    // Longer than --max-expires: shortened (§10.3 step 7 lets the
    // registrar choose a shorter expiry), and the 200 says so.
    let r = bob.register(100_000)?;
    assert_eq!(r.status, 200);
    let e = response_contacts(&r)?[0].expires();
    ensure!(
        e.is_some_and(|e| e > 0 && e <= 7200),
        "asked 100000, max 7200, got {e:?}"
    );

    // No Expires anywhere: --default-expires.
    let mut carol = herald.udp_ua("carol")?;
    let c = format!("<{}>", carol.contact_uri());
    let r = register_with(&mut carol, &[&c], None)?;
    assert_eq!(r.status, 200);
    let e = response_contacts(&r)?[0].expires();
    ensure!(
        e.is_some_and(|e| e > 1790 && e <= 1800),
        "default 1800, got {e:?}"
    );

    // The contact's parameter wins over the Expires header (§10.2.1.1).
    let mut dave = herald.udp_ua("dave")?;
    let c = format!("<{}>;expires=120", dave.contact_uri());
    let r = register_with(&mut dave, &[&c], Some("3600"))?;
    assert_eq!(r.status, 200);
    let e = response_contacts(&r)?[0].expires();
    ensure!(
        e.is_some_and(|e| e > 110 && e <= 120),
        "expires=120 param, got {e:?}"
    );
    Ok(())
}

#[test]
fn instance_and_reg_id_are_kept() -> Result<()> {
    let herald = Herald::start(ARGS)?;
    let mut bob = herald.udp_ua("bob")?;
    let instance = "<urn:uuid:00000000-0000-1000-8000-000a95a0e128>";
    let c = format!(
        "<{};ob>;+sip.instance=\"{instance}\";reg-id=1",
        bob.contact_uri()
    );
    let mut req = bob.fetch_bindings_request();
    req.headers.push(HeaderName::Contact, c);
    req.headers.push(HeaderName::Expires, "3600");
    req.headers.push(HeaderName::Supported, "outbound, path");
    let r = bob.transact(&req)?;
    assert_eq!(r.status, 200, "{}", status(&r));
    let contacts = response_contacts(&r)?;
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0].sip_instance(), Some(instance));
    assert_eq!(contacts[0].reg_id(), Some(1));

    // RFC 5626 §6: the same instance and reg-id from a new address
    // replaces the binding instead of adding one.
    let mut moved = herald.udp_ua("bob")?;
    let c = format!(
        "<{};ob>;+sip.instance=\"{instance}\";reg-id=1",
        moved.contact_uri()
    );
    let mut req = moved.fetch_bindings_request();
    req.headers.push(HeaderName::Contact, c);
    req.headers.push(HeaderName::Expires, "3600");
    let r = moved.transact(&req)?;
    assert_eq!(r.status, 200, "{}", status(&r));
    let contacts = response_contacts(&r)?;
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(
        contacts[0].0.uri.host_port(),
        moved.local_addr().to_string()
    );
    Ok(())
}

#[test]
fn out_of_order_refresh_is_refused() -> Result<()> {
    let herald = Herald::start(ARGS)?;
    let mut bob = herald.udp_ua("bob")?;
    // Two REGISTERs on one Call-ID; the later CSeq arrives first.
    let early = bob.register_request(Some(3600));
    let late = bob.register_request(Some(600));
    assert_eq!(bob.transact(&late)?.status, 200);
    let r = bob.transact(&early)?;
    // §10.3 step 7: "the update MUST be aborted and the request fails".
    ensure!(
        r.status >= 400,
        "a stale CSeq must fail, got {}",
        status(&r)
    );
    let r = bob.fetch_bindings()?;
    let e = response_contacts(&r)?[0].expires();
    ensure!(
        e.is_some_and(|e| e <= 600),
        "the stale REGISTER changed the binding: {e:?}"
    );
    Ok(())
}
