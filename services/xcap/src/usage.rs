//! The application usages Herald serves (RFC 4825 §5) and the checks each
//! makes before a document is stored.
//!
//! The checks stand in for the XML Schemas: root element and namespace,
//! required children and attributes, value types the schemas constrain,
//! and each usage's uniqueness constraints. Elements and attributes from
//! other namespaces are extension points in every schema here and pass.

use std::collections::HashSet;

use roxmltree::{Document, Node};

use crate::error::{Conflict, Exists};

pub(crate) const COMMON_POLICY_NS: &str = "urn:ietf:params:xml:ns:common-policy";
pub(crate) const PRES_RULES_NS: &str = "urn:ietf:params:xml:ns:pres-rules";
pub(crate) const RESOURCE_LISTS_NS: &str = "urn:ietf:params:xml:ns:resource-lists";
pub(crate) const RLS_SERVICES_NS: &str = "urn:ietf:params:xml:ns:rls-services";
pub(crate) const PIDF_NS: &str = "urn:ietf:params:xml:ns:pidf";
pub(crate) const XCAP_CAPS_NS: &str = "urn:ietf:params:xml:ns:xcap-caps";

/// One application usage.
#[derive(Debug)]
pub struct AppUsage {
    pub auid: &'static str,
    /// MIME type of its documents (415 for a whole-document PUT with another).
    pub mime: &'static str,
    /// Namespace of unprefixed element names in node selectors (§6.4).
    pub default_ns: &'static str,
    /// Namespaces its documents use, listed in xcap-caps.
    pub namespaces: &'static [&'static str],
    /// Only the generated global document exists; nothing is writable.
    pub read_only: bool,
    validate: fn(&Document<'_>) -> Result<(), Conflict>,
}

impl AppUsage {
    /// Checks a whole document before it is stored.
    pub fn validate(&self, doc: &Document<'_>) -> Result<(), Conflict> {
        (self.validate)(doc)
    }
}

/// Every usage served, in the order xcap-caps lists them.
pub static USAGES: &[AppUsage] = &[
    AppUsage {
        auid: "xcap-caps",
        mime: "application/xcap-caps+xml",
        default_ns: XCAP_CAPS_NS,
        namespaces: &[XCAP_CAPS_NS],
        read_only: true,
        validate: |_| Err(Conflict::ConstraintFailure("xcap-caps is read-only".into())),
    },
    // RFC 5025 §9.
    AppUsage {
        auid: "pres-rules",
        mime: "application/auth-policy+xml",
        default_ns: PRES_RULES_NS,
        namespaces: &[COMMON_POLICY_NS, PRES_RULES_NS],
        read_only: false,
        validate: validate_pres_rules,
    },
    // OMA Presence SIMPLE XDM: the same documents under OMA's AUID.
    AppUsage {
        auid: "org.openmobilealliance.pres-rules",
        mime: "application/auth-policy+xml",
        default_ns: PRES_RULES_NS,
        namespaces: &[COMMON_POLICY_NS, PRES_RULES_NS],
        read_only: false,
        validate: validate_pres_rules,
    },
    // RFC 4826 §3.4.
    AppUsage {
        auid: "resource-lists",
        mime: "application/resource-lists+xml",
        default_ns: RESOURCE_LISTS_NS,
        namespaces: &[RESOURCE_LISTS_NS],
        read_only: false,
        validate: validate_resource_lists,
    },
    // RFC 4826 §4.4.
    AppUsage {
        auid: "rls-services",
        mime: "application/rls-services+xml",
        default_ns: RLS_SERVICES_NS,
        namespaces: &[RLS_SERVICES_NS, RESOURCE_LISTS_NS],
        read_only: false,
        validate: validate_rls_services,
    },
    // RFC 4827 §4.
    AppUsage {
        auid: "pidf-manipulation",
        mime: "application/pidf+xml",
        default_ns: PIDF_NS,
        namespaces: &[PIDF_NS],
        read_only: false,
        validate: validate_pidf,
    },
];

pub fn usage(auid: &str) -> Option<&'static AppUsage> {
    USAGES.iter().find(|u| u.auid == auid)
}

/// The xcap-caps document (RFC 4825 §12), generated from [`USAGES`].
pub fn caps_document() -> String {
    let mut auids = String::new();
    let mut namespaces: Vec<&str> = Vec::new();
    for u in USAGES {
        auids.push_str(&format!("    <auid>{}</auid>\n", u.auid));
        for ns in u.namespaces {
            if !namespaces.contains(ns) {
                namespaces.push(ns);
            }
        }
    }
    let namespaces: String = namespaces
        .iter()
        .map(|ns| format!("    <namespace>{ns}</namespace>\n"))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <xcap-caps xmlns=\"{XCAP_CAPS_NS}\">\n  <auids>\n{auids}  </auids>\n  \
         <extensions/>\n  <namespaces>\n{namespaces}  </namespaces>\n</xcap-caps>\n"
    )
}

