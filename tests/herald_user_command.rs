//! `herald user add|list|del` keeps digest credentials (HA1 hashes, never
//! the password) in Redis with --redis, or in a --credentials file for the
//! in-memory default; a running Herald authenticates against what they
//! wrote, picks up a changed file, and forgets a deleted user.

use anyhow::{ensure, Result};
use herald_tests::REALM;
use testkit::{eventually, secs, Herald, RedisServer};

fn herald_user(args: &[&str], stdin: Option<&str>) -> Result<(bool, String)> {
    let mut argv = vec!["user"];
    argv.extend_from_slice(args);
    let out = Herald::run(&argv, stdin)?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Ok((false, String::from_utf8_lossy(&out.stderr).to_string()));
    }
    Ok((true, text))
}

/// Adds alice and bob, lists, deletes bob, lists: the same with any
/// `store` arguments.
fn round_trip(store: &[&str]) -> Result<()> {
    let with = |extra: &[&str]| -> Vec<String> {
        extra
            .iter()
            .chain(store)
            .chain(["--realm", REALM].iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |extra: &[&str], stdin: Option<&str>| {
        let args = with(extra);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        herald_user(&argv, stdin)
    };
    let (ok, out) = run(
        &["add", "alice@example.com", "--password-stdin"],
        Some("s3cret\n"),
    )?;
    ensure!(ok, "add alice: {out}");
    let (ok, out) = run(&["add", "sip:bob@example.com", "--password", "pw"], None)?;
    ensure!(ok, "add bob: {out}");
    let (ok, out) = run(&["list"], None)?;
    ensure!(ok, "list: {out}");
    ensure!(
        out.lines().collect::<Vec<_>>()
            == [
                "sip:alice@example.com example.com",
                "sip:bob@example.com example.com"
            ],
        "list after two adds:\n{out}"
    );
    let (ok, out) = run(&["del", "bob@example.com"], None)?;
    ensure!(ok, "del bob: {out}");
    let (ok, _) = run(&["del", "bob@example.com"], None)?;
    ensure!(!ok, "deleting a user twice fails the second time");
    let (_, out) = run(&["list"], None)?;
    ensure!(
        out.trim() == "sip:alice@example.com example.com",
        "list after del:\n{out}"
    );
    let (ok, _) = run(&["add", "carol@example.com"], None)?;
    ensure!(!ok, "add without a password is refused");
    Ok(())
}

#[test]
fn user_commands_with_redis() -> Result<()> {
    let redis = RedisServer::start()?;
    let url = redis.url();
    round_trip(&["--redis", &url])?;
    let stored = redis.cli(&["HGETALL", "cred:{sip:alice@example.com}"])?;
    ensure!(stored.contains("ha1_sha256"), "HA1s in Redis: {stored}");
    ensure!(!stored.contains("s3cret"), "never the password: {stored}");

    // A Herald on that Redis authenticates alice.
    let herald = Herald::start(&["--redis", &url, "--realm", REALM])?;
    let mut alice = herald.udp_ua("alice")?;
    let req = alice.register_request(Some(600));
    let (_, r) = alice.transact_digest(&req, "s3cret", "SHA-256")?;
    ensure!(
        r.status == 200,
        "alice added in Redis registers: {}",
        r.status
    );
    Ok(())
}

#[test]
fn user_commands_with_a_file_and_a_running_herald() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("users.toml");
    let file = path.to_str().unwrap().to_string();
    round_trip(&["--credentials", &file])?;
    let text = std::fs::read_to_string(&path)?;
    ensure!(!text.contains("s3cret"), "never the password:\n{text}");

    // Polling below until the reload makes wrong answers: not guessing.
    let herald = Herald::start(&[
        "--credentials",
        &file,
        "--realm",
        REALM,
        "--auth-max-failures",
        "1000",
    ])?;
    let mut alice = herald.udp_ua("alice")?;
    let req = alice.register_request(Some(600));
    let (_, r) = alice.transact_digest(&req, "s3cret", "MD5")?;
    ensure!(
        r.status == 200,
        "alice from the file registers: {}",
        r.status
    );

    // Added while Herald runs: picked up from the changed file.
    let (ok, out) = herald_user(
        &[
            "add",
            "dave@example.com",
            "--password",
            "dave-pw",
            "--credentials",
            &file,
            "--realm",
            REALM,
        ],
        None,
    )?;
    ensure!(ok, "add dave: {out}");
    let mut dave = herald.udp_ua("dave")?;
    eventually(secs(10), "dave to be loaded", || {
        let req = dave.register_request(Some(600));
        let (_, r) = dave.transact_digest(&req, "dave-pw", "SHA-256")?;
        Ok((r.status == 200).then_some(()))
    })?;

    // Deleted while Herald runs: refused again.
    let (ok, out) = herald_user(
        &[
            "del",
            "alice@example.com",
            "--credentials",
            &file,
            "--realm",
            REALM,
        ],
        None,
    )?;
    ensure!(ok, "del alice: {out}");
    eventually(secs(10), "alice to be forgotten", || {
        let req = alice.register_request(Some(600));
        let (_, r) = alice.transact_digest(&req, "s3cret", "SHA-256")?;
        Ok((r.status == 401).then_some(()))
    })?;
    Ok(())
}
