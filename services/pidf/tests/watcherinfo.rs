//! Watcher-info documents (RFC 3858).

mod common;

use common::{expanded_names, presence_doc};
use pidf::{
    PidfError, Watcher, WatcherEvent, WatcherInfo, WatcherInfoState, WatcherList, WatcherStatus,
    XmlLimits, PIDF_NS, WATCHERINFO_NS,
};

fn parse(body: &str) -> Result<WatcherInfo, PidfError> {
    WatcherInfo::parse(body.as_bytes(), &XmlLimits::default())
}

fn rfc_example() -> WatcherInfo {
    WatcherInfo::parse(
        &presence_doc("rfc3858-watcherinfo-example.xml"),
        &XmlLimits::default(),
    )
    .unwrap()
}

#[test]
fn parses_the_rfc3858_example() {
    let info = rfc_example();
    assert_eq!(
        info,
        WatcherInfo {
            version: 0,
            state: WatcherInfoState::Full,
            lists: vec![WatcherList {
                resource: "sip:professor@example.net".into(),
                package: "presence".into(),
                watchers: vec![
                    Watcher {
                        id: "8ajksjda7s".into(),
                        status: WatcherStatus::Active,
                        event: WatcherEvent::Approved,
                        uri: "sip:userA@example.net".into(),
                        display_name: None,
                        duration_subscribed: Some(509),
                        expiration: None,
                    },
                    Watcher {
                        id: "hh8juja87s997-ass7".into(),
                        status: WatcherStatus::Pending,
                        event: WatcherEvent::Subscribe,
                        uri: "sip:userB@example.org".into(),
                        display_name: Some("Mr. Subscriber".into()),
                        duration_subscribed: None,
                        expiration: None,
                    },
                ],
            }],
        }
    );
}

#[test]
fn to_xml_round_trips_with_the_rfc_structure() {
    let info = rfc_example();
    let xml = info.to_xml();
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        "{xml}"
    );
    assert_eq!(parse(&xml).unwrap(), info);
    // Same elements, in the same namespace and order, as the RFC's document.
    let original = String::from_utf8(presence_doc("rfc3858-watcherinfo-example.xml")).unwrap();
    assert_eq!(expanded_names(&xml), expanded_names(&original));
    assert!(expanded_names(&xml)
        .iter()
        .all(|(ns, _)| ns == WATCHERINFO_NS));
    // And the same attributes on the watcher elements.
    for attr in [
        "status=\"active\"",
        "id=\"8ajksjda7s\"",
        "duration-subscribed=\"509\"",
        "event=\"approved\"",
        "display-name=\"Mr. Subscriber\"",
        "version=\"0\"",
        "state=\"full\"",
        "resource=\"sip:professor@example.net\"",
        "package=\"presence\"",
    ] {
        assert!(xml.contains(attr), "{attr} missing in\n{xml}");
    }
}

fn every_status_and_event() -> WatcherInfo {
    use WatcherEvent::*;
    use WatcherStatus::*;
    let events = [
        Subscribe,
        Approved,
        Deactivated,
        Probation,
        Rejected,
        Timeout,
        Giveup,
        Noresource,
    ];
    let statuses = [Pending, Active, Waiting, Terminated];
    let watchers = events
        .iter()
        .enumerate()
        .map(|(i, &event)| Watcher {
            id: format!("w{i}"),
            status: statuses[i % statuses.len()],
            event,
            uri: format!("sip:user{i}@example.com;tag=a&b"),
            display_name: (i % 2 == 0).then(|| format!("\"Quoted\" <{i}> & 'co'\n\u{1}")),
            duration_subscribed: (i % 3 == 0).then_some(i as u32 * 100),
            expiration: (i % 3 == 1).then_some(u32::MAX),
        })
        .collect();
    WatcherInfo {
        version: 42,
        state: WatcherInfoState::Partial,
        lists: vec![
            WatcherList {
                resource: "sip:alice@example.com".into(),
                package: "presence".into(),
                watchers,
            },
            WatcherList {
                resource: "sip:alice@example.com".into(),
                package: "message-summary".into(),
                watchers: vec![],
            },
        ],
    }
}

