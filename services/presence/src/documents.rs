//! A presentity's XCAP documents as presence uses them: pres-rules (RFC 5025) decide who
//! sees what, pidf-manipulation (RFC 4827) is a hard state composed under the SIP
//! publications, and any change reaches xcap-diff subscribers (RFC 5875).
//!
//! Presence reads them through [`PresenceDocuments`] (the XCAP store, wired by the binary)
//! on first use of a presentity and keeps them parsed with its state; the XCAP role calls
//! `documents_changed` on the owning shard, which re-reads the one that changed.

use std::sync::Arc;

use api::{DocumentChange, PresenceError};
use async_trait::async_trait;
use sip::Aor;
use store::{StoreError, UnixTime};

use crate::rules::RuleSet;
use crate::state::Presentity;
use crate::{authorize, compose, xcapdiff, Inner};

/// Where presence reads a user's XCAP documents.
#[async_trait]
pub trait PresenceDocuments: Send + Sync + 'static {
    /// The XML of the presentity's pres-rules document (RFC 5025 §9.6:
    /// `pres-rules/users/<xui>/index`), if it has one.
    async fn pres_rules(&self, presentity: &Aor) -> Result<Option<String>, StoreError>;

    /// The XML of the presentity's pidf-manipulation document (RFC 4827
    /// `pidf-manipulation/users/<xui>/index`), if it has one.
    async fn pidf_manipulation(&self, presentity: &Aor) -> Result<Option<String>, StoreError>;

    /// Every document of `user`, as (document selector relative to the XCAP
    /// root, current ETag): the full state of an xcap-diff subscription.
    async fn documents(&self, user: &Aor) -> Result<Vec<(String, String)>, StoreError>;

    /// The XCAP root URI clients use (`http://xcap.example.com/xcap-root/`),
    /// which xcap-diff documents name (RFC 5874 §4).
    fn xcap_root(&self) -> String;
}

/// The application usages presence reads (both names of pres-rules, RFC 5025 §9 and OMA).
const PRES_RULES_AUIDS: &[&str] = &["pres-rules", "org.openmobilealliance.pres-rules"];
const PIDF_MANIPULATION_AUID: &str = "pidf-manipulation";

/// The parsed documents of one presentity.
#[derive(Default)]
pub(crate) struct Documents {
    /// `None`: no pres-rules document (the configured policy applies).
    pub rules: Option<Arc<RuleSet>>,
    /// RFC 4827 hard state, composed under the publications.
    pub hard_state: Option<pidf::PidfDocument>,
}

async fn read_rules(
    source: &dyn PresenceDocuments,
    aor: &Aor,
) -> Result<Option<Arc<RuleSet>>, StoreError> {
    let Some(xml) = source.pres_rules(aor).await? else {
        return Ok(None);
    };
    Ok(Some(Arc::new(match RuleSet::parse(xml.as_bytes()) {
        Ok(rules) => rules,
        Err(e) => {
            // The XCAP server validates what it stores, so this is a bug or an old
            // document; it fails closed: no rule matches, everyone is blocked.
            tracing::warn!(%aor, error = %e, "pres-rules unreadable, blocking every watcher");
            RuleSet::default()
        }
    })))
}

async fn read_hard_state(
    inner: &Inner,
    source: &dyn PresenceDocuments,
    aor: &Aor,
) -> Result<Option<pidf::PidfDocument>, StoreError> {
    let Some(xml) = source.pidf_manipulation(aor).await? else {
        return Ok(None);
    };
    match pidf::PidfDocument::parse(xml.as_bytes(), &inner.config.xml_limits) {
        Ok(doc) => Ok(Some(doc)),
        Err(e) => {
            tracing::warn!(%aor, error = %e, "pidf-manipulation document unreadable, ignored");
            Ok(None)
        }
    }
}

/// Reads the presentity's documents if they are not loaded yet. Returns true when they were
/// just read (the caller recomposes and re-evaluates its watchers).
pub(crate) async fn ensure(inner: &Inner, p: &mut Presentity) -> Result<bool, StoreError> {
    if p.documents.is_some() {
        return Ok(false);
    }
    let Some(source) = inner.documents.get() else {
        p.documents = Some(Documents::default());
        return Ok(false);
    };
    let rules = read_rules(source.as_ref(), &p.aor).await?;
    let hard_state = read_hard_state(inner, source.as_ref(), &p.aor).await?;
    p.documents = Some(Documents { rules, hard_state });
    Ok(true)
}

/// Loads the documents for a presentity already in memory (a request touched it), and when
/// they are new, recomposes and brings its watchers in line with them.
pub(crate) async fn ensure_and_apply(
    inner: &Arc<Inner>,
    p: &mut Presentity,
    now: UnixTime,
) -> Result<(), PresenceError> {
    if ensure(inner, p).await? {
        compose::recompose(p);
        authorize::reauthorize(inner, p, now).await;
        // Watchers held from before (a restore whose read failed) see the hard state.
        authorize::notify_views(p);
    }
    Ok(())
}

/// `api::Presence::documents_changed`: re-reads the document that changed, applies it, and
/// tells the user's xcap-diff subscribers.
pub(crate) async fn changed(
    inner: &Arc<Inner>,
    change: DocumentChange,
) -> Result<(), PresenceError> {
    let now = UnixTime::now();
    let cell = inner.presentity(&change.user);
    let result = async {
        let mut p = cell.lock().await;
        crate::ensure_loaded(inner, &mut p).await?;
        let fresh = ensure(inner, &mut p).await?;
        if let Some(source) = inner.documents.get().filter(|_| !fresh) {
            let documents = p.documents.get_or_insert_with(Documents::default);
            if PRES_RULES_AUIDS.contains(&change.auid.as_str()) {
                documents.rules = read_rules(source.as_ref(), &change.user).await?;
            } else if change.auid == PIDF_MANIPULATION_AUID {
                documents.hard_state =
                    read_hard_state(inner, source.as_ref(), &change.user).await?;
            }
        }
        // RFC 4827 §3: the hard state is part of what watchers see.
        if compose::recompose(&mut p).is_some() {
            authorize::changed_state(inner, &mut p, now).await;
        }
        // RFC 5025 §3: a new rule set applies to the watchers there are, at once.
        authorize::reauthorize(inner, &mut p, now).await;
        xcapdiff::changed(&p, &change, inner);
        Ok::<(), PresenceError>(())
    }
    .await;
    drop(cell);
    inner.forget_if_empty(&change.user);
    result
}
