//! The RFC 4475 torture messages, byte-exact, one UDP datagram each, to a
//! running Herald (`../shared/vectors/rfc4475`, see its manifest.json).
//!
//! Each message goes to a fresh Herald so one cannot change how another
//! is treated (several share a branch and sent-by, which per RFC 3261
//! §17.2.3 makes them "the same transaction"; escnull, cparam01/02 and
//! regescrt register the same AORs). A second test sends the whole set to
//! one Herald and checks that it survives it.
//!
//! Where answers go: the messages' Vias name hosts such as
//! `host5.example.com` or `192.0.2.1`. A UDP server answers to the
//! source address (`received`) and the sent-by port, 5060 when absent
//! (RFC 3261 §18.2.2), or to the source port with `rport` (RFC 3581). A
//! Via naming TCP or TLS asks for a connection to that address. So the
//! messages are sent from port 5060 of a random loopback address
//! (127.x.y.z) that also listens on TCP 5060: whichever of these rules
//! Herald follows, its answer arrives here. Only TLS (bext01) and the
//! sent-by port 5050 (quotbal) cannot be caught, and both allow silence.
//!
//! Herald is a registrar and MESSAGE server, not a proxy: an INVITE to it
//! is refused (405, or 404/480 as for a user it cannot reach, or 501).

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use herald_tests::vectors_dir;
use sip::{ContactList, Frame, Limits, Message};
use testkit::{escape_bytes, millis, Herald, HeraldProcess, UdpUa};

/// How long after the liveness probe is answered an answer still counts.
const ANSWER_WINDOW: Duration = Duration::from_millis(700);