#[test]
fn every_value_round_trips_and_text_is_escaped() {
    let info = every_status_and_event();
    let xml = info.to_xml();
    let back = parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    // The control character cannot be carried by XML and becomes U+FFFD; all else survives.
    let mut expected = info.clone();
    for w in &mut expected.lists[0].watchers {
        if let Some(name) = &mut w.display_name {
            *name = name.replace('\u{1}', "\u{FFFD}");
        }
    }
    assert_eq!(back, expected);
    assert!(
        xml.contains("&quot;Quoted&quot; &lt;0&gt; &amp; 'co'&#10;"),
        "{xml}"
    );
    assert!(xml.contains("tag=a&amp;b</watcher>"), "{xml}");
}

#[test]
fn invalid_documents() {
    let doc = |attrs: &str, watcher: &str| {
        format!(
            "<watcherinfo xmlns=\"{WATCHERINFO_NS}\" {attrs}><watcher-list resource=\"sip:a@b\" \
             package=\"presence\">{watcher}</watcher-list></watcherinfo>"
        )
    };
    let ok_watcher = "<watcher id=\"1\" status=\"active\" event=\"approved\">sip:x@y</watcher>";
    assert!(parse(&doc("version=\"1\" state=\"full\"", ok_watcher)).is_ok());
    assert_eq!(
        parse(&doc("state=\"full\"", ok_watcher)).unwrap_err(),
        PidfError::MissingAttribute {
            element: "watcherinfo",
            attribute: "version"
        }
    );
    assert!(matches!(
        parse(&doc("version=\"-1\" state=\"full\"", ok_watcher)).unwrap_err(),
        PidfError::InvalidAttribute {
            attribute: "version",
            ..
        }
    ));
    assert!(matches!(
        parse(&doc("version=\"1\" state=\"some\"", ok_watcher)).unwrap_err(),
        PidfError::InvalidAttribute {
            attribute: "state",
            ..
        }
    ));
    let bad_status = ok_watcher.replace("active", "sleeping");
    assert!(matches!(
        parse(&doc("version=\"1\" state=\"full\"", &bad_status)).unwrap_err(),
        PidfError::InvalidAttribute { attribute: "status", value, .. } if value == "sleeping"
    ));
    let bad_event = ok_watcher.replace("approved", "approve");
    assert!(matches!(
        parse(&doc("version=\"1\" state=\"full\"", &bad_event)).unwrap_err(),
        PidfError::InvalidAttribute {
            attribute: "event",
            ..
        }
    ));
    let no_id = ok_watcher.replace("id=\"1\" ", "");
    assert_eq!(
        parse(&doc("version=\"1\" state=\"full\"", &no_id)).unwrap_err(),
        PidfError::MissingAttribute {
            element: "watcher",
            attribute: "id"
        }
    );
    let bad_duration = ok_watcher.replace("id=\"1\"", "id=\"1\" duration-subscribed=\"soon\"");
    assert!(matches!(
        parse(&doc("version=\"1\" state=\"full\"", &bad_duration)).unwrap_err(),
        PidfError::InvalidAttribute {
            attribute: "duration-subscribed",
            ..
        }
    ));
    let pidf = format!("<presence xmlns=\"{PIDF_NS}\" entity=\"sip:a@b\"/>");
    assert!(matches!(
        parse(&pidf).unwrap_err(),
        PidfError::WrongNamespace { expected, .. } if expected == WATCHERINFO_NS
    ));
    assert!(matches!(
        parse("<watcherinfo").unwrap_err(),
        PidfError::NotWellFormed { .. }
    ));
}

#[test]
fn extensions_in_other_namespaces_are_skipped() {
    let body = format!(
        "<watcherinfo xmlns=\"{WATCHERINFO_NS}\" xmlns:x=\"urn:x\" version=\"3\" state=\"full\">\
         <watcher-list resource=\"sip:a@b\" package=\"presence\">\
         <x:extra><x:deep>1</x:deep></x:extra>\
         <watcher id=\"1\" status=\"active\" event=\"approved\">sip:x@y<x:inner/></watcher>\
         </watcher-list><x:after/></watcherinfo>"
    );
    let info = parse(&body).unwrap();
    assert_eq!(info.version, 3);
    assert_eq!(info.lists[0].watchers.len(), 1);
    assert_eq!(info.lists[0].watchers[0].uri, "sip:x@y");
}
