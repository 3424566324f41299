//! Watcher information documents (RFC 3858, `application/watcherinfo+xml`): who watches a
//! presentity, sent to the presentity's presence.winfo subscribers (RFC 3857).

use std::fmt;
use std::str::FromStr;

use crate::xml::{
    escape_text_into, skip, text_of, trim_xml, write_attribute, Element, Item, Ns, XmlCursor,
    WATCHERINFO_NS,
};
use crate::{PidfError, XmlLimits};

/// A whole watcher-info document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatcherInfo {
    /// Incremented by one for each document sent in one subscription (RFC 3858 §4.1).
    pub version: u32,
    /// Whether the document is the whole state or a change to apply.
    pub state: WatcherInfoState,
    /// One list per watched resource and event package.
    pub lists: Vec<WatcherList>,
}

/// `state` of `<watcherinfo>` (RFC 3858 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WatcherInfoState {
    /// The document holds every watcher.
    Full,
    /// The document holds only watchers whose state changed.
    Partial,
}

/// `<watcher-list>`: the watchers of one resource for one package (RFC 3858 §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatcherList {
    /// The watched resource (`sip:alice@example.com`).
    pub resource: String,
    /// The event package watched (`presence`).
    pub package: String,
    /// Its watchers.
    pub watchers: Vec<Watcher>,
}

/// `<watcher>`: one subscription to the resource (RFC 3858 §4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watcher {
    /// Identifies the subscription across documents.
    pub id: String,
    /// The subscription's state.
    pub status: WatcherStatus,
    /// What made it enter that state.
    pub event: WatcherEvent,
    /// The watcher's URI (the element's text).
    pub uri: String,
    /// The watcher's display name from its SUBSCRIBE.
    pub display_name: Option<String>,
    /// Seconds the subscription has existed.
    pub duration_subscribed: Option<u32>,
    /// Seconds until the subscription expires.
    pub expiration: Option<u32>,
}

macro_rules! xml_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The XML value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(()),
                }
            }
        }
    };
}

xml_enum!(
    /// `status` of a watcher (RFC 3858 §4.3, the RFC 3857 §3.2 state machine).
    WatcherStatus {
        /// Waiting for the presentity's authorization.
        Pending = "pending",
        /// Authorized and receiving notifications.
        Active = "active",
        /// Refused or expired while pending; kept so the presentity can still see it.
        Waiting = "waiting",
        /// Ended.
        Terminated = "terminated",
    }
);

xml_enum!(
    /// `event` of a watcher: the transition that led to its status (RFC 3857 §3.2).
    WatcherEvent {
        /// A new subscription.
        Subscribe = "subscribe",
        /// Authorized.
        Approved = "approved",
        /// Ended by the server, the watcher may subscribe again.
        Deactivated = "deactivated",
        /// Ended by the server, retry later.
        Probation = "probation",
        /// Refused by the presentity.
        Rejected = "rejected",
        /// Expired without a refresh.
        Timeout = "timeout",
        /// Pending too long without a decision.
        Giveup = "giveup",
        /// The resource no longer exists.
        Noresource = "noresource",
    }
);

impl WatcherInfoState {
    /// The XML value.
    pub fn as_str(self) -> &'static str {
        match self {
            WatcherInfoState::Full => "full",
            WatcherInfoState::Partial => "partial",
        }
    }
}

impl WatcherInfo {
    /// The MIME type of the document.
    pub const CONTENT_TYPE: &'static str = "application/watcherinfo+xml";

    /// Writes the document, with its XML declaration. Text and attributes are escaped, and
    /// characters XML cannot carry (controls in a display name) are replaced, so any value
    /// gives a well-formed document.
    pub fn to_xml(&self) -> String {
        let mut xml = String::with_capacity(160 + 200 * self.watcher_count());
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<watcherinfo");
        write_attribute(&mut xml, "xmlns", WATCHERINFO_NS);
        write_attribute(&mut xml, "version", &self.version.to_string());
        write_attribute(&mut xml, "state", self.state.as_str());
        xml.push_str(">\n");
        for list in &self.lists {
            xml.push_str("  <watcher-list");
            write_attribute(&mut xml, "resource", &list.resource);
            write_attribute(&mut xml, "package", &list.package);
            if list.watchers.is_empty() {
                xml.push_str("/>\n");
                continue;
            }
            xml.push_str(">\n");
            for w in &list.watchers {
                xml.push_str("    <watcher");
                write_attribute(&mut xml, "id", &w.id);
                write_attribute(&mut xml, "status", w.status.as_str());
                write_attribute(&mut xml, "event", w.event.as_str());
                if let Some(name) = &w.display_name {
                    write_attribute(&mut xml, "display-name", name);
                }
                if let Some(d) = w.duration_subscribed {
                    write_attribute(&mut xml, "duration-subscribed", &d.to_string());
                }
                if let Some(e) = w.expiration {
                    write_attribute(&mut xml, "expiration", &e.to_string());
                }
                xml.push('>');
                escape_text_into(&mut xml, &w.uri);
                xml.push_str("</watcher>\n");
            }
            xml.push_str("  </watcher-list>\n");
        }
        xml.push_str("</watcherinfo>\n");
        xml
    }

