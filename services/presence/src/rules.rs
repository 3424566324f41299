//! Presence authorization rules (RFC 5025 on RFC 4745 common policy): a pres-rules document
//! read into a [`RuleSet`], and its evaluation for one watcher into a [`Decision`].
//!
//! Read with quick-xml's namespace-aware reader, so any prefixes work. What the rules grant
//! is combined over every matching rule (RFC 4745 §10.2): sub-handling by the largest value,
//! transformations by union. A document with no matching rule grants nothing: the watcher
//! is blocked (RFC 4745 §10.2 gives the empty permission set, and RFC 5025 §3.2.1 makes
//! block, value 0, the default of the sub-handling permission).
//!
//! OMA's `<other-identity>` (OMA XDM common-policy extensions, which OMA clients use for
//! their default rule) matches a watcher no identity condition of the document matches. Not
//! supported, and so never matching (RFC 4745 §7: an unknown condition is false): the other
//! OMA conditions (`external-list`, `anonymous-request`) and any other namespace. Unknown
//! actions and transformations are ignored.

use std::collections::BTreeSet;

use pidf::{Attribute, Selector, Transformations};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use sip::Aor;
use store::UnixTime;
use thiserror::Error;

const COMMON_POLICY_NS: &str = "urn:ietf:params:xml:ns:common-policy";
const PRES_RULES_NS: &str = "urn:ietf:params:xml:ns:pres-rules";
const OMA_COMMON_POLICY_NS: &str = "urn:oma:xml:xdm:common-policy";

/// Largest pres-rules document read (an XCAP server keeps them far smaller).
const MAX_DOCUMENT: usize = 1 << 20;
/// Most rules evaluated per document.
const MAX_RULES: usize = 1000;

/// RFC 5025 §3.2.1 sub-handling, ordered by value (block 0, confirm 10, polite-block 20,
/// allow 30) so combining is `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum SubHandling {
    Block,
    Confirm,
    PoliteBlock,
    Allow,
}

impl SubHandling {
    fn parse(s: &str) -> Option<SubHandling> {
        Some(match s.trim() {
            "block" => SubHandling::Block,
            "confirm" => SubHandling::Confirm,
            "polite-block" => SubHandling::PoliteBlock,
            "allow" => SubHandling::Allow,
            _ => return None,
        })
    }
}

/// What the rules grant one watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub sub_handling: SubHandling,
    pub view: Transformations,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum RulesError {
    #[error("pres-rules document is not well-formed: {0}")]
    NotWellFormed(String),
    #[error("pres-rules document root is not common-policy ruleset")]
    WrongRoot,
    #[error("pres-rules document too large")]
    TooLarge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Except {
    Id(Identity),
    Domain(String),
}

/// A watcher identity as rules name it: an AOR when it reads as one (so
/// `sip:Bob@EXAMPLE.com` equals `sip:Bob@example.com`), else the text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    Aor(Aor),
    Other(String),
}

impl Identity {
    fn parse(s: &str) -> Identity {
        let s = s.trim();
        // RFC 5025 §3.1.1.2: ids are URIs; tolerate the bare user@host form.
        let uri = if s.contains(':') {
            s.to_string()
        } else {
            format!("sip:{s}")
        };
        match uri.parse::<Aor>() {
            Ok(aor) => Identity::Aor(aor),
            Err(_) => Identity::Other(s.to_string()),
        }
    }