fn invalid(phrase: impl Into<String>) -> Conflict {
    Conflict::SchemaValidation(phrase.into())
}

fn is(node: &Node<'_, '_>, ns: &str, local: &str) -> bool {
    node.is_element() && node.tag_name().name() == local && node.tag_name().namespace() == Some(ns)
}

fn children_in<'a, 'i>(
    node: &Node<'a, 'i>,
    ns: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().namespace() == Some(ns))
}

fn root(doc: &Document<'_>, ns: &str, local: &str) -> Result<(), Conflict> {
    if is(&doc.root_element(), ns, local) {
        Ok(())
    } else {
        Err(invalid(format!(
            "the root element must be <{local}> in {ns}"
        )))
    }
}

fn required<'a>(node: &Node<'a, '_>, attr: &str) -> Result<&'a str, Conflict> {
    node.attribute(attr).ok_or_else(|| {
        invalid(format!(
            "<{}> needs the {attr} attribute",
            node.tag_name().name()
        ))
    })
}

/// Text content of a simple-typed element (no element children).
fn simple_text<'a>(node: &Node<'a, '_>) -> Result<&'a str, Conflict> {
    if node.children().any(|c| c.is_element()) {
        return Err(invalid(format!(
            "<{}> holds text only",
            node.tag_name().name()
        )));
    }
    Ok(node.text().unwrap_or("").trim())
}

fn boolean(node: &Node<'_, '_>) -> Result<(), Conflict> {
    match simple_text(node)? {
        "true" | "false" | "1" | "0" => Ok(()),
        _ => Err(invalid(format!(
            "<{}> must be a boolean",
            node.tag_name().name()
        ))),
    }
}

/// xs:dateTime, loosely: `YYYY-MM-DDThh:mm:ss` with optional fraction and zone.
fn date_time(node: &Node<'_, '_>) -> Result<(), Conflict> {
    let t = simple_text(node)?;
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let ok = b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "<{}> must be an xs:dateTime",
            node.tag_name().name()
        )))
    }
}

/// A name the document uses twice where it must be unique. `field` names
/// the attribute like the RFC 4825 §11 examples (`ruleset/rule/@id`);
/// `alt` suggests a free value.
fn unique<'a>(
    seen: &mut HashSet<&'a str>,
    value: &'a str,
    field: &str,
    alt: bool,
) -> Result<(), Conflict> {
    if seen.insert(value) {
        return Ok(());
    }
    let alt_values = if alt {
        (2..)
            .map(|n| format!("{value}-{n}"))
            .find(|v| !seen.contains(v.as_str()))
            .into_iter()
            .collect()
    } else {
        Vec::new()
    };
    Err(Conflict::Uniqueness(vec![Exists {
        field: field.to_string(),
        alt_values,
    }]))
}

// ---- pres-rules (RFC 5025 on common-policy, RFC 4745) ----

fn validate_pres_rules(doc: &Document<'_>) -> Result<(), Conflict> {
    let cp = COMMON_POLICY_NS;
    root(doc, cp, "ruleset")?;
    let mut ids = HashSet::new();
    for rule in children_in(&doc.root_element(), cp) {
        if rule.tag_name().name() != "rule" {
            return Err(invalid("<ruleset> holds <rule> elements only"));
        }
        // RFC 4745 §7: rule ids are xs:ID, unique in the document.
        unique(&mut ids, required(&rule, "id")?, "ruleset/rule/@id", true)?;
        let mut order = 0;
        for part in children_in(&rule, cp) {
            let rank = match part.tag_name().name() {
                "conditions" => 1,
                "actions" => 2,
                "transformations" => 3,
                other => return Err(invalid(format!("<rule> cannot hold <{other}>"))),
            };
            if rank <= order {
                return Err(invalid(
                    "<rule> holds conditions, actions, transformations once each, in that order",
                ));
            }
            order = rank;
            match rank {
                1 => validate_conditions(&part)?,
                2 => validate_actions(&part)?,
                _ => validate_transformations(&part)?,
            }
        }
    }
    Ok(())
}