    fn watcher_count(&self) -> usize {
        self.lists.iter().map(|l| l.watchers.len()).sum()
    }

    /// Parses a watcher-info document. Required attributes and enumerated values are checked
    /// (RFC 3858 §5 schema); elements in other namespaces are skipped.
    pub fn parse(bytes: &[u8], limits: &XmlLimits) -> Result<WatcherInfo, PidfError> {
        let (mut cur, root) = XmlCursor::open_root(
            bytes,
            limits,
            Ns::Watcherinfo,
            WATCHERINFO_NS,
            "watcherinfo",
        )?;
        let version = required(&root, "watcherinfo", "version")?;
        let version = parse_value(&version, "watcherinfo", "version")?;
        let state = match required(&root, "watcherinfo", "state")?.as_str() {
            "full" => WatcherInfoState::Full,
            "partial" => WatcherInfoState::Partial,
            other => return Err(invalid("watcherinfo", "state", other)),
        };
        let mut info = WatcherInfo {
            version,
            state,
            lists: Vec::new(),
        };
        if !root.empty {
            loop {
                match cur.next()? {
                    Item::Start(el) if el.is(Ns::Watcherinfo, "watcher-list") => {
                        info.lists.push(watcher_list(&mut cur, &el)?);
                    }
                    Item::Start(el) => skip(&mut cur, &el)?,
                    Item::Text(_) => {}
                    Item::End | Item::Eof => break,
                }
            }
        }
        while !matches!(cur.next()?, Item::Eof) {}
        Ok(info)
    }
}

fn watcher_list(cur: &mut XmlCursor<'_>, el: &Element<'_>) -> Result<WatcherList, PidfError> {
    let mut list = WatcherList {
        resource: required(el, "watcher-list", "resource")?,
        package: required(el, "watcher-list", "package")?,
        watchers: Vec::new(),
    };
    if el.empty {
        return Ok(list);
    }
    loop {
        match cur.next()? {
            Item::Start(w) if w.is(Ns::Watcherinfo, "watcher") => {
                let id = required(&w, "watcher", "id")?;
                let status = required(&w, "watcher", "status")?;
                let status = status
                    .parse()
                    .map_err(|()| invalid("watcher", "status", &status))?;
                let event = required(&w, "watcher", "event")?;
                let event = event
                    .parse()
                    .map_err(|()| invalid("watcher", "event", &event))?;
                let display_name = w.attr("display-name");
                let duration_subscribed = optional_number(&w, "duration-subscribed")?;
                let expiration = optional_number(&w, "expiration")?;
                let uri = trim_xml(&text_of(cur, &w)?).to_owned();
                list.watchers.push(Watcher {
                    id,
                    status,
                    event,
                    uri,
                    display_name,
                    duration_subscribed,
                    expiration,
                });
            }
            Item::Start(other) => skip(cur, &other)?,
            Item::Text(_) => {}
            Item::End | Item::Eof => return Ok(list),
        }
    }
}

fn required(
    el: &Element<'_>,
    element: &'static str,
    attribute: &'static str,
) -> Result<String, PidfError> {
    el.attr(attribute)
        .ok_or(PidfError::MissingAttribute { element, attribute })
}

fn optional_number(el: &Element<'_>, attribute: &'static str) -> Result<Option<u32>, PidfError> {
    el.attr(attribute)
        .map(|v| parse_value(&v, "watcher", attribute))
        .transpose()
}

fn parse_value(
    value: &str,
    element: &'static str,
    attribute: &'static str,
) -> Result<u32, PidfError> {
    trim_xml(value)
        .parse()
        .map_err(|_| invalid(element, attribute, value))
}

fn invalid(element: &'static str, attribute: &'static str, value: &str) -> PidfError {
    PidfError::InvalidAttribute {
        element,
        attribute,
        value: value.chars().take(64).collect(),
    }
}
