//! Watcher information (RFC 3857 package, RFC 3858 documents): who
//! watches a presentity, shown to the presentity itself.

use sip::Aor;
use store::UnixTime;

use crate::state::{Authorization, Package, Presentity, Subscription};

/// One watcher as RFC 3858 §4 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WatcherEntry {
    pub id: String,
    pub status: &'static str,
    pub event: &'static str,
    pub uri: String,
    pub display_name: Option<String>,
    pub duration_subscribed: Option<u32>,
    pub expiration: Option<u32>,
}

/// The entry for a presence subscription, with the event that changed it.
pub(crate) fn entry(
    s: &Subscription,
    event: &'static str,
    terminated: bool,
    now: UnixTime,
) -> WatcherEntry {
    let status = if terminated {
        "terminated"
    } else {
        match s.authorization() {
            Authorization::Active => "active",
            Authorization::Pending => "pending",
        }
    };
    WatcherEntry {
        id: s.id().to_string(),
        status,
        event,
        uri: s.record.watcher().to_string(),
        display_name: s.record.watcher_display().map(str::to_string),
        duration_subscribed: Some(s.record.created_at.secs_until(now) as u32),
        expiration: (!terminated).then(|| now.secs_until(s.expires_at()) as u32),
    }
}

/// Every current watcher of the presentity's presence.
pub(crate) fn all(p: &Presentity, now: UnixTime) -> Vec<WatcherEntry> {
    let mut list: Vec<WatcherEntry> = p
        .subscriptions
        .values()
        .filter(|s| s.package() == Package::Presence)
        .map(|s| entry(s, s.last_event(), false, now))
        .collect();
    list.sort_by(|a, b| a.id.cmp(&b.id));
    list
}

/// Applies partial changes to a full list: replaced by id, terminated
/// watchers dropped (a full document lists current watchers).
pub(crate) fn apply_changes(all: &mut Vec<WatcherEntry>, changes: Vec<WatcherEntry>) {
    for c in changes {
        all.retain(|w| w.id != c.id);
        if c.status != "terminated" {
            all.push(c);
        }
    }
}

/// Tells every winfo subscriber of `p` about changed watchers.
pub(crate) fn changed(p: &Presentity, changes: Vec<WatcherEntry>) {
    if changes.is_empty() {
        return;
    }
    for s in p.subscriptions.values() {
        if s.package() == Package::Winfo {
            s.notifier.push(
                None,
                Some(crate::notify::Body::WinfoPartial(changes.clone())),
            );
        }
    }
}

/// The application/watcherinfo+xml document.
pub(crate) fn document(
    presentity: &Aor,
    version: u32,
    full: bool,
    list: &[WatcherEntry],
) -> String {
    let info = pidf::WatcherInfo {
        version,
        state: if full {
            pidf::WatcherInfoState::Full
        } else {
            pidf::WatcherInfoState::Partial
        },
        lists: vec![pidf::WatcherList {
            resource: presentity.to_string(),
            package: "presence".to_string(),
            watchers: list
                .iter()
                .map(|w| pidf::Watcher {
                    id: w.id.clone(),
                    status: w.status.parse().unwrap_or(pidf::WatcherStatus::Active),
                    event: w.event.parse().unwrap_or(pidf::WatcherEvent::Subscribe),
                    uri: w.uri.clone(),
                    display_name: w.display_name.clone(),
                    duration_subscribed: w.duration_subscribed,
                    expiration: w.expiration,
                })
                .collect(),
        }],
    };
    info.to_xml()
}

/// The static name of a stored RFC 3857 event (unknown ones read as
/// `subscribe`).
pub(crate) fn event_name(stored: &str) -> &'static str {
    store::WINFO_EVENTS
        .iter()
        .find(|e| **e == stored)
        .copied()
        .unwrap_or("subscribe")
}
