//! The certificate is re-read when its files change, without a restart:
//! a new connection gets the new certificate, connections already open
//! keep working, and a file that cannot be used leaves the last good
//! certificate in force.

use anyhow::{ensure, Context, Result};
use herald_tests::assert_alive;
use testkit::{eventually, secs, Herald, TestTls};

fn names(der: &[u8], text: &str) -> bool {
    der.windows(text.len()).any(|w| w == text.as_bytes())
}

#[test]
fn a_renewed_certificate_is_used_by_new_connections_and_old_ones_keep_working() -> Result<()> {
    let mut tls = TestTls::new()?;
    let first = tls.server_der().to_vec();
    let herald = Herald::start_tls(&tls, &["--tls-reload-interval", "1"])?;
    let addr = herald.tls.context("no TLS listener")?;

    let mut old = herald.tls_ua("alice", &tls)?;
    ensure!(old.peer_certificate() == Some(&first[..]));
    ensure!(
        names(&first, "herald test 1"),
        "the first certificate's subject"
    );
    ensure!(old.register(600)?.status == 200);

    // Renew: a new key and certificate (serial 2) over the same files.
    let second = tls.issue_server(2)?;
    ensure!(second != first);
    let seen = eventually(
        secs(15),
        "a new connection to see the new certificate",
        || {
            let ua = testkit::TlsUa::connect_tls("probe", addr, &tls)?;
            Ok(ua
                .peer_certificate()
                .filter(|der| *der == &second[..])
                .map(<[u8]>::to_vec))
        },
    )?;
    ensure!(
        names(&seen, "herald test 2"),
        "the new certificate's subject names serial 2"
    );

    // The connection made before the renewal still carries requests.
    assert_alive(&mut old)?;
    ensure!(old.register(600)?.status == 200);

    // A broken certificate file: the last good certificate stays.
    std::fs::write(
        tls.cert_path(),
        b"-----BEGIN CERTIFICATE-----\nnot base64\n",
    )?;
    eventually(secs(15), "a warning about the unusable file", || {
        Ok(herald
            .log_contains("keeping the previous certificate")?
            .then_some(()))
    })?;
    let mut after = herald.tls_ua("bob", &tls)?;
    ensure!(
        after.peer_certificate() == Some(&second[..]),
        "after a bad file, handshakes must still present the last good certificate"
    );
    assert_alive(&mut after)?;
    Ok(())
}