fn validate_conditions(conditions: &Node<'_, '_>) -> Result<(), Conflict> {
    let cp = COMMON_POLICY_NS;
    for c in children_in(conditions, cp) {
        match c.tag_name().name() {
            "identity" => {
                for i in children_in(&c, cp) {
                    match i.tag_name().name() {
                        "one" => {
                            required(&i, "id")?;
                        }
                        "many" => {
                            for e in children_in(&i, cp) {
                                if e.tag_name().name() != "except" {
                                    return Err(invalid("<many> holds <except> only"));
                                }
                                if e.attribute("id").is_none() && e.attribute("domain").is_none() {
                                    return Err(invalid("<except> needs id or domain"));
                                }
                            }
                        }
                        other => return Err(invalid(format!("<identity> cannot hold <{other}>"))),
                    }
                }
            }
            "sphere" => {
                required(&c, "value")?;
            }
            "validity" => {
                let parts: Vec<_> = children_in(&c, cp).collect();
                if parts.is_empty() || parts.len() % 2 != 0 {
                    return Err(invalid("<validity> holds <from>/<until> pairs"));
                }
                for pair in parts.chunks(2) {
                    if pair[0].tag_name().name() != "from" || pair[1].tag_name().name() != "until" {
                        return Err(invalid("<validity> holds <from>/<until> pairs"));
                    }
                    date_time(&pair[0])?;
                    date_time(&pair[1])?;
                }
            }
            other => return Err(invalid(format!("<conditions> cannot hold <{other}>"))),
        }
    }
    Ok(())
}

fn validate_actions(actions: &Node<'_, '_>) -> Result<(), Conflict> {
    for a in children_in(actions, PRES_RULES_NS) {
        if a.tag_name().name() == "sub-handling" {
            // RFC 5025 §3.2.1.
            match simple_text(&a)? {
                "block" | "confirm" | "polite-block" | "allow" => {}
                _ => {
                    return Err(invalid(
                        "<sub-handling> is block, confirm, polite-block or allow",
                    ))
                }
            }
        }
    }
    Ok(())
}

fn validate_transformations(transformations: &Node<'_, '_>) -> Result<(), Conflict> {
    for t in children_in(transformations, PRES_RULES_NS) {
        match t.tag_name().name() {
            // RFC 5025 §3.3.1-3.3.3: all-X or a list of class/id/occurrence-id.
            "provide-devices" | "provide-persons" | "provide-services" => {
                let kids: Vec<_> = t.children().filter(|c| c.is_element()).collect();
                let all = kids.iter().any(|k| k.tag_name().name().starts_with("all-"));
                if all && kids.len() > 1 {
                    return Err(invalid(format!(
                        "<{}> holds either an all- element or a list",
                        t.tag_name().name()
                    )));
                }
            }
            // RFC 5025 §3.3.5.
            "provide-user-input" => match simple_text(&t)? {
                "false" | "bare" | "thresholds" | "full" => {}
                _ => {
                    return Err(invalid(
                        "<provide-user-input> is false, bare, thresholds or full",
                    ))
                }
            },
            "provide-all-attributes" | "provide-unknown-attribute" => {}
            // The provide-<rpid element> ones are booleans (§3.3.4).
            _ => boolean(&t)?,
        }
    }
    Ok(())
}

// ---- resource-lists (RFC 4826 §3) ----

fn validate_resource_lists(doc: &Document<'_>) -> Result<(), Conflict> {
    root(doc, RESOURCE_LISTS_NS, "resource-lists")?;
    let root = doc.root_element();
    let mut names = HashSet::new();
    for list in children_in(&root, RESOURCE_LISTS_NS) {
        if list.tag_name().name() != "list" {
            return Err(invalid("<resource-lists> holds <list> elements only"));
        }
        if let Some(name) = list.attribute("name") {
            unique(&mut names, name, "resource-lists/list/@name", true)?;
        }
        validate_list(&list, "resource-lists/list")?;
    }
    Ok(())
}

