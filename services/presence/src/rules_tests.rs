//! In-process checks of authorization by pres-rules, pidf-manipulation and xcap-diff, with
//! a recording edge and documents held in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::{
    DocumentChange, OutboundRequest, Presence, PresenceError, PublishRequest, SubscribeRequest,
};
use async_trait::async_trait;
use bytes::Bytes;
use sip::Aor;
use store::{FlowToken, StoreError};
use tokio::sync::mpsc;

use crate::tests::{header, subscribe, Recorder};
use crate::{Policy, PresenceConfig, PresenceDocuments, PresenceService};

const ALICE: &str = "sip:alice@example.com";
const RULES_SEL: &str = "pres-rules/users/sip:alice@example.com/index";
const MANIP_SEL: &str = "pidf-manipulation/users/sip:alice@example.com/index";
const LISTS_SEL: &str = "resource-lists/users/sip:alice@example.com/index";

/// Documents by selector, with ETags, as an XCAP store would hold them.
#[derive(Default)]
struct Documents {
    docs: Mutex<HashMap<String, (String, String)>>,
    etag: Mutex<u32>,
    /// pres-rules and pidf-manipulation reads, as a store would see them.
    reads: std::sync::atomic::AtomicUsize,
}

impl Documents {
    /// Stores a document and returns the change the XCAP role would send.
    fn put(&self, selector: &str, xml: &str) -> DocumentChange {
        let mut n = self.etag.lock().unwrap();
        *n += 1;
        let etag = format!("e{n}");
        let previous = self
            .docs
            .lock()
            .unwrap()
            .insert(selector.to_string(), (xml.to_string(), etag.clone()))
            .map(|(_, e)| e);
        DocumentChange {
            user: aor(ALICE),
            auid: selector.split('/').next().unwrap().to_string(),
            selector: selector.to_string(),
            previous_etag: previous,
            new_etag: Some(etag),
        }
    }

    fn get(&self, selector: &str) -> Option<String> {
        self.docs
            .lock()
            .unwrap()
            .get(selector)
            .map(|(xml, _)| xml.clone())
    }
}

#[async_trait]
impl PresenceDocuments for Documents {
    async fn pres_rules(&self, presentity: &Aor) -> Result<Option<String>, StoreError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(self.get(&format!("pres-rules/users/{presentity}/index")))
    }
    async fn pidf_manipulation(&self, presentity: &Aor) -> Result<Option<String>, StoreError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(self.get(&format!("pidf-manipulation/users/{presentity}/index")))
    }
    async fn documents(&self, user: &Aor) -> Result<Vec<(String, String)>, StoreError> {
        let needle = format!("/users/{user}/");
        Ok(self
            .docs
            .lock()
            .unwrap()
            .iter()
            .filter(|(sel, _)| sel.contains(&needle))
            .map(|(sel, (_, etag))| (sel.clone(), etag.clone()))
            .collect())
    }
    fn xcap_root(&self) -> String {
        "http://xcap.example.com/xcap-root/".into()
    }
}

fn aor(s: &str) -> Aor {
    s.parse().unwrap()
}

/// Requests the recorder saw, picked out by what they are, whatever order the per-watcher
/// queues sent them in.
struct Inbox {
    rx: mpsc::UnboundedReceiver<OutboundRequest>,
    held: Vec<OutboundRequest>,
}

impl Inbox {
    /// The first request (oldest first) `pick` accepts, waiting up to 5 s for it.
    async fn take(
        &mut self,
        what: &str,
        pick: impl Fn(&OutboundRequest) -> bool,
    ) -> OutboundRequest {
        if let Some(i) = self.held.iter().position(&pick) {
            return self.held.remove(i);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let r = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} within 5 s; held: {:#?}", self.held))
                .expect("recorder alive");
            if pick(&r) {
                return r;
            }
            self.held.push(r);
        }
    }

    /// The next NOTIFY to `watcher` (by its To) for `event`.
    async fn notify(&mut self, watcher: &str, event: &str) -> OutboundRequest {
        let to = format!("<{watcher}>");
        self.take(&format!("{event} NOTIFY to {watcher}"), |r| {
            r.to.starts_with(&to) && header(r, "Event") == event
        })
        .await
    }
}