    fn is(&self, watcher: &Aor) -> bool {
        match self {
            Identity::Aor(a) => a == watcher,
            Identity::Other(s) => s == watcher.as_str(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum IdentityMatch {
    One(Identity),
    /// `<many>`: everyone (in `domain` when given) but the exceptions.
    Many {
        domain: Option<String>,
        except: Vec<Except>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// RFC 4745 §7.1: matches when any `<one>` or `<many>` does.
    Identity(Vec<IdentityMatch>),
    /// RFC 4745 §7.2: matches when the presentity's sphere is one of these.
    Sphere(Vec<String>),
    /// RFC 4745 §7.3: matches inside any of these [from, until) intervals (Unix seconds).
    Validity(Vec<(i64, i64)>),
    /// OMA `<other-identity>`: no identity condition of the document matches the watcher.
    OtherIdentity,
    /// A condition this server does not know: never matches.
    Unsupported,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Rule {
    /// All must match (RFC 4745 §10.1); none means the rule applies to everyone.
    conditions: Vec<Condition>,
    sub_handling: Option<SubHandling>,
    transformations: Transformations,
}

/// A parsed pres-rules document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RuleSet {
    rules: Vec<Rule>,
}

/// What a rule is evaluated against.
pub(crate) struct Context<'a> {
    pub watcher: &'a Aor,
    /// The presentity's current sphere (from its composed person).
    pub sphere: Option<&'a str>,
    pub now: UnixTime,
}

/// A [`Context`] with what the whole document says of the watcher.
struct Evaluation<'a> {
    cx: &'a Context<'a>,
    /// Some identity condition of the document names the watcher.
    identified: bool,
}

impl RuleSet {
    /// Does any rule depend on the presentity's sphere (so a new publication may change
    /// what the rules grant)?
    pub(crate) fn uses_sphere(&self) -> bool {
        self.rules.iter().any(|r| {
            r.conditions
                .iter()
                .any(|c| matches!(c, Condition::Sphere(_)))
        })
    }

    /// Does any rule depend on time?
    pub(crate) fn uses_validity(&self) -> bool {
        self.rules.iter().any(|r| {
            r.conditions
                .iter()
                .any(|c| matches!(c, Condition::Validity(_)))
        })
    }

    /// RFC 4745 §10: the permissions of every matching rule, combined.
    pub(crate) fn evaluate(&self, cx: &Context<'_>) -> Decision {
        let identified = self.rules.iter().any(|r| {
            r.conditions.iter().any(|c| match c {
                Condition::Identity(any) => any.iter().any(|m| m.matches(cx.watcher)),
                _ => false,
            })
        });
        let ev = Evaluation { cx, identified };
        let mut sub_handling = SubHandling::Block;
        let mut view = Transformations::default();
        for rule in self.rules.iter().filter(|r| r.matches(&ev)) {
            if let Some(s) = rule.sub_handling {
                sub_handling = sub_handling.max(s);
            }
            view.union(&rule.transformations);
        }
        Decision { sub_handling, view }
    }

    pub(crate) fn parse(xml: &[u8]) -> Result<RuleSet, RulesError> {
        if xml.len() > MAX_DOCUMENT {
            return Err(RulesError::TooLarge);
        }
        let text =
            std::str::from_utf8(xml).map_err(|_| RulesError::NotWellFormed("not UTF-8".into()))?;
        Parser::new(text).ruleset()
    }
}

impl Rule {
    fn matches(&self, ev: &Evaluation<'_>) -> bool {
        self.conditions.iter().all(|c| c.matches(ev))
    }
}

impl Condition {
    fn matches(&self, ev: &Evaluation<'_>) -> bool {
        let cx = ev.cx;
        match self {
            Condition::Identity(any) => any.iter().any(|m| m.matches(cx.watcher)),
            Condition::Sphere(values) => cx
                .sphere
                .is_some_and(|s| values.iter().any(|v| v.eq_ignore_ascii_case(s))),
            Condition::Validity(intervals) => {
                let now = i64::try_from(cx.now.0).unwrap_or(i64::MAX);
                intervals
                    .iter()
                    .any(|&(from, until)| from <= now && now < until)
            }
            Condition::OtherIdentity => !ev.identified,
            Condition::Unsupported => false,
        }
    }
}

impl IdentityMatch {
    fn matches(&self, watcher: &Aor) -> bool {
        match self {
            IdentityMatch::One(id) => id.is(watcher),
            IdentityMatch::Many { domain, except } => {
                let in_domain = domain
                    .as_deref()
                    .is_none_or(|d| d.trim().eq_ignore_ascii_case(watcher.domain()));
                in_domain
                    && !except.iter().any(|e| match e {
                        Except::Id(id) => id.is(watcher),
                        Except::Domain(d) => d.trim().eq_ignore_ascii_case(watcher.domain()),
                    })
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ns {
    CommonPolicy,
    PresRules,
    OmaCommonPolicy,
    Other,
}

/// A start tag, resolved.
struct Tag {
    ns: Ns,
    local: String,
    empty: bool,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn is(&self, ns: Ns, local: &str) -> bool {
        self.ns == ns && self.local == local
    }
}

enum Ev {
    Start(Tag),
    End,
    Text(String),
    Eof,
}

struct Parser<'a> {
    reader: NsReader<&'a [u8]>,
}

fn bad(e: impl std::fmt::Display) -> RulesError {
    RulesError::NotWellFormed(e.to_string())
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        let mut reader = NsReader::from_str(text);
        reader.config_mut().check_end_names = true;
        reader.config_mut().trim_text(false);
        Parser { reader }
    }

    fn tag(&self, start: &BytesStart<'_>, empty: bool) -> Result<Tag, RulesError> {
        let (resolved, local) = self.reader.resolver().resolve_element(start.name());
        let ns = match resolved {
            ResolveResult::Bound(ns) if ns.into_inner() == COMMON_POLICY_NS => Ns::CommonPolicy,
            ResolveResult::Bound(ns) if ns.into_inner() == PRES_RULES_NS => Ns::PresRules,
            ResolveResult::Bound(ns) if ns.into_inner() == OMA_COMMON_POLICY_NS => {
                Ns::OmaCommonPolicy
            }
            ResolveResult::Unknown(p) => return Err(bad(format!("unbound prefix {p:?}"))),
            _ => Ns::Other,
        };
        let mut attrs = Vec::new();
        for a in start.attributes() {
            let a = a.map_err(bad)?;
            if a.key.as_namespace_binding().is_some() || a.key.prefix().is_some() {
                continue;
            }
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(bad)?;
            attrs.push((a.key.as_ref().to_owned(), value.into_owned()));
        }
        Ok(Tag {
            ns,
            local: local.as_ref().to_owned(),
            empty,
            attrs,
        })
    }

    fn next(&mut self) -> Result<Ev, RulesError> {
        loop {
            let event = self.reader.read_event().map_err(bad)?;
            return Ok(match event {
                Event::Start(s) => Ev::Start(self.tag(&s, false)?),
                Event::Empty(s) => Ev::Start(self.tag(&s, true)?),
                Event::End(_) => Ev::End,
                Event::Text(t) => Ev::Text(t.xml10_content().into_owned()),
                Event::CData(c) => Ev::Text(c.xml10_content().into_owned()),
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref().map_err(bad)? {
                        Some(c) => c.to_string(),
                        None => quick_xml::escape::resolve_predefined_entity(&r)
                            .ok_or_else(|| bad(format!("unknown entity &{};", &*r)))?
                            .to_string(),
                    };
                    Ev::Text(resolved)
                }
                Event::DocType(_) => return Err(bad("DOCTYPE not allowed")),
                Event::Eof => Ev::Eof,
                _ => continue,
            });
        }
    }

    /// Reads through the end of an element whose start tag was just read.
    fn skip(&mut self, tag: &Tag) -> Result<(), RulesError> {
        if tag.empty {
            return Ok(());
        }
        let mut open = 1usize;
        loop {
            match self.next()? {
                Ev::Start(t) if !t.empty => open += 1,
                Ev::End => {
                    open -= 1;
                    if open == 0 {
                        return Ok(());
                    }
                }
                Ev::Eof => return Err(bad("unclosed element")),
                _ => {}
            }
        }
    }

    /// The text content of an element whose start tag was just read (child elements
    /// skipped).
    fn text(&mut self, tag: &Tag) -> Result<String, RulesError> {
        let mut text = String::new();
        if tag.empty {
            return Ok(text);
        }
        loop {
            match self.next()? {
                Ev::Start(t) => self.skip(&t)?,
                Ev::Text(t) => text.push_str(&t),
                Ev::End => return Ok(text),
                Ev::Eof => return Err(bad("unclosed element")),
            }
        }
    }

    /// Calls `each` for every child element of `tag`, which must consume it.
    fn children(
        &mut self,
        tag: &Tag,
        mut each: impl FnMut(&mut Self, Tag) -> Result<(), RulesError>,
    ) -> Result<(), RulesError> {
        if tag.empty {
            return Ok(());
        }
        loop {
            match self.next()? {
                Ev::Start(t) => each(self, t)?,
                Ev::Text(_) => {}
                Ev::End => return Ok(()),
                Ev::Eof => return Err(bad("unclosed element")),
            }
        }
    }

    fn ruleset(mut self) -> Result<RuleSet, RulesError> {
        let root = loop {
            match self.next()? {
                Ev::Start(t) => break t,
                Ev::Text(t) if t.trim().is_empty() => {}
                Ev::Eof => return Err(RulesError::WrongRoot),
                _ => return Err(bad("content before the root element")),
            }
        };
        if !root.is(Ns::CommonPolicy, "ruleset") {
            return Err(RulesError::WrongRoot);
        }
        let mut rules = Vec::new();
        self.children(&root, |p, t| {
            if t.is(Ns::CommonPolicy, "rule") && rules.len() < MAX_RULES {
                rules.push(p.rule(&t)?);
                Ok(())
            } else {
                p.skip(&t)
            }
        })?;
        Ok(RuleSet { rules })
    }

    fn rule(&mut self, tag: &Tag) -> Result<Rule, RulesError> {
        let mut rule = Rule::default();
        self.children(tag, |p, t| match (t.ns, t.local.as_str()) {
            (Ns::CommonPolicy, "conditions") => p.conditions(&t, &mut rule.conditions),
            (Ns::CommonPolicy, "actions") => p.children(&t, |p, a| {
                if a.is(Ns::PresRules, "sub-handling") {
                    // An unknown value grants nothing (block is the floor anyway).
                    let value = p.text(&a)?;
                    rule.sub_handling =
                        Some(SubHandling::parse(&value).unwrap_or(SubHandling::Block));
                    Ok(())
                } else {
                    p.skip(&a)
                }
            }),
            (Ns::CommonPolicy, "transformations") => {
                p.transformations(&t, &mut rule.transformations)
            }
            _ => p.skip(&t),
        })?;
        Ok(rule)
    }

    fn conditions(&mut self, tag: &Tag, out: &mut Vec<Condition>) -> Result<(), RulesError> {
        self.children(tag, |p, t| {
            let condition = match (t.ns, t.local.as_str()) {
                (Ns::CommonPolicy, "identity") => Condition::Identity(p.identity(&t)?),
                (Ns::CommonPolicy, "sphere") => {
                    let values = t
                        .attr("value")
                        .unwrap_or("")
                        .split_ascii_whitespace()
                        .map(str::to_string)
                        .collect();
                    p.skip(&t)?;
                    Condition::Sphere(values)
                }
                (Ns::CommonPolicy, "validity") => Condition::Validity(p.validity(&t)?),
                (Ns::OmaCommonPolicy, "other-identity") => {
                    p.skip(&t)?;
                    Condition::OtherIdentity
                }
                _ => {
                    p.skip(&t)?;
                    Condition::Unsupported
                }
            };
            out.push(condition);
            Ok(())
        })
    }

    fn identity(&mut self, tag: &Tag) -> Result<Vec<IdentityMatch>, RulesError> {
        let mut any = Vec::new();
        self.children(tag, |p, t| {
            if t.is(Ns::CommonPolicy, "one") {
                if let Some(id) = t.attr("id") {
                    any.push(IdentityMatch::One(Identity::parse(id)));
                }
                p.skip(&t)
            } else if t.is(Ns::CommonPolicy, "many") {
                let domain = t.attr("domain").map(str::to_string);
                let mut except = Vec::new();
                p.children(&t, |p, e| {
                    if e.is(Ns::CommonPolicy, "except") {
                        if let Some(id) = e.attr("id") {
                            except.push(Except::Id(Identity::parse(id)));
                        } else if let Some(d) = e.attr("domain") {
                            except.push(Except::Domain(d.to_string()));
                        }
                    }
                    p.skip(&e)
                })?;
                any.push(IdentityMatch::Many { domain, except });
                Ok(())
            } else {
                p.skip(&t)
            }
        })?;
        Ok(any)
    }

    fn validity(&mut self, tag: &Tag) -> Result<Vec<(i64, i64)>, RulesError> {
        let mut intervals = Vec::new();
        let mut from = None;
        self.children(tag, |p, t| {
            if t.is(Ns::CommonPolicy, "from") {
                from = Some(date_time(&p.text(&t)?)?);
            } else if t.is(Ns::CommonPolicy, "until") {
                let until = date_time(&p.text(&t)?)?;
                // The schema pairs each until with the from before it.
                if let Some(from) = from.take() {
                    intervals.push((from, until));
                }
            } else {
                p.skip(&t)?;
            }
            Ok(())
        })?;
        Ok(intervals)
    }

    fn transformations(&mut self, tag: &Tag, out: &mut Transformations) -> Result<(), RulesError> {
        self.children(tag, |p, t| {
            if t.ns != Ns::PresRules {
                return p.skip(&t);
            }
            match t.local.as_str() {
                "provide-services" => p.provide(&t, &mut out.services, "all-services"),
                "provide-persons" => p.provide(&t, &mut out.persons, "all-persons"),
                "provide-devices" => p.provide(&t, &mut out.devices, "all-devices"),
                "provide-all-attributes" => {
                    out.all_attributes = true;
                    p.skip(&t)
                }
                "provide-unknown-attribute" => {
                    let ns = t.attr("ns").unwrap_or("").to_string();
                    let name = t.attr("name").unwrap_or("").to_string();
                    if boolean(&p.text(&t)?) {
                        out.unknown.insert((ns, name));
                    }
                    Ok(())
                }
                "provide-user-input" => {
                    // false, bare, thresholds or full (RFC 5025 §3.3.5).
                    if p.text(&t)?.trim() != "false" {
                        out.attributes.insert(Attribute::UserInput);
                    }
                    Ok(())
                }
                local => match attribute(local) {
                    Some(a) => {
                        if boolean(&p.text(&t)?) {
                            out.attributes.insert(a);
                        }
                        Ok(())
                    }
                    None => p.skip(&t),
                },
            }
        })
    }

    fn provide(&mut self, tag: &Tag, out: &mut pidf::Provide, all: &str) -> Result<(), RulesError> {
        let mut selectors = BTreeSet::new();
        let mut everything = false;
        self.children(tag, |p, t| {
            if t.ns != Ns::PresRules {
                return p.skip(&t);
            }
            let selector: fn(String) -> Selector = match t.local.as_str() {
                l if l == all => {
                    everything = true;
                    return p.skip(&t);
                }
                "class" => Selector::Class,
                "occurrence-id" => Selector::OccurrenceId,
                "deviceID" => Selector::DeviceId,
                "service-uri" => Selector::ServiceUri,
                "service-uri-scheme" => Selector::ServiceUriScheme,
                _ => return p.skip(&t),
            };
            let value = p.text(&t)?.trim().to_string();
            selectors.insert(selector(value));
            Ok(())
        })?;
        out.all |= everything;
        if out.all {
            out.selectors.clear();
        } else {
            out.selectors.extend(selectors);
        }
        Ok(())
    }
}

fn boolean(s: &str) -> bool {
    matches!(s.trim(), "true" | "1")
}

fn attribute(local: &str) -> Option<Attribute> {
    Some(match local {
        "provide-activities" => Attribute::Activities,
        "provide-class" => Attribute::Class,
        "provide-deviceID" => Attribute::DeviceId,
        "provide-mood" => Attribute::Mood,
        "provide-place-is" => Attribute::PlaceIs,
        "provide-place-type" => Attribute::PlaceType,
        "provide-privacy" => Attribute::Privacy,
        "provide-relationship" => Attribute::Relationship,
        "provide-status-icon" => Attribute::StatusIcon,
        "provide-sphere" => Attribute::Sphere,
        "provide-time-offset" => Attribute::TimeOffset,
        "provide-note" => Attribute::Note,
        _ => return None,
    })
}

/// An xs:dateTime as Unix seconds; a value without a zone is taken as UTC.
fn date_time(s: &str) -> Result<i64, RulesError> {
    let s = s.trim();
    let parsed = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .or_else(|_| {
            time::OffsetDateTime::parse(
                &format!("{s}Z"),
                &time::format_description::well_known::Rfc3339,
            )
        })
        .map_err(|e| bad(format!("bad date-time {s:?}: {e}")))?;
    Ok(parsed.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aor(s: &str) -> Aor {
        s.parse().unwrap()
    }

    fn decide(rules: &RuleSet, watcher: &str, sphere: Option<&str>, now: u64) -> Decision {
        rules.evaluate(&Context {
            watcher: &aor(watcher),
            sphere,
            now: UnixTime(now),
        })
    }

    const RULES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<cr:ruleset xmlns:cr="urn:ietf:params:xml:ns:common-policy" xmlns:x="urn:ietf:params:xml:ns:pres-rules">
  <cr:rule id="friends">
    <cr:conditions><cr:identity><cr:one id="sip:bob@example.com"/><cr:one id="sip:carol@example.com"/></cr:identity></cr:conditions>
    <cr:actions><x:sub-handling>allow</x:sub-handling></cr:actions>
    <cr:transformations>
      <x:provide-services><x:all-services/></x:provide-services>
      <x:provide-persons><x:occurrence-id>p1</x:occurrence-id></x:provide-persons>
      <x:provide-activities>true</x:provide-activities>
      <x:provide-mood>false</x:provide-mood>
    </cr:transformations>
  </cr:rule>
  <cr:rule id="corp">
    <cr:conditions><cr:identity><cr:many domain="corp.example.com"><cr:except id="sip:mallory@corp.example.com"/></cr:many></cr:identity></cr:conditions>
    <cr:actions><x:sub-handling>confirm</x:sub-handling></cr:actions>
  </cr:rule>
  <cr:rule id="not-evil">
    <cr:conditions><cr:identity><cr:many><cr:except domain="evil.example.net"/><cr:except domain="corp.example.com"/></cr:many></cr:identity></cr:conditions>
    <cr:actions><x:sub-handling>polite-block</x:sub-handling></cr:actions>
  </cr:rule>
  <cr:rule id="carol-extra">
    <cr:conditions><cr:identity><cr:one id="sip:carol@example.com"/></cr:identity></cr:conditions>
    <cr:actions><x:sub-handling>block</x:sub-handling></cr:actions>
    <cr:transformations><x:provide-unknown-attribute ns="urn:example:geo" name="geo">true</x:provide-unknown-attribute></cr:transformations>
  </cr:rule>
</cr:ruleset>"#;

    #[test]
    fn identities_one_many_domain_except() {
        let rules = RuleSet::parse(RULES.as_bytes()).unwrap();
        let bob = decide(&rules, "sip:bob@example.com", None, 0);
        assert_eq!(bob.sub_handling, SubHandling::Allow);
        assert!(bob.view.services.all);
        assert!(bob.view.attributes.contains(&Attribute::Activities));
        assert!(!bob.view.attributes.contains(&Attribute::Mood));
        assert!(bob
            .view
            .persons
            .selectors
            .contains(&Selector::OccurrenceId("p1".into())));
        // Max over matching rules: carol's block rule does not lower allow; the
        // transformations add up.
        let carol = decide(&rules, "sip:carol@example.com", None, 0);
        assert_eq!(carol.sub_handling, SubHandling::Allow);
        assert!(carol
            .view
            .unknown
            .contains(&("urn:example:geo".into(), "geo".into())));
        assert_eq!(
            decide(&rules, "sip:dave@corp.example.com", None, 0).sub_handling,
            SubHandling::Confirm
        );
        // Excepted by id from the corp rule, by domain from the catch-all.
        assert_eq!(
            decide(&rules, "sip:mallory@corp.example.com", None, 0).sub_handling,
            SubHandling::Block
        );
        assert_eq!(
            decide(&rules, "sip:zed@elsewhere.example.org", None, 0).sub_handling,
            SubHandling::PoliteBlock
        );
        assert_eq!(
            decide(&rules, "sip:eve@evil.example.net", None, 0).sub_handling,
            SubHandling::Block
        );
    }

    #[test]
    fn no_matching_rule_blocks_and_no_condition_matches_all() {
        let only_bob = r#"<ruleset xmlns="urn:ietf:params:xml:ns:common-policy"><rule id="a"><conditions><identity><one id="sip:bob@example.com"/></identity></conditions><actions><sub-handling xmlns="urn:ietf:params:xml:ns:pres-rules">allow</sub-handling></actions></rule></ruleset>"#;
        let rules = RuleSet::parse(only_bob.as_bytes()).unwrap();
        let eve = decide(&rules, "sip:eve@example.com", None, 0);
        assert_eq!(eve.sub_handling, SubHandling::Block);
        assert_eq!(eve.view, Transformations::default());

        let everyone = r#"<ruleset xmlns="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules"><rule id="a"><actions><pr:sub-handling>confirm</pr:sub-handling></actions></rule></ruleset>"#;
        let rules = RuleSet::parse(everyone.as_bytes()).unwrap();
        assert_eq!(
            decide(&rules, "sip:eve@example.com", None, 0).sub_handling,
            SubHandling::Confirm
        );
    }

    #[test]
    fn sphere_and_validity() {
        let doc = r#"<ruleset xmlns="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules">
          <rule id="work"><conditions><sphere value="work office"/></conditions><actions><pr:sub-handling>allow</pr:sub-handling></actions></rule>
          <rule id="window"><conditions><validity><from>2026-01-01T00:00:00Z</from><until>2026-01-02T00:00:00+00:00</until></validity></conditions><actions><pr:sub-handling>confirm</pr:sub-handling></actions></rule>
        </ruleset>"#;
        let rules = RuleSet::parse(doc.as_bytes()).unwrap();
        assert!(rules.uses_sphere() && rules.uses_validity());
        let jan1 = 1_767_225_600; // 2026-01-01T00:00:00Z
        assert_eq!(
            decide(&rules, "sip:x@example.com", Some("work"), 0).sub_handling,
            SubHandling::Allow
        );
        assert_eq!(
            decide(&rules, "sip:x@example.com", Some("home"), 0).sub_handling,
            SubHandling::Block
        );
        assert_eq!(
            decide(&rules, "sip:x@example.com", None, jan1 + 10).sub_handling,
            SubHandling::Confirm
        );
        assert_eq!(
            decide(&rules, "sip:x@example.com", None, jan1 + 86_400).sub_handling,
            SubHandling::Block
        );
    }

    #[test]
    fn oma_other_identity_catches_the_unlisted() {
        let doc = r#"<ruleset xmlns="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules" xmlns:ocp="urn:oma:xml:xdm:common-policy">
          <rule id="wp_prs_allow_own"><conditions><identity><one id="sip:bob@example.com"/></identity></conditions><actions><pr:sub-handling>block</pr:sub-handling></actions></rule>
          <rule id="wp_prs_unlisted"><conditions><ocp:other-identity/></conditions><actions><pr:sub-handling>confirm</pr:sub-handling></actions></rule>
        </ruleset>"#;
        let rules = RuleSet::parse(doc.as_bytes()).unwrap();
        assert_eq!(
            decide(&rules, "sip:x@example.com", None, 0).sub_handling,
            SubHandling::Confirm
        );
        assert_eq!(
            decide(&rules, "sip:bob@example.com", None, 0).sub_handling,
            SubHandling::Block
        );
    }

    #[test]
    fn unknown_conditions_never_match() {
        let doc = r#"<ruleset xmlns="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules" xmlns:ocp="urn:oma:xml:xdm:common-policy">
          <rule id="oma"><conditions><ocp:external-list/></conditions><actions><pr:sub-handling>allow</pr:sub-handling></actions></rule>
        </ruleset>"#;
        let rules = RuleSet::parse(doc.as_bytes()).unwrap();
        assert_eq!(
            decide(&rules, "sip:x@example.com", None, 0).sub_handling,
            SubHandling::Block
        );
    }

    #[test]
    fn bad_documents_are_errors() {
        assert_eq!(RuleSet::parse(b"<ruleset/>"), Err(RulesError::WrongRoot));
        assert!(
            RuleSet::parse(b"<ruleset xmlns=\"urn:ietf:params:xml:ns:common-policy\">").is_err()
        );
        assert!(RuleSet::parse(b"<a:ruleset/>").is_err());
    }
}
