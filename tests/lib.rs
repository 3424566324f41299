//! Cross-service tests live beside this file, one per behaviour; the
//! shared vocabulary is in `services/testkit`. What is here is the few
//! checks more than one behaviour file makes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use sip::{HeaderName, Method, Request, Response, Uri};
use testkit::{secs, Transport, Ua};

/// Where the shared test vectors are: `../shared/vectors` from the
/// workspace root, found from this package's directory.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("shared")
        .join("vectors")
}

/// Checks that `got` is `sent` as delivered to the contact `contact`:
/// Request-URI replaced by the contact (RFC 3261 §16.6 step 6), Herald's
/// Via on top (`herald` is the address of the socket it sent from,
/// `transport` its Via token), and From, To, Call-ID, CSeq, Content-Type
/// and body unchanged. Whether the rest of the sender's request (its Vias,
/// Max-Forwards) travels along is [`assert_proxy_transparent`]'s part.
pub fn assert_delivered(
    sent: &Request,
    got: &Request,
    contact: &str,
    herald: SocketAddr,
    transport: &str,
) -> Result<()> {
    ensure!(
        got.method == sent.method,
        "method {} became {}",
        sent.method,
        got.method
    );

    let want = Uri::parse(contact).context("contact")?;
    ensure!(
        got.uri.user == want.user && got.uri.host == want.host && got.uri.port == want.port,
        "the Request-URI must be the registered contact (RFC 3261 §16.6 step 6): got {}, want {contact}",
        got.uri
    );

    let top = got.headers.top_via()?;
    ensure!(
        top.branch().is_some_and(
            |b| b.starts_with(sip::BRANCH_COOKIE) && b.len() > sip::BRANCH_COOKIE.len()
        ),
        "Herald's Via needs an RFC 3261 branch: {top}"
    );
    ensure!(
        top.transport.eq_ignore_ascii_case(transport),
        "Herald's Via transport is {} on a {transport} leg",
        top.transport
    );
    ensure!(
        top.sent_by() == herald.to_string(),
        "Herald's Via sent-by {} is not the address it sends from ({herald}): answers would go astray",
        top.sent_by()
    );
    let sent_branch = sent.headers.top_via()?.branch().map(str::to_string);
    ensure!(
        top.branch().map(str::to_string) != sent_branch,
        "Herald reused the sender's branch on its own Via"
    );

    let (sf, gf) = (sent.headers.from_addr()?, got.headers.from_addr()?);
    ensure!(
        sf.uri == gf.uri && sf.tag() == gf.tag(),
        "From changed: {sf} became {gf}"
    );
    let (st, gt) = (sent.headers.to_addr()?, got.headers.to_addr()?);
    ensure!(
        st.uri == gt.uri && st.tag() == gt.tag(),
        "To changed: {st} became {gt}"
    );
    ensure!(
        sent.headers.call_id()? == got.headers.call_id()?,
        "Call-ID changed"
    );
    ensure!(sent.headers.cseq()? == got.headers.cseq()?, "CSeq changed");
    ensure!(
        sent.headers.get(&HeaderName::ContentType).map(str::trim)
            == got.headers.get(&HeaderName::ContentType).map(str::trim),
        "Content-Type changed: {:?} became {:?}",
        sent.headers.get(&HeaderName::ContentType),
        got.headers.get(&HeaderName::ContentType)
    );
    ensure!(
        sent.body == got.body,
        "body changed: {:?} became {:?}",
        String::from_utf8_lossy(&sent.body),
        String::from_utf8_lossy(&got.body)
    );
    Ok(())
}