/// Refusals that make sense for an INVITE to a registrar/MESSAGE server.
const INVITE_REFUSED: &[u16] = &[404, 405, 480, 501];
/// OPTIONS to a user's AOR: answered by Herald itself (200), or refused
/// as for a user it does not know or cannot reach.
const OPTIONS_TO_USER: &[u16] = &[200, 404, 480];

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Must be answered with one of these codes.
    Code(&'static [u16]),
    /// One of these codes, or silence (the answer may be undeliverable).
    CodeOrSilence(&'static [u16]),
    /// Must be answered, with an error (>= 400).
    Rejected,
    /// An error (>= 400) or silence; never accepted.
    RejectedOrSilence,
    /// RFC 4475 allows a liberal reading: any answer or silence, as long
    /// as Herald survives.
    Liberal,
    /// A response or an unanswerable message: no answer at all.
    Silence,
}

/// One torture message: Herald's expected behaviour and why.
struct Case {
    verdict: &'static str,
    expect: Expect,
    why: &'static str,
    /// Extra checks on the answers received.
    check: Option<fn(&Outcome) -> Result<()>>,
}

const fn case(verdict: &'static str, expect: Expect, why: &'static str) -> Case {
    Case {
        verdict,
        expect,
        why,
        check: None,
    }
}

const fn checked(
    verdict: &'static str,
    expect: Expect,
    why: &'static str,
    check: fn(&Outcome) -> Result<()>,
) -> Case {
    Case {
        verdict,
        expect,
        why,
        check: Some(check),
    }
}

fn cases() -> BTreeMap<&'static str, Case> {
    use Expect::*;
    BTreeMap::from([
        // 3.1.1 valid messages: parsed and served, never 400.
        ("wsinv.dat", case("valid", Code(INVITE_REFUSED), "INVITE full of LWS, folding and compact forms: parsed, then refused as an INVITE")),
        ("intmeth.dat", case("valid", Code(&[405, 501]), "extension method: 405 with Allow (Herald's rule for unknown methods) or 501")),
        ("esc01.dat", case("valid", Code(INVITE_REFUSED), "escaped URIs: parsed, INVITE refused")),
        ("escnull.dat", checked("valid", Code(&[200]), "REGISTER with %00 in the user: accepted, two distinct contacts", escnull_two_contacts)),
        ("esc02.dat", case("valid", Code(&[405, 501]), "RE%47IST%45R is an unknown method, not REGISTER")),
        ("lwsdisp.dat", case("valid", Code(OPTIONS_TO_USER), "no LWS between display name and <: accepted")),
        ("longreq.dat", case("valid", Code(INVITE_REFUSED), "long values and 34 Vias: parsed, INVITE refused")),
        ("dblreq.dat", checked("valid", Code(&[200]), "the REGISTER is served; the INVITE after Content-Length is ignored", dblreq_invite_ignored)),
        ("semiuri.dat", case("valid", Code(OPTIONS_TO_USER), "user part with ';': parsed")),
        ("transports.dat", case("valid", Code(OPTIONS_TO_USER), "unknown Via transports further down: parsed")),
        ("mpart01.dat", case("valid", Code(&[200, 202, 403, 404, 408, 415, 480, 503]), "MESSAGE with a binary multipart body framed by Content-Length: served (stored 202, or refused by policy), never 400/413")),
        ("unreason.dat", case("valid", Silence, "a response (UTF-8 reason): nothing to answer")),
        ("noreason.dat", case("valid", Silence, "a response (empty reason): nothing to answer")),
        // 3.1.2 invalid messages: refused or dropped, never accepted
        // unless the RFC allows a liberal reading.
        ("badinv01.dat", case("invalid", RejectedOrSilence, "empty Via/Contact parameters")),
        ("clerr.dat", case("invalid", RejectedOrSilence, "Content-Length larger than the datagram (400 preferred)")),
        ("ncl.dat", case("invalid", RejectedOrSilence, "negative Content-Length")),
        ("scalar02.dat", case("invalid", RejectedOrSilence, "CSeq beyond 2^32: a REGISTER that must not succeed")),
        ("scalarlg.dat", case("invalid", Silence, "a response with overlarge scalars: dropped")),
        ("quotbal.dat", case("invalid", Liberal, "unterminated quote (liberal_ok); an INVITE in any case")),
        ("ltgtruri.dat", case("invalid", Liberal, "<> around the Request-URI (liberal_ok)")),
        ("lwsruri.dat", case("invalid", Liberal, "LWS inside the Request-URI (liberal_ok)")),
        ("lwsstart.dat", case("invalid", Liberal, "several SP in the request line (liberal_ok)")),
        ("trws.dat", case("invalid", Liberal, "SP after the version (liberal_ok)")),
        ("escruri.dat", case("invalid", Liberal, "escaped headers in the Request-URI (liberal_ok)")),
        ("baddate.dat", case("invalid", Liberal, "bad Date zone, Date is irrelevant to Herald (liberal_ok)")),
        ("regbadct.dat", case("invalid", Liberal, "Contact with ?headers outside <> (liberal_ok)")),
        ("badaspec.dat", case("invalid", Liberal, "spaces inside addr-spec (liberal_ok)")),
        ("baddn.dat", case("invalid", Liberal, "non-token display name, no final empty line (liberal_ok)")),
        ("badvers.dat", case("invalid", RejectedOrSilence, "SIP/7.0: 505 preferred")),
        ("mismatch01.dat", case("invalid", RejectedOrSilence, "CSeq method differs from the request line: 400 preferred")),
        ("mismatch02.dat", case("invalid", RejectedOrSilence, "unknown method and CSeq mismatch: 501 or 400 preferred")),
        ("bigcode.dat", case("invalid", Silence, "a response with code 4294967301: dropped")),
        // 3.2
        ("badbranch.dat", case("valid", Code(&[200, 400, 404, 480]), "branch is only the cookie: served, or a stateless 400")),
        // 3.3 valid syntax, semantic errors.
        ("insuf.dat", case("valid-semantic-error", CodeOrSilence(&[400]), "no Call-ID, From or To: 400, or dropped as unanswerable")),
        ("unkscm.dat", case("valid-semantic-error", Code(&[416]), "unknown Request-URI scheme: 416")),
        ("novelsc.dat", case("valid-semantic-error", Code(&[404, 416]), "soap.beep: scheme Herald never serves (416) or unknown URI (404)")),
        ("unksm2.dat", case("valid-semantic-error", Rejected, "To is isbn:, not a SIP AOR: the registrar refuses")),
        ("bext01.dat", checked("valid-semantic-error", CodeOrSilence(&[420]), "Require with unknown tags: 420 listing them (Via is TLS: may be unanswerable)", bext01_lists_unsupported)),
        ("invut.dat", case("valid-semantic-error", Code(&[404, 405, 415, 480, 501]), "INVITE with an unknown body type: refused")),
        ("regaut01.dat", case("valid-semantic-error", Code(&[200, 401]), "unknown Authorization scheme: the open registrar ignores it (200) or challenges (401)")),
        ("multi01.dat", case("valid-semantic-error", CodeOrSilence(&[400]), "two Call-IDs, CSeqs, Tos, Froms: 400")),
        ("mcl01.dat", case("valid-semantic-error", RejectedOrSilence, "two Content-Lengths: error or dropped")),
        ("bcast.dat", case("valid-semantic-error", Silence, "a response: never answered, never forwarded")),
        ("zeromf.dat", case("valid-semantic-error", Code(&[200, 404, 480, 483]), "Max-Forwards 0: 483, or served as the OPTIONS target (RFC 3261 §16.3 step 3)")),
        ("cparam01.dat", checked("valid", Code(&[200]), "REGISTER; unknownparam is a contact parameter", cparam01_param_not_in_uri)),
        ("cparam02.dat", case("valid", Code(&[200]), "REGISTER; unknownparam is a URI parameter")),
        ("regescrt.dat", checked("valid", Code(&[200]), "REGISTER; the binding keeps the escaped Route in its URI", regescrt_keeps_headers)),
        ("sdp01.dat", case("valid-semantic-error", Code(&[400, 404, 405, 406, 480, 501]), "INVITE whose Accept excludes SDP: refused")),
        // 3.4
        ("inv2543.dat", case("valid", Code(INVITE_REFUSED), "RFC 2543 INVITE (no branch, no Content-Length): parsed, refused as an INVITE")),
    ])
}

