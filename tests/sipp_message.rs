//! SIPp as both ends of page-mode IM through Herald: a SIPp UAS is Bob's
//! registered device, a SIPp UAC (Alice) sends MESSAGEs to Bob through
//! Herald. Every call
//! must succeed on both sides. Not a load test: the rate is low and no
//! timing is asserted (DESIGN.md §7).

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;

use anyhow::{ensure, Result};
use testkit::{eventually, secs, sipp_path, Herald, Sipp, UdpUa};

const CALLS: u64 = 20;

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(name)
}

#[test]
fn sipp_messages_reach_a_sipp_device_through_herald() -> Result<()> {
    if sipp_path().is_none() {
        println!("skipped: sipp is not installed (Debian package sip-tester; .ci/run installs it)");
        return Ok(());
    }
    let herald = Herald::start(&[])?;

    // Bob's device is the SIPp UAS. It registers from the very address it
    // will listen on (a test agent does the REGISTER on that port, then
    // hands the port to SIPp), so the contact address and the flow the
    // REGISTER came over are the same whichever one Herald delivers to.
    let uas_addr: SocketAddr = UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
    {
        let mut bob = UdpUa::bind_at("bob", uas_addr, herald.udp)?;
        let r = bob.register(3600)?;
        ensure!(r.status == 200, "REGISTER got {} {}", r.status, r.reason);
    }
    let mut uas = Sipp::new(scenario("message_uas.xml"))
        .args(["-i", "127.0.0.1", "-p"])
        .arg(uas_addr.port().to_string())
        .args(["-m", &CALLS.to_string(), "-timeout", "60s"])
        .spawn()?;
    eventually(secs(10), "the SIPp UAS to bind its port", || {
        uas.ensure_running()?;
        Ok(UdpSocket::bind(uas_addr).is_err().then_some(()))
    })?;

    let uac = Sipp::new(scenario("message_uac.xml"))
        .arg(herald.udp.to_string())
        .args(["-i", "127.0.0.1", "-s", "bob"])
        .args(["-m", &CALLS.to_string(), "-r", "10"])
        .args(["-timeout", "60s", "-recv_timeout", "5000"])
        .run(secs(90))?;
    ensure!(
        uac.status.code() == Some(0) && uac.successful == Some(CALLS) && uac.failed == Some(0),
        "UAC: {}",
        uac.report()
    );

    let uas = uas.wait(secs(30))?;
    ensure!(
        uas.status.code() == Some(0) && uas.successful == Some(CALLS) && uas.failed == Some(0),
        "UAS: {}",
        uas.report()
    );
    Ok(())
}