/// Checks that Herald relayed `sent` the way a proxy does (RFC 3261 §16.6,
/// which RFC 3428 §7 applies to MESSAGE): its own Via added on top of the
/// sender's, which stay as they were (`received`/`rport` may be added),
/// and Max-Forwards one less, so a loop through Herald runs out of hops.
pub fn assert_proxy_transparent(sent: &Request, got: &Request) -> Result<()> {
    let mut problems = Vec::new();
    let sent_vias = sent.headers.vias()?;
    let got_vias = got.headers.vias()?;
    if got_vias.len() != sent_vias.len() + 1 {
        problems.push(format!(
            "Herald must add one Via on top of the sender's: sent {}, got {}",
            list(&sent_vias),
            list(&got_vias)
        ));
    } else {
        for (s, g) in sent_vias.iter().zip(&got_vias[1..]) {
            if s.branch() != g.branch() || s.sent_by() != g.sent_by() {
                problems.push(format!("the sender's Via changed: {s} became {g}"));
            }
        }
    }
    let sent_mf = sent.headers.max_forwards()?.unwrap_or(70);
    let got_mf = got.headers.max_forwards()?;
    if got_mf != Some(sent_mf.saturating_sub(1)) {
        problems.push(format!(
            "Max-Forwards {sent_mf} should arrive as {} (RFC 3261 §16.6 step 3), got {got_mf:?}",
            sent_mf.saturating_sub(1)
        ));
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(())
}

fn list(vias: &[sip::Via]) -> String {
    let v: Vec<String> = vias.iter().map(|v| v.to_string()).collect();
    format!("[{}]", v.join(", "))
}

/// The address Herald sends from on a leg of this transport.
pub fn herald_addr_for(transport: &str, udp: SocketAddr, tcp: SocketAddr) -> SocketAddr {
    if transport.eq_ignore_ascii_case("UDP") {
        udp
    } else {
        tcp
    }
}

/// Alice sends a MESSAGE to Bob (both registered); it must reach Bob's
/// socket as delivered by Herald ([`assert_delivered`]); Bob answers 200 and Alice gets 200.
/// Returns what Bob received and what Alice got.
pub fn message_round_trip<A: Transport, B: Transport>(
    alice: &mut Ua<A>,
    bob: &mut Ua<B>,
    herald_udp: SocketAddr,
    herald_tcp: SocketAddr,
    bob_transport: &str,
    body: &str,
) -> Result<(Request, Response)> {
    let msg = alice.message_request(&bob.aor(), "text/plain;charset=UTF-8", body);
    alice.send(&msg)?;

    let delivered = bob
        .recv_request(&Method::Message, secs(5))
        .context("the MESSAGE never reached Bob's socket")?;
    assert_delivered(
        &msg,
        &delivered,
        &bob.contact_uri(),
        herald_addr_for(bob_transport, herald_udp, herald_tcp),
        bob_transport,
    )?;
    bob.respond(&delivered, 200)?;

    let answer = alice.recv_response(&msg, secs(5))?;
    ensure!(
        answer.status == 200,
        "Alice should get 200 once Bob answered 200, got {} {}",
        answer.status,
        answer.reason
    );
    Ok((delivered, answer))
}

/// How long a test waits to conclude that something did not happen.
pub const QUIET: Duration = Duration::from_millis(700);

/// Herald still answers an OPTIONS from this agent.
pub fn assert_alive<T: Transport>(ua: &mut Ua<T>) -> Result<()> {
    let r = ua.options().context("Herald no longer answers OPTIONS")?;
    ensure!(r.status == 200, "OPTIONS got {} {}", r.status, r.reason);
    Ok(())
}

/// The presence shard that owns `aor` (`sip:alice@example.com`) when
/// the presence shard list has `shards` entries: the slot of the AOR
/// (`store::slot_of`) mapped by jump consistent hashing
/// (`shard::ShardMap::owner`), exactly as every edge and shard computes it.
pub fn presence_owner(aor: &str, shards: usize) -> Result<u32> {
    let aor: sip::Aor = aor
        .parse()
        .with_context(|| format!("{aor} is not an AOR"))?;
    let map = shard::ShardMap::new((0..shards).map(|i| i.to_string()).collect())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(map.owner(store::slot_of(&aor)).0)
}

/// The first `n` user names `prefix0`, `prefix1`, ... whose AOR in
/// [`testkit::DEFAULT_DOMAIN`] `pred` accepts (to place test users on the
/// shards a scenario needs). Fails if 10,000 candidates are not enough.
pub fn users_where(
    prefix: &str,
    n: usize,
    mut pred: impl FnMut(&str) -> bool,
) -> Result<Vec<String>> {
    let found: Vec<String> = (0..10_000)
        .map(|i| format!("{prefix}{i}"))
        .filter(|u| pred(&format!("sip:{u}@{}", testkit::DEFAULT_DOMAIN)))
        .take(n)
        .collect();
    ensure!(
        found.len() == n,
        "only {} of {n} users named {prefix}N fit",
        found.len()
    );
    Ok(found)
}

/// A presentity a re-sharding test follows: published through one edge,
/// watched through another, with its owner under the old and the new list.
pub struct MovedPresentity {
    pub owner_before: u32,
    pub owner_after: u32,
    pub publisher: testkit::UdpUa,
    pub etag: String,
    pub watcher: testkit::UdpUa,
    pub dialog: testkit::presence::Dialog,
}

impl MovedPresentity {
    pub fn name(&self) -> String {
        self.publisher.aor()
    }

    /// Refreshes the publication's entity tag, modifies it to `v2`, and
    /// checks the watcher is told; `when` names the moment in errors.
    pub fn refresh_modify_and_watch(&mut self, when: &str) -> Result<()> {
        use testkit::presence::{etag, pidf_tuple};
        let aor = self.name();
        let r = self.publisher.publish_refresh(&self.etag, 600)?;
        ensure!(
            r.status == 200,
            "{when}, {aor} (shard {} -> {}) refreshing its entity tag {} got {} {}",
            self.owner_before,
            self.owner_after,
            self.etag,
            r.status,
            r.reason
        );
        self.etag = etag(&r)?;
        let r = self.publisher.publish_modify(
            &self.etag,
            &pidf_tuple(&aor, "phone", "closed", Some("v2")),
            600,
        )?;
        ensure!(
            r.status == 200,
            "{when}, {aor} modifying: {} {}",
            r.status,
            r.reason
        );
        self.etag = etag(&r)?;
        let n = self
            .watcher
            .recv_notify(&mut self.dialog, secs(10))
            .with_context(|| {
                format!(
                    "{aor}'s watcher {when} (shard {} -> {})",
                    self.owner_before, self.owner_after
                )
            })?;
        ensure!(
            n.body_text().contains("v2"),
            "{aor}'s watcher sees the change: {}",
            n.body_text()
        );
        Ok(())
    }
}

/// Publishes `v1` for each of `names` through `publish_via` and subscribes
/// a watcher (`<watcher_prefix>N`) through `watch_via`, checking its first
/// NOTIFY; owners are those of a `before`-shard and a `after`-shard list.
pub fn publish_and_watch(
    names: &[String],
    publish_via: SocketAddr,
    watch_via: SocketAddr,
    watcher_prefix: &str,
    (before, after): (usize, usize),
) -> Result<Vec<MovedPresentity>> {
    use testkit::presence::{etag, pidf_tuple, PRESENCE};
    let mut all = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut publisher = testkit::UdpUa::bind(name, publish_via)?;
        let aor = publisher.aor();
        let r = publisher.publish(&pidf_tuple(&aor, "phone", "open", Some("v1")), 600)?;
        ensure!(r.status == 200, "PUBLISH {aor}: {} {}", r.status, r.reason);
        let mut watcher = testkit::UdpUa::bind(&format!("{watcher_prefix}{i}"), watch_via)?;
        let (dialog, first) = watcher.watch(&aor, PRESENCE, 600, secs(10))?;
        ensure!(
            first.body_text().contains("v1"),
            "{aor}'s first NOTIFY: {}",
            first.body_text()
        );
        all.push(MovedPresentity {
            owner_before: presence_owner(&aor, before)?,
            owner_after: presence_owner(&aor, after)?,
            etag: etag(&r)?,
            publisher,
            watcher,
            dialog,
        });
    }
    Ok(all)
}