/// What came back for one torture message.
struct Outcome {
    name: String,
    /// Final responses, as received, with their status codes.
    finals: Vec<(u16, Vec<u8>)>,
}

impl Outcome {
    fn codes(&self) -> Vec<u16> {
        self.finals.iter().map(|(c, _)| *c).collect()
    }
    /// The first final response, parsed (only the checks that look at
    /// headers need this; a response echoing a torture message's odd
    /// values need not parse).
    fn first_response(&self) -> Result<sip::Response> {
        let Some((_, raw)) = self.finals.first() else {
            bail!("{}: no response", self.name);
        };
        match sip::parse(raw, &Limits::default()) {
            Ok(Message::Response(r)) => Ok(r),
            Ok(Message::Request(_)) => bail!("not a response"),
            Err(e) => bail!(
                "{}: cannot parse the answer ({e}):\n{}",
                self.name,
                escape_bytes(raw)
            ),
        }
    }
}

/// The code of a status line `SIP/2.0 NNN ...`, read without the parser.
fn status_code(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(b"SIP/2.0 ")?;
    let code = rest.get(..3)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

fn escnull_two_contacts(o: &Outcome) -> Result<()> {
    let r = o.first_response()?;
    let Some(ContactList::List(c)) = r.headers.contacts()? else {
        bail!("the 200 lists no contacts");
    };
    ensure!(c.len() == 2, "%00 and %00%00 are two bindings: {c:?}");
    Ok(())
}

fn dblreq_invite_ignored(o: &Outcome) -> Result<()> {
    ensure!(
        o.finals.len() == 1,
        "the trailing INVITE must be ignored, got {} answers",
        o.finals.len()
    );
    Ok(())
}

fn cparam01_param_not_in_uri(o: &Outcome) -> Result<()> {
    let r = o.first_response()?;
    let Some(ContactList::List(c)) = r.headers.contacts()? else {
        bail!("the 200 lists no contacts");
    };
    ensure!(!c.is_empty(), "no binding listed");
    for contact in &c {
        ensure!(
            contact.0.uri.param("unknownparam").is_none(),
            "unknownparam became a URI parameter: {}",
            contact.0
        );
    }
    Ok(())
}

fn regescrt_keeps_headers(o: &Outcome) -> Result<()> {
    let r = o.first_response()?;
    let Some(ContactList::List(c)) = r.headers.contacts()? else {
        bail!("the 200 lists no contacts");
    };
    ensure!(
        c.iter().any(|c| c
            .0
            .uri
            .headers
            .as_deref()
            .is_some_and(|h| h.contains("Route"))),
        "the binding lost its escaped Route header: {c:?}"
    );
    Ok(())
}

fn bext01_lists_unsupported(o: &Outcome) -> Result<()> {
    let Ok(r) = o.first_response() else {
        return Ok(()); // silence is allowed (TLS Via)
    };
    let tags: Vec<String> = r
        .headers
        .get_list(&sip::HeaderName::Unsupported)
        .iter()
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    for t in ["nothingsupportsthis", "nothingsupportsthiseither"] {
        ensure!(
            tags.iter().any(|x| x == t),
            "Unsupported {tags:?} lacks {t}"
        );
    }
    Ok(())
}

fn rfc4475_dir() -> PathBuf {
    vectors_dir().join("rfc4475")
}

/// name -> verdict, from manifest.json.
fn manifest() -> Result<BTreeMap<String, (String, bool)>> {
    let path = rfc4475_dir().join("manifest.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    let msgs = json["messages"]
        .as_object()
        .context("manifest has no messages")?;
    Ok(msgs
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                (
                    v["verdict"].as_str().unwrap_or_default().to_string(),
                    v["liberal_ok"].as_bool().unwrap_or(false),
                ),
            )
        })
        .collect())
}

