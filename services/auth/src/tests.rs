use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use store::{MemoryStore, Store};

use super::*;

/// RFC 7616 §3.9.1: Mufasa, "Circle of Life", GET /dir/index.html.
const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

#[test]
fn rfc7616_example_responses() {
    let c = credential("Mufasa", "http-auth@example.org", "Circle of Life");
    assert_eq!(
        response(
            Algorithm::Md5,
            &c.ha1_md5,
            NONCE,
            "00000001",
            CNONCE,
            "GET",
            "/dir/index.html"
        ),
        "8ca523f5e9506fed4657c9700eebdbec"
    );
    assert_eq!(
        response(
            Algorithm::Sha256,
            &c.ha1_sha256,
            NONCE,
            "00000001",
            CNONCE,
            "GET",
            "/dir/index.html"
        ),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
}

#[test]
fn challenges_offer_sha256_then_md5() {
    // RFC 8760 §2.4: one challenge per algorithm, preferred first.
    let c = Challenge {
        realm: "example.com".into(),
        nonce: "abc".into(),
        stale: true,
    };
    assert_eq!(
        c.header_values(),
        vec![
            r#"Digest realm="example.com", nonce="abc", algorithm=SHA-256, qop="auth", stale=true"#,
            r#"Digest realm="example.com", nonce="abc", algorithm=MD5, qop="auth", stale=true"#,
        ]
    );
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn authenticator(config: AuthConfig) -> Authenticator {
    let store = Arc::new(MemoryStore::new());
    let alice: Aor = "sip:alice@example.com".parse().unwrap();
    store
        .put_credential(&alice, credential("alice", "example.com", "secret"))
        .await
        .unwrap();
    Authenticator::new(config, store)
}

/// What a client sends for `password` answering `nonce`.
fn answer(user: &str, password: &str, nonce: &str, nc: u32, algorithm: Algorithm) -> String {
    let c = credential(user, "example.com", password);
    let uri = "sip:example.com";
    let nc = format!("{nc:08x}");
    let r = response(
        algorithm,
        algorithm.ha1_of(&c),
        nonce,
        &nc,
        "cn",
        "REGISTER",
        uri,
    );
    format!(
        r#"Digest username="{user}", realm="example.com", nonce="{nonce}", uri="{uri}", response="{r}", algorithm={}, qop=auth, nc={nc}, cnonce="cn""#,
        algorithm.token()
    )
}

fn request<'a>(authorization: &'a [&'a str], source: &str) -> DigestRequest<'a> {
    DigestRequest {
        method: "REGISTER",
        uri: "sip:example.com",
        authorization,
        source: ip(source),
        domain: "example.com",
    }
}

fn nonce_of(denied: Denied) -> Challenge {
    match denied {
        Denied::Challenge(c) => c,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

#[tokio::test]
async fn right_answers_pass_once_per_count() {
    let auth = authenticator(AuthConfig::new("example.com")).await;
    let first = nonce_of(auth.verify(&request(&[], "192.0.2.1")).await.unwrap_err());
    for algorithm in Algorithm::PREFERENCE {
        let nc = if algorithm == Algorithm::Sha256 { 1 } else { 2 };
        let a = answer("alice", "secret", &first.nonce, nc, algorithm);
        let got = auth.verify(&request(&[&a], "192.0.2.1")).await.unwrap();
        assert_eq!(got.as_str(), "sip:alice@example.com");
        // The same nonce count again is a replay.
        let again = auth.verify(&request(&[&a], "192.0.2.1")).await.unwrap_err();
        assert!(!nonce_of(again).stale);
    }
}

#[tokio::test]
async fn an_old_nonce_is_stale_only_when_the_answer_is_right() {
    let auth = authenticator(AuthConfig::new("example.com")).await;
    let now = unix_now();
    let old = auth.nonces.mint(now - 301);
    let right = answer("alice", "secret", &old, 1, Algorithm::Sha256);
    let r = auth
        .verify_at(&request(&[&right], "192.0.2.1"), now, Instant::now())
        .await;
    assert!(nonce_of(r.unwrap_err()).stale);
    let wrong = answer("alice", "guess", &old, 1, Algorithm::Sha256);
    let r = auth
        .verify_at(&request(&[&wrong], "192.0.2.1"), now, Instant::now())
        .await;
    assert!(!nonce_of(r.unwrap_err()).stale);
}

#[tokio::test]
async fn unknown_users_are_answered_like_known_ones() {
    let auth = authenticator(AuthConfig::new("example.com")).await;
    let n = auth.challenge().nonce;
    let known = answer("alice", "wrong", &n, 1, Algorithm::Md5);
    let unknown = answer("nobody", "wrong", &n, 1, Algorithm::Md5);
    let a = auth.verify(&request(&[&known], "192.0.2.1")).await;
    let b = auth.verify(&request(&[&unknown], "192.0.2.1")).await;
    assert!(matches!(a, Err(Denied::Challenge(ref c)) if !c.stale));
    assert!(matches!(b, Err(Denied::Challenge(ref c)) if !c.stale));
}

#[tokio::test]
async fn guessing_is_cut_off_for_that_source_only() {
    let mut config = AuthConfig::new("example.com");
    config.max_failures = 3;
    let auth = authenticator(config).await;
    let n = auth.challenge().nonce;
    for (i, guess) in ["a", "b"].iter().enumerate() {
        let a = answer("alice", guess, &n, i as u32 + 1, Algorithm::Md5);
        let r = auth
            .verify(&request(&[&a], "192.0.2.66"))
            .await
            .unwrap_err();
        assert_eq!(r.status(false), 401);
    }
    let a = answer("alice", "c", &n, 3, Algorithm::Md5);
    let r = auth
        .verify(&request(&[&a], "192.0.2.66"))
        .await
        .unwrap_err();
    assert_eq!(r.status(false), 403);
    assert!(r.retry_after().is_some_and(|s| s > 0 && s <= 300));
    // Even the right password is refused from there now...
    let a = answer("alice", "secret", &n, 4, Algorithm::Md5);
    let r = auth
        .verify(&request(&[&a], "192.0.2.66"))
        .await
        .unwrap_err();
    assert!(matches!(r, Denied::BackedOff { .. }));
    // ...and accepted from elsewhere.
    let a = answer("alice", "secret", &n, 5, Algorithm::Md5);
    assert!(auth.verify(&request(&[&a], "192.0.2.7")).await.is_ok());
}

#[tokio::test]
async fn bad_input_gets_400_or_a_challenge() {
    let auth = authenticator(AuthConfig::new("example.com")).await;
    let r = auth
        .verify(&request(&[r#"Digest username"#], "192.0.2.1"))
        .await
        .unwrap_err();
    assert_eq!(r.status(true), 400);
    // Credentials for another realm only: challenged for ours.
    let other = r#"Digest username="a", realm="other", nonce="n", uri="u", response="r""#;
    let r = auth
        .verify(&request(&[other], "192.0.2.1"))
        .await
        .unwrap_err();
    assert_eq!(r.status(true), 407);
    // A nonce we did not sign is never accepted: a right answer gets a
    // new one (stale), a wrong one a plain challenge.
    let foreign = answer("alice", "secret", "AAAA", 1, Algorithm::Md5);
    let r = auth.verify(&request(&[&foreign], "192.0.2.1")).await;
    assert!(nonce_of(r.unwrap_err()).stale);
    let wrong = answer("alice", "guess", "AAAA", 1, Algorithm::Md5);
    let r = auth.verify(&request(&[&wrong], "192.0.2.1")).await;
    assert!(!nonce_of(r.unwrap_err()).stale);
    // Another request URI than the one answered for.
    let n = auth.challenge().nonce;
    let a = answer("alice", "secret", &n, 1, Algorithm::Md5);
    let values = [a.as_str()];
    let mut req = request(&values, "192.0.2.1");
    req.uri = "sip:other.example.com";
    assert_eq!(auth.verify(&req).await.unwrap_err().status(false), 400);
}

#[test]
fn usernames_map_to_aors() {
    assert_eq!(
        user_aor("alice", "example.com").unwrap().as_str(),
        "sip:alice@example.com"
    );
    assert_eq!(
        user_aor("bob@example.org", "example.com").unwrap().as_str(),
        "sip:bob@example.org"
    );
    assert!(user_aor("", "example.com").is_none());
}