/// The realm the digest tests run Herald with.
pub const REALM: &str = "example.com";

/// A credentials file written by `herald user add` (realm [`REALM`]) for
/// each `(user, password)`, users in example.com; deleted on drop.
pub struct CredentialsFile {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl CredentialsFile {
    pub fn with_users(users: &[(&str, &str)]) -> Result<CredentialsFile> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("credentials.toml");
        let file = path.to_str().context("temp path")?;
        for (user, password) in users {
            let aor = format!("{user}@example.com");
            let out = testkit::Herald::run(
                &[
                    "user",
                    "add",
                    &aor,
                    "--password-stdin",
                    "--credentials",
                    file,
                    "--realm",
                    REALM,
                ],
                Some(&format!("{password}\n")),
            )?;
            ensure!(
                out.status.success(),
                "herald user add {aor}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(CredentialsFile { _dir: dir, path })
    }

    /// The herald arguments that require digest against this file.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--realm".into(),
            REALM.into(),
            "--credentials".into(),
            self.path.display().to_string(),
        ]
    }
}

/// Herald requiring digest against `credentials`, with `extra` arguments.
pub fn start_with_auth(
    credentials: &CredentialsFile,
    extra: &[&str],
) -> Result<testkit::HeraldProcess> {
    let args = credentials.args();
    let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
    argv.extend_from_slice(extra);
    testkit::Herald::start(&argv)
}

/// An HTTP/1.1 answer: status, header block as received, body.
pub struct HttpReply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// One HTTP/1.1 request on its own connection (XCAP tests), answered
/// within 10 s.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<HttpReply> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).context("connect to XCAP")?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").context("a header block")?;
    Ok(HttpReply {
        status: head.get(9..12).context("a status line")?.parse()?,
        head: head.to_string(),
        body: body.to_string(),
    })
}

/// Whether some line of `process`'s log holds every one of `needles`
/// (a log event with its fields, such as `shard list changed` with
/// `shards=3`).
pub fn log_has_line(process: &testkit::HeraldProcess, needles: &[&str]) -> Result<bool> {
    let text = std::fs::read(process.log_path())
        .with_context(|| format!("reading {}", process.log_path().display()))?;
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .any(|line| needles.iter().all(|n| line.contains(n))))
}

/// Waits (at most 10 s) until a line of `process`'s log holds every one of
/// `needles`: lines reach the log file through a pump thread, a moment
/// after the process printed them.
pub fn wait_for_log(process: &testkit::HeraldProcess, needles: &[&str]) -> Result<()> {
    testkit::eventually(secs(10), &format!("a log line with {needles:?}"), || {
        Ok(log_has_line(process, needles)?.then_some(()))
    })
}

/// Waits (at most `within`) until `process` logs that its presence shard
/// list now has `shards` entries.
pub fn wait_for_presence_list(
    process: &testkit::HeraldProcess,
    shards: usize,
    within: Duration,
    who: &str,
) -> Result<()> {
    let count = format!("shards={shards}");
    testkit::eventually(
        within,
        &format!("{who} to read a presence shard list of {shards}"),
        || Ok(log_has_line(process, &["presence shard list changed", &count])?.then_some(())),
    )
}