/// A `<list>` (listType): display-name first, then list, external, entry
/// and entry-ref in any order, each unique within this list (RFC 4826
/// §3.4.7: list name, entry uri, entry-ref ref, external anchor).
fn validate_list(list: &Node<'_, '_>, path: &str) -> Result<(), Conflict> {
    let rl = RESOURCE_LISTS_NS;
    let mut names = HashSet::new();
    let mut uris = HashSet::new();
    let mut refs = HashSet::new();
    let mut anchors = HashSet::new();
    for (i, child) in children_in(list, rl).enumerate() {
        match child.tag_name().name() {
            "display-name" if i == 0 => {
                simple_text(&child)?;
            }
            "list" => {
                if let Some(name) = child.attribute("name") {
                    unique(&mut names, name, &format!("{path}/list/@name"), true)?;
                }
                validate_list(&child, &format!("{path}/list"))?;
            }
            "entry" => {
                let uri = required(&child, "uri")?;
                unique(&mut uris, uri, &format!("{path}/entry/@uri"), false)?;
                validate_display_name_only(&child)?;
            }
            "entry-ref" => {
                let r = required(&child, "ref")?;
                unique(&mut refs, r, &format!("{path}/entry-ref/@ref"), false)?;
                validate_display_name_only(&child)?;
            }
            "external" => {
                let anchor = required(&child, "anchor")?;
                unique(
                    &mut anchors,
                    anchor,
                    &format!("{path}/external/@anchor"),
                    false,
                )?;
                // RFC 4826 §3.4.7: an absolute HTTP URI.
                if !(anchor.starts_with("http://") || anchor.starts_with("https://")) {
                    return Err(Conflict::ConstraintFailure(
                        "an external anchor must be an absolute HTTP URI".into(),
                    ));
                }
                validate_display_name_only(&child)?;
            }
            other => return Err(invalid(format!("<list> cannot hold <{other}> here"))),
        }
    }
    Ok(())
}

fn validate_display_name_only(node: &Node<'_, '_>) -> Result<(), Conflict> {
    for (i, c) in children_in(node, RESOURCE_LISTS_NS).enumerate() {
        if c.tag_name().name() != "display-name" || i > 0 {
            return Err(invalid(format!(
                "<{}> holds one <display-name> at most",
                node.tag_name().name()
            )));
        }
        simple_text(&c)?;
    }
    Ok(())
}

// ---- rls-services (RFC 4826 §4) ----

fn validate_rls_services(doc: &Document<'_>) -> Result<(), Conflict> {
    let rs = RLS_SERVICES_NS;
    root(doc, rs, "rls-services")?;
    let mut uris = HashSet::new();
    for service in children_in(&doc.root_element(), rs) {
        if service.tag_name().name() != "service" {
            return Err(invalid("<rls-services> holds <service> elements only"));
        }
        // RFC 4826 §4.4.7: a service URI is unique (checked per document).
        let uri = required(&service, "uri")?;
        unique(&mut uris, uri, "rls-services/service/@uri", false)?;
        let mut kids = children_in(&service, rs);
        match kids.next() {
            Some(k) if k.tag_name().name() == "resource-list" => {
                simple_text(&k)?;
            }
            Some(k) if k.tag_name().name() == "list" => {
                validate_list(&k, "rls-services/service/list")?;
            }
            _ => return Err(invalid("<service> starts with <resource-list> or <list>")),
        }
        match kids.next() {
            None => {}
            Some(p) if p.tag_name().name() == "packages" => {
                for package in children_in(&p, rs) {
                    if package.tag_name().name() != "package" {
                        return Err(invalid("<packages> holds <package> elements only"));
                    }
                    if simple_text(&package)?.is_empty() {
                        return Err(invalid("<package> names an event package"));
                    }
                }
            }
            Some(other) => {
                return Err(invalid(format!(
                    "<service> cannot hold <{}> here",
                    other.tag_name().name()
                )))
            }
        }
        if kids.next().is_some() {
            return Err(invalid("<service> holds one list and one <packages>"));
        }
    }
    Ok(())
}

// ---- pidf-manipulation (RFC 4827, a PIDF document, RFC 3863) ----

fn validate_pidf(doc: &Document<'_>) -> Result<(), Conflict> {
    let p = PIDF_NS;
    root(doc, p, "presence")?;
    let root = doc.root_element();
    required(&root, "entity")?;
    let mut ids = HashSet::new();
    for child in children_in(&root, p) {
        match child.tag_name().name() {
            "tuple" => {
                unique(
                    &mut ids,
                    required(&child, "id")?,
                    "presence/tuple/@id",
                    true,
                )?;
                let status = children_in(&child, p)
                    .next()
                    .filter(|s| s.tag_name().name() == "status");
                let status = status.ok_or_else(|| invalid("<tuple> starts with <status>"))?;
                for s in children_in(&status, p) {
                    if s.tag_name().name() == "basic" {
                        match simple_text(&s)? {
                            "open" | "closed" => {}
                            _ => return Err(invalid("<basic> is open or closed")),
                        }
                    }
                }
                for t in children_in(&child, p) {
                    if t.tag_name().name() == "timestamp" {
                        date_time(&t)?;
                    }
                }
            }
            "note" => {
                simple_text(&child)?;
            }
            other => return Err(invalid(format!("<presence> cannot hold <{other}>"))),
        }
    }
    Ok(())
}