fn body(r: &OutboundRequest) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn harness(config: PresenceConfig, docs: Arc<Documents>) -> (PresenceService, Inbox) {
    harness_with_store(config, docs, Arc::new(store::MemoryStore::new()))
}

fn harness_with_store(
    config: PresenceConfig,
    docs: Arc<Documents>,
    store: Arc<dyn store::Store>,
) -> (PresenceService, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let recorder = Arc::new(Recorder {
        tx,
        status: Mutex::new(200),
        delay: Duration::ZERO,
    });
    let svc = PresenceService::new(store, recorder, config).with_documents(docs);
    (
        svc,
        Inbox {
            rx,
            held: Vec::new(),
        },
    )
}

fn watcher(name: &str, call_id: &str) -> SubscribeRequest {
    let mut r = subscribe(call_id);
    let uri = format!("sip:{name}@example.com");
    r.watcher = aor(&uri);
    r.dialog.remote_uri = format!("<{uri}>;tag={call_id}");
    r.dialog.remote_tag = call_id.to_string();
    r
}

/// A SUBSCRIBE from alice to her own `event` package.
fn own(event: &str, call_id: &str) -> SubscribeRequest {
    let mut r = watcher("alice", call_id);
    r.event = event.into();
    r
}

fn publish(body: &str) -> PublishRequest {
    PublishRequest {
        presentity: aor(ALICE),
        event: "presence".into(),
        if_match: None,
        expires: Some(600),
        content_type: Some("application/pidf+xml".into()),
        body: Bytes::from(body.to_string()),
        flow: FlowToken("udp/a".into()),
        connection: false,
        authenticated: None,
    }
}

/// A tuple with a note, and a person with activities and a sphere.
fn rich(note: &str, sphere: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rp="urn:ietf:params:xml:ns:pidf:rpid" entity="{ALICE}">
<tuple id="t1"><status><basic>open</basic></status><contact>sip:alice@pc.example.com</contact><note>{note}</note></tuple>
<dm:person id="p1"><rp:activities><rp:meeting/></rp:activities><rp:sphere>{sphere}</rp:sphere></dm:person>
</presence>"#
    )
}

/// A pres-rules document of `rules` (each `<cr:rule>` without the ruleset around it), with
/// the pres-rules namespace as `pr`.
fn ruleset(rules: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<cr:ruleset xmlns:cr="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules">{rules}</cr:ruleset>"#
    )
}

fn rule(id: &str, conditions: &str, sub_handling: &str, transformations: &str) -> String {
    format!(
        r#"<cr:rule id="{id}"><cr:conditions>{conditions}</cr:conditions><cr:actions><pr:sub-handling>{sub_handling}</pr:sub-handling></cr:actions><cr:transformations>{transformations}</cr:transformations></cr:rule>"#
    )
}

