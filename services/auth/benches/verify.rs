//! Cost of one digest check: a right answer, a wrong answer for a known
//! user, and a wrong answer for an unknown user. The last two should cost
//! the same (no user enumeration by timing).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auth::{credential, response, Algorithm, AuthConfig, Authenticator, DigestRequest};
use criterion::{criterion_group, criterion_main, Criterion};
use store::{MemoryStore, Store};

fn answer(user: &str, password: &str, nonce: &str, nc: u32) -> String {
    let c = credential(user, "example.com", password);
    let nc = format!("{nc:08x}");
    let r = response(
        Algorithm::Sha256,
        &c.ha1_sha256,
        nonce,
        &nc,
        "cn",
        "REGISTER",
        "sip:example.com",
    );
    format!(
        r#"Digest username="{user}", realm="example.com", nonce="{nonce}", uri="sip:example.com", response="{r}", algorithm=SHA-256, qop=auth, nc={nc}, cnonce="cn""#
    )
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    rt.block_on(store.put_credential(
        &"sip:alice@example.com".parse().unwrap(),
        credential("alice", "example.com", "secret"),
    ))
    .unwrap();
    let mut config = AuthConfig::new("example.com");
    // Measuring, not guessing: never back off.
    config.max_failures = u32::MAX;
    config.backoff = Duration::ZERO;
    let auth = Authenticator::new(config, store);
    let nonce = auth.challenge().nonce;
    let verify = |value: &str| {
        let values = [value];
        let request = DigestRequest {
            method: "REGISTER",
            uri: "sip:example.com",
            authorization: &values,
            source: "192.0.2.1".parse().unwrap(),
            domain: "example.com",
        };
        rt.block_on(auth.verify(&request))
    };

    let nc = AtomicU32::new(0);
    c.bench_function("verify right answer", |b| {
        b.iter(|| {
            let n = nc.fetch_add(1, Ordering::Relaxed) + 1;
            assert!(verify(&answer("alice", "secret", &nonce, n)).is_ok());
        })
    });
    let known = answer("alice", "wrong", &nonce, 1);
    c.bench_function("verify wrong answer, known user", |b| {
        b.iter(|| assert!(verify(&known).is_err()))
    });
    let unknown = answer("nobody", "wrong", &nonce, 1);
    c.bench_function("verify wrong answer, unknown user", |b| {
        b.iter(|| assert!(verify(&unknown).is_err()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