/// A UDP socket and a TCP listener on port 5060 of a random 127.x.y.z,
/// feeding everything they receive into one channel.
struct Collector {
    udp: UdpSocket,
    rx: mpsc::Receiver<Vec<u8>>,
}

impl Collector {
    fn bind() -> Result<Collector> {
        use rand::Rng;
        let mut rng = rand::rng();
        for _ in 0..50 {
            let ip = Ipv4Addr::new(
                127,
                rng.random_range(1..=254),
                rng.random(),
                rng.random_range(1..=254),
            );
            let addr = SocketAddr::from((ip, 5060));
            let (Ok(udp), Ok(tcp)) = (UdpSocket::bind(addr), TcpListener::bind(addr)) else {
                continue;
            };
            let (tx, rx) = mpsc::channel();
            let u = udp.try_clone()?;
            let utx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while let Ok((n, _)) = u.recv_from(&mut buf) {
                    if utx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            });
            std::thread::spawn(move || {
                for conn in tcp.incoming() {
                    let Ok(mut conn) = conn else { break };
                    let tx = tx.clone();
                    std::thread::spawn(move || {
                        let limits = Limits::default();
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 16 * 1024];
                        while let Ok(n) = conn.read(&mut chunk) {
                            if n == 0 {
                                break;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                            loop {
                                match sip::frame_stream(&buf, &limits) {
                                    Ok(Frame::Message(m)) => {
                                        let _ = tx.send(buf.drain(..m).collect());
                                    }
                                    Ok(Frame::Ping(m)) | Ok(Frame::Skip(m)) => {
                                        buf.drain(..m);
                                    }
                                    Ok(Frame::Incomplete) => break,
                                    Err(_) => {
                                        let _ = tx.send(std::mem::take(&mut buf));
                                        break;
                                    }
                                }
                            }
                        }
                    });
                }
            });
            return Ok(Collector { udp, rx });
        }
        bail!("no free port 5060 on 50 random loopback addresses")
    }

    fn drain(&self) {
        while self.rx.try_recv().is_ok() {}
    }
}

/// Sends one message and gathers the answers.
fn run_one(
    name: &str,
    raw: &[u8],
    herald: &HeraldProcess,
    collector: &Collector,
    prober: &mut UdpUa,
) -> Result<Outcome> {
    collector.drain();
    collector.udp.send_to(raw, herald.udp)?;
    // Herald handles datagrams in arrival order; once the probe sent
    // after the message is answered, an answer to the message is due.
    let probe = prober
        .options()
        .with_context(|| format!("{name}: Herald stopped answering OPTIONS after it"))?;
    ensure!(probe.status == 200, "{name}: probe got {}", probe.status);

    let mut out = Outcome {
        name: name.to_string(),
        finals: Vec::new(),
    };
    let mut deadline = Instant::now() + ANSWER_WINDOW;
    while let Ok(bytes) = collector
        .rx
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        match status_code(&bytes) {
            Some(code) if code >= 200 => {
                out.finals.push((code, bytes));
                // A little longer, for a second answer (dblreq).
                deadline = deadline.min(Instant::now() + millis(300));
            }
            Some(_) => {}
            None => bail!(
                "{name}: Herald sent something other than a response to the torture message's source:\n{}",
                escape_bytes(&bytes)
            ),
        }
    }
    Ok(out)
}