fn one(who: &str) -> String {
    format!(r#"<cr:identity><cr:one id="sip:{who}@example.com"/></cr:identity>"#)
}

const ALL_SERVICES: &str = "<pr:provide-services><pr:all-services/></pr:provide-services>";

#[tokio::test]
async fn confirm_pending_then_allow_approves_then_block_rejects() {
    let docs = Arc::new(Documents::default());
    docs.put(RULES_SEL, &ruleset(&rule("everyone", "", "confirm", "")));
    let (svc, mut inbox) = harness(PresenceConfig::default(), docs.clone());
    svc.publish(publish(&rich("secret note", "work")))
        .await
        .unwrap();

    svc.subscribe(own("presence.winfo", "w1")).await.unwrap();
    let full = inbox.notify(ALICE, "presence.winfo").await;
    assert!(body(&full).contains(r#"state="full""#));

    // confirm: pending, no state, and the presentity sees it pending.
    svc.subscribe(watcher("bob", "b1")).await.unwrap();
    let pending = inbox.notify("sip:bob@example.com", "presence").await;
    assert!(
        header(&pending, "Subscription-State").starts_with("pending"),
        "{:?}",
        pending.headers
    );
    assert!(pending.body.is_empty());
    let winfo = body(&inbox.notify(ALICE, "presence.winfo").await);
    assert!(
        winfo.contains(r#"status="pending""#) && winfo.contains(r#"event="subscribe""#),
        "{winfo}"
    );
    assert!(winfo.contains("sip:bob@example.com"), "{winfo}");

    // An allow rule for bob, showing services but not notes: active with that view.
    let allow = ruleset(&format!(
        "{}{}",
        rule("everyone", "", "confirm", ""),
        rule("bob", &one("bob"), "allow", ALL_SERVICES)
    ));
    svc.documents_changed(docs.put(RULES_SEL, &allow))
        .await
        .unwrap();
    let active = inbox.notify("sip:bob@example.com", "presence").await;
    assert!(header(&active, "Subscription-State").starts_with("active"));
    let doc = body(&active);
    assert!(doc.contains("<basic>open</basic>"), "{doc}");
    assert!(
        !doc.contains("secret note"),
        "notes need provide-note: {doc}"
    );
    assert!(
        !doc.contains("person"),
        "persons need provide-persons: {doc}"
    );
    let winfo = body(&inbox.notify(ALICE, "presence.winfo").await);
    assert!(
        winfo.contains(r#"status="active""#) && winfo.contains(r#"event="approved""#),
        "{winfo}"
    );

    // Block: terminated;reason=rejected, nothing more shown.
    let block = ruleset(&rule("bob", &one("bob"), "block", ""));
    svc.documents_changed(docs.put(RULES_SEL, &block))
        .await
        .unwrap();
    let ended = inbox.notify("sip:bob@example.com", "presence").await;
    assert_eq!(
        header(&ended, "Subscription-State"),
        "terminated;reason=rejected"
    );
    assert!(ended.body.is_empty());
    let winfo = body(&inbox.notify(ALICE, "presence.winfo").await);
    assert!(
        winfo.contains(r#"status="terminated""#) && winfo.contains(r#"event="rejected""#),
        "{winfo}"
    );
    assert_eq!(
        svc.counts().await,
        (1, 1),
        "only alice's winfo subscription is left"
    );

    // And a new SUBSCRIBE from bob is refused.
    assert!(matches!(
        svc.subscribe(watcher("bob", "b2")).await,
        Err(PresenceError::Forbidden(_))
    ));
}

#[tokio::test]
async fn two_watchers_with_different_rules_get_different_views() {
    let docs = Arc::new(Documents::default());
    let rules = ruleset(&format!(
        "{}{}",
        rule(
            "bob",
            &one("bob"),
            "allow",
            &format!("{ALL_SERVICES}<pr:provide-note>true</pr:provide-note>")
        ),
        rule(
            "carol",
            &one("carol"),
            "allow",
            "<pr:provide-persons><pr:all-persons/></pr:provide-persons><pr:provide-activities>true</pr:provide-activities>"
        ),
    ));
    docs.put(RULES_SEL, &rules);
    let (svc, mut inbox) = harness(PresenceConfig::default(), docs);
    svc.subscribe(watcher("bob", "b1")).await.unwrap();
    svc.subscribe(watcher("carol", "c1")).await.unwrap();
    inbox.notify("sip:bob@example.com", "presence").await;
    inbox.notify("sip:carol@example.com", "presence").await;

    svc.publish(publish(&rich("in a meeting", "work")))
        .await
        .unwrap();
    let bob = body(&inbox.notify("sip:bob@example.com", "presence").await);
    let carol = body(&inbox.notify("sip:carol@example.com", "presence").await);
    assert!(
        bob.contains("<basic>open</basic>") && bob.contains("in a meeting"),
        "{bob}"
    );
    assert!(!bob.contains("activities"), "{bob}");
    assert!(
        carol.contains("<rp:activities><rp:meeting/></rp:activities>"),
        "{carol}"
    );
    assert!(
        !carol.contains("<tuple") && !carol.contains("in a meeting"),
        "{carol}"
    );
    assert!(
        !carol.contains("sphere"),
        "sphere needs provide-sphere: {carol}"
    );
}

#[tokio::test]
async fn polite_block_shows_a_neutral_document() {
    let docs = Arc::new(Documents::default());
    docs.put(
        RULES_SEL,
        &ruleset(&rule("bob", &one("bob"), "polite-block", ALL_SERVICES)),
    );
    let (svc, mut inbox) = harness(PresenceConfig::default(), docs);
    svc.publish(publish(&rich("here", "work"))).await.unwrap();
    svc.subscribe(watcher("bob", "b1")).await.unwrap();
    let r = inbox.notify("sip:bob@example.com", "presence").await;
    assert!(header(&r, "Subscription-State").starts_with("active"));
    let doc = body(&r);
    assert!(doc.contains("<basic>closed</basic>"), "{doc}");
    assert!(
        !doc.contains("open") && !doc.contains("here") && !doc.contains("person"),
        "{doc}"
    );
    // Nobody matched: blocked (403), whatever the configured policy.
    assert!(matches!(
        svc.subscribe(watcher("dave", "d1")).await,
        Err(PresenceError::Forbidden(_))
    ));
}

#[tokio::test]
async fn identity_many_with_domain_and_except() {
    let docs = Arc::new(Documents::default());
    let rules = ruleset(&rule(
        "domain",
        r#"<cr:identity><cr:many domain="example.com"><cr:except id="sip:eve@example.com"/></cr:many></cr:identity>"#,
        "allow",
        ALL_SERVICES,
    ));
    docs.put(RULES_SEL, &rules);
    let (svc, mut inbox) = harness(PresenceConfig::default(), docs);
    svc.subscribe(watcher("bob", "b1")).await.unwrap();
    let r = inbox.notify("sip:bob@example.com", "presence").await;
    assert!(header(&r, "Subscription-State").starts_with("active"));
    assert!(matches!(
        svc.subscribe(watcher("eve", "e1")).await,
        Err(PresenceError::Forbidden(_))
    ));
    let mut outsider = watcher("zed", "z1");
    outsider.watcher = aor("sip:zed@other.example.org");
    assert!(matches!(
        svc.subscribe(outsider).await,
        Err(PresenceError::Forbidden(_))
    ));
}

#[tokio::test]
async fn validity_windows() {
    let docs = Arc::new(Documents::default());
    let past = r#"<cr:validity><cr:from>2001-01-01T00:00:00Z</cr:from><cr:until>2001-01-02T00:00:00Z</cr:until></cr:validity>"#;
    let now = r#"<cr:validity><cr:from>2001-01-01T00:00:00Z</cr:from><cr:until>2999-01-01T00:00:00+01:00</cr:until></cr:validity>"#;
    docs.put(
        RULES_SEL,
        &ruleset(&format!(
            "{}{}",
            rule("old", &format!("{}{past}", one("bob")), "allow", ""),
            rule("current", &format!("{}{now}", one("carol")), "allow", "")
        )),
    );
    let (svc, mut inbox) = harness(PresenceConfig::default(), docs);
    assert!(matches!(
        svc.subscribe(watcher("bob", "b1")).await,
        Err(PresenceError::Forbidden(_))
    ));
    svc.subscribe(watcher("carol", "c1")).await.unwrap();
    let r = inbox.notify("sip:carol@example.com", "presence").await;
    assert!(header(&r, "Subscription-State").starts_with("active"));
}

#[tokio::test]
async fn sphere_rules_follow_the_presentity_state() {
    let docs = Arc::new(Documents::default());
    docs.put(
        RULES_SEL,
        &ruleset(&rule(
            "work",
            &format!(r#"{}<cr:sphere value="work"/>"#, one("bob")),
            "allow",
            ALL_SERVICES,
        )),
    );
    let (svc, mut inbox) = harness(PresenceConfig::default(), docs);
    let first = svc.publish(publish(&rich("busy", "work"))).await.unwrap();
    svc.subscribe(watcher("bob", "b1")).await.unwrap();
    let r = inbox.notify("sip:bob@example.com", "presence").await;
    assert!(header(&r, "Subscription-State").starts_with("active"));
    assert!(body(&r).contains("<basic>open</basic>"));

    // Alice goes home: the work-only rule no longer matches.
    let mut home = publish(&rich("busy", "home"));
    home.if_match = first.etag;
    svc.publish(home).await.unwrap();
    let ended = inbox.notify("sip:bob@example.com", "presence").await;
    assert_eq!(
        header(&ended, "Subscription-State"),
        "terminated;reason=rejected"
    );
}

#[tokio::test]
async fn pidf_manipulation_is_a_hard_state_under_publications() {
    let docs = Arc::new(Documents::default());
    let manip = |note: &str| {
        format!(
            r#"<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{ALICE}"><tuple id="hard"><status><basic>closed</basic></status><note>{note}</note></tuple></presence>"#
        )
    };
    docs.put(MANIP_SEL, &manip("on vacation"));
    // No pres-rules document: the configured policy (allow) applies.
    let (svc, mut inbox) = harness(PresenceConfig::default(), docs.clone());
    svc.subscribe(watcher("bob", "b1")).await.unwrap();
    let first = body(&inbox.notify("sip:bob@example.com", "presence").await);
    assert!(
        first.contains("on vacation") && first.contains(r#"id="hard""#),
        "{first}"
    );

    // A device publishes: both are there.
    let published = svc
        .publish(publish(&rich("at the beach", "home")))
        .await
        .unwrap();
    let both = body(&inbox.notify("sip:bob@example.com", "presence").await);
    assert!(
        both.contains("on vacation") && both.contains("at the beach"),
        "{both}"
    );

    // The device goes away: the hard state stays.
    let mut remove = publish("");
    remove.body = Bytes::new();
    remove.content_type = None;
    remove.if_match = published.etag;
    remove.expires = Some(0);
    svc.publish(remove).await.unwrap();
    let after = body(&inbox.notify("sip:bob@example.com", "presence").await);
    assert!(
        after.contains("on vacation") && !after.contains("at the beach"),
        "{after}"
    );

    // The document changes over XCAP: watchers hear it at once.
    svc.documents_changed(docs.put(MANIP_SEL, &manip("back monday")))
        .await
        .unwrap();
    let changed = body(&inbox.notify("sip:bob@example.com", "presence").await);
    assert!(
        changed.contains("back monday") && !changed.contains("on vacation"),
        "{changed}"
    );
}

#[tokio::test]
async fn xcap_diff_full_state_then_changes() {
    let docs = Arc::new(Documents::default());
    docs.put(RULES_SEL, &ruleset(""));
    docs.put(LISTS_SEL, "<resource-lists/>");
    let (svc, mut inbox) = harness(PresenceConfig::default(), docs.clone());

    // Only for one's own documents.
    let mut other = watcher("bob", "x0");
    other.event = "xcap-diff".into();
    assert!(matches!(
        svc.subscribe(other).await,
        Err(PresenceError::Forbidden(_))
    ));

    svc.subscribe(own("xcap-diff", "x1")).await.unwrap();
    let full = inbox.notify(ALICE, "xcap-diff").await;
    assert_eq!(
        full.content_type.as_deref(),
        Some("application/xcap-diff+xml")
    );
    let doc = body(&full);
    assert!(
        doc.contains(r#"xcap-root="http://xcap.example.com/xcap-root/""#),
        "{doc}"
    );
    assert!(
        doc.contains(&format!(r#"<document sel="{RULES_SEL}" new-etag="e1"/>"#)),
        "{doc}"
    );
    assert!(
        doc.contains(&format!(r#"<document sel="{LISTS_SEL}" new-etag="e2"/>"#)),
        "{doc}"
    );

    // One that watches only pres-rules, named in a resource-lists body.
    let mut only_rules = own("xcap-diff", "x2");
    only_rules.content_type = Some("application/resource-lists+xml".into());
    only_rules.body = Bytes::from(format!(
        r#"<?xml version="1.0"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list><entry uri="{RULES_SEL}"/></list></resource-lists>"#
    ));
    only_rules.dialog.call_id = "x2".into();
    svc.subscribe(only_rules).await.unwrap();
    let second_full = inbox.take("full state for x2", |r| r.call_id == "x2").await;
    let doc = body(&second_full);
    assert!(doc.contains(RULES_SEL) && !doc.contains(LISTS_SEL), "{doc}");

    // resource-lists changes: only the first hears; then pres-rules: both do.
    svc.documents_changed(docs.put(LISTS_SEL, "<resource-lists><list/></resource-lists>"))
        .await
        .unwrap();
    svc.documents_changed(docs.put(RULES_SEL, &ruleset(&rule("a", "", "allow", ""))))
        .await
        .unwrap();
    let lists = body(&inbox.take("lists diff", |r| r.call_id == "x1").await);
    assert!(
        lists.contains(&format!(
            r#"<document sel="{LISTS_SEL}" previous-etag="e2" new-etag="e3"/>"#
        )),
        "{lists}"
    );
    let rules = body(&inbox.take("rules diff", |r| r.call_id == "x1").await);
    assert!(
        rules.contains(&format!(
            r#"<document sel="{RULES_SEL}" previous-etag="e1" new-etag="e4"/>"#
        )),
        "{rules}"
    );
    let only = body(&inbox.take("rules diff for x2", |r| r.call_id == "x2").await);
    assert!(
        only.contains(RULES_SEL) && !only.contains(LISTS_SEL),
        "{only}"
    );
}

#[tokio::test]
async fn pending_watchers_survive_a_restart_and_are_approved_after_it() {
    let docs = Arc::new(Documents::default());
    docs.put(RULES_SEL, &ruleset(&rule("everyone", "", "confirm", "")));
    let shared: Arc<dyn store::Store> = Arc::new(store::MemoryStore::new());
    let (before, mut inbox) =
        harness_with_store(PresenceConfig::default(), docs.clone(), shared.clone());
    before.subscribe(watcher("bob", "b1")).await.unwrap();
    let pending = inbox.notify("sip:bob@example.com", "presence").await;
    assert!(header(&pending, "Subscription-State").starts_with("pending"));

    let (after, mut inbox) = harness_with_store(
        PresenceConfig {
            // The rules decide, not the default.
            policy: Policy::Allow,
            ..PresenceConfig::default()
        },
        docs.clone(),
        shared,
    );
    assert_eq!(after.restore(None).await.unwrap(), 1);
    assert_eq!(after.counts().await, (0, 1));
    after
        .documents_changed(docs.put(
            RULES_SEL,
            &ruleset(&rule("bob", &one("bob"), "allow", ALL_SERVICES)),
        ))
        .await
        .unwrap();
    let active = inbox.notify("sip:bob@example.com", "presence").await;
    assert!(header(&active, "Subscription-State").starts_with("active"));
    assert!(active.cseq > pending.cseq);
}

/// A presentity nobody watches costs no document read and no composition per PUBLISH: both
/// wait for the first watcher, who still gets the publications merged over the hard state.
#[tokio::test]
async fn documents_and_composition_wait_for_the_first_watcher() {
    use std::sync::atomic::Ordering::SeqCst;
    let docs = Arc::new(Documents::default());
    docs.put(
        MANIP_SEL,
        &format!(
            r#"<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{ALICE}"><tuple id="hard"><status><basic>closed</basic></status><note>on vacation</note></tuple></presence>"#
        ),
    );
    let (svc, mut inbox) = harness(PresenceConfig::default(), docs.clone());
    svc.publish(publish(&rich("first", "work"))).await.unwrap();
    svc.publish(publish(&rich("second", "work"))).await.unwrap();
    assert_eq!(docs.reads.load(SeqCst), 0, "documents read with no watcher");

    svc.subscribe(watcher("bob", "b1")).await.unwrap();
    let first = body(&inbox.notify("sip:bob@example.com", "presence").await);
    assert!(
        first.contains("second") && !first.contains(">first<") && first.contains("on vacation"),
        "{first}"
    );
    let reads = docs.reads.load(SeqCst);
    assert_eq!(reads, 2, "pres-rules and pidf-manipulation, once");

    // Watched now: each PUBLISH composes and notifies, from the documents already read.
    svc.publish(publish(&rich("third", "work"))).await.unwrap();
    let next = body(&inbox.notify("sip:bob@example.com", "presence").await);
    assert!(
        next.contains("third") && next.contains("on vacation"),
        "{next}"
    );
    assert_eq!(docs.reads.load(SeqCst), reads);
}