fn judge(case: &Case, out: &Outcome) -> Result<()> {
    let codes = out.codes();
    // Retransmitted final responses repeat the first; judge the first.
    let first = codes.first().copied();
    let ok = match case.expect {
        Expect::Code(set) => first.is_some_and(|c| set.contains(&c)),
        Expect::CodeOrSilence(set) => first.is_none_or(|c| set.contains(&c)),
        Expect::Rejected => first.is_some_and(|c| c >= 400),
        Expect::RejectedOrSilence => first.is_none_or(|c| c >= 400),
        Expect::Liberal => true,
        Expect::Silence => first.is_none(),
    };
    ensure!(
        ok,
        "{}: expected {:?} ({}), got {}",
        out.name,
        case.expect,
        case.why,
        match first {
            Some(_) => format!(
                "{codes:?}:\n{}",
                out.finals
                    .iter()
                    .map(|(_, r)| escape_bytes(r))
                    .collect::<Vec<_>>()
                    .join("\n---\n")
            ),
            None => "no answer".to_string(),
        }
    );
    if let Some(check) = case.check {
        check(out).with_context(|| format!("{}: {}", out.name, case.why))?;
    }
    Ok(())
}

fn read_vector(name: &str) -> Result<Vec<u8>> {
    let path = rfc4475_dir().join("messages").join(name);
    std::fs::read(&path).with_context(|| format!("{}", path.display()))
}

#[test]
fn the_table_covers_the_manifest() -> Result<()> {
    let manifest = manifest()?;
    let cases = cases();
    let listed: Vec<&String> = manifest.keys().collect();
    let covered: Vec<&&str> = cases.keys().collect();
    ensure!(
        listed.len() == covered.len()
            && listed.iter().zip(&covered).all(|(a, b)| a.as_str() == **b),
        "manifest {listed:?} vs table {covered:?}"
    );
    for (name, (verdict, liberal_ok)) in &manifest {
        let case = &cases[name.as_str()];
        ensure!(
            case.verdict == verdict,
            "{name}: table says {}, manifest {verdict}",
            case.verdict
        );
        if matches!(case.expect, Expect::Liberal) {
            ensure!(
                *liberal_ok,
                "{name}: liberal without the manifest's liberal_ok"
            );
        }
        ensure!(
            verdict != "invalid" || !matches!(case.expect, Expect::Code(_)),
            "{name}: an invalid message cannot require an answer code"
        );
    }
    Ok(())
}

#[test]
fn each_message_on_a_fresh_herald() -> Result<()> {
    let collector = Collector::bind()?;
    let mut failures = Vec::new();
    let mut report = Vec::new();
    for (name, case) in cases() {
        let raw = read_vector(name)?;
        let mut herald = Herald::start(&[])?;
        let mut prober = herald.udp_ua("prober")?;
        let outcome = run_one(name, &raw, &herald, &collector, &mut prober);
        let verdict = outcome.and_then(|o| {
            report.push(format!("{name:16} {:22} {:?}", case.verdict, o.codes()));
            judge(&case, &o)
        });
        if !herald.is_running() {
            failures.push(format!("{name}: Herald exited\n{}", herald.output_tail()));
        } else if let Err(e) = verdict {
            failures.push(format!("{e:#}"));
        }
    }
    println!("{}", report.join("\n"));
    ensure!(
        failures.is_empty(),
        "{} of {} torture messages failed:\n\n{}",
        failures.len(),
        cases().len(),
        failures.join("\n\n")
    );
    Ok(())
}

#[test]
fn the_whole_set_on_one_herald_leaves_it_serving() -> Result<()> {
    let collector = Collector::bind()?;
    let mut herald = Herald::start(&[])?;
    let mut prober = herald.udp_ua("prober")?;
    for name in cases().keys() {
        let raw = read_vector(name)?;
        collector.udp.send_to(&raw, herald.udp)?;
        let probe = prober
            .options()
            .with_context(|| format!("no OPTIONS answer after {name}"))?;
        ensure!(
            probe.status == 200,
            "after {name}: OPTIONS got {}",
            probe.status
        );
        ensure!(herald.is_running(), "Herald exited after {name}");
    }
    // Nothing Herald sent back to the torture source was a request (it
    // must never forward these), and it still serves a full exchange.
    while let Ok(bytes) = collector.rx.recv_timeout(millis(300)) {
        ensure!(
            bytes.starts_with(b"SIP/2.0 "),
            "Herald sent a request to the torture source:\n{}",
            escape_bytes(&bytes)
        );
    }
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    assert_eq!(bob.register(3600)?.status, 200);
    herald_tests::message_round_trip(
        &mut alice,
        &mut bob,
        herald.udp,
        herald.tcp,
        "UDP",
        "still here",
    )?;
    Ok(())
}
