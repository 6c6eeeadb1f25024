//! Live link events: a carrier change on a real veth pair must reach a
//! `LinkEvents` subscriber. Needs root and iproute2; skipped with a reason
//! otherwise. The host end stays in this namespace (that is where the
//! subscription listens); the peer lives in a private namespace, so deleting the
//! namespace removes the whole pair.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use nodus_agent::net::{LinkChange, LinkEvents};

/// A network namespace holding the peer of a veth pair whose other end is in the
/// test's namespace. Dropping it deletes both.
struct VethPair {
    ns: String,
    host: String,
    peer: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl VethPair {
    fn create() -> Result<Self, String> {
        let id = std::process::id() % 100_000;
        let pair = Self {
            ns: format!("nodus-ev-{id}"),
            host: format!("nev{id}h"),
            peer: format!("nev{id}p"),
        };
        ip(&["netns", "add", &pair.ns])?;
        ip(&[
            "link", "add", &pair.host, "type", "veth", "peer", "name", &pair.peer, "netns",
            &pair.ns,
        ])?;
        ip(&["link", "set", &pair.host, "up"])?;
        ip(&["-n", &pair.ns, "link", "set", &pair.peer, "up"])?;
        Ok(pair)
    }

    fn carrier(&self) -> bool {
        std::fs::read_to_string(format!("/sys/class/net/{}/carrier", self.host))
            .is_ok_and(|c| c.trim() == "1")
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host]);
        let _ = ip(&["netns", "del", &self.ns]);
    }
}

#[tokio::test]
async fn carrier_loss_on_a_veth_peer_arrives_as_an_event() {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: needs root to create a network namespace and veth pair");
        return;
    }
    let pair = match VethPair::create() {
        Ok(p) => p,
        Err(e) => {
            println!("skipped: cannot create a veth pair here: {e}");
            return;
        }
    };
    // Both ends up: wait (bounded) until the host end has carrier.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pair.carrier() {
        assert!(Instant::now() < deadline, "veth never got carrier");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut events = LinkEvents::subscribe().unwrap();
    let start = Instant::now();
    ip(&["-n", &pair.ns, "link", "set", &pair.peer, "down"]).unwrap();
    // The timeout only bounds a failure; it is not a latency assertion.
    let ev = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let ev = events.next().await.expect("netlink socket closed");
            if ev.name.as_deref() == Some(pair.host.as_str()) && ev.carrier == Some(false) {
                return ev;
            }
        }
    })
    .await
    .expect("no carrier-loss event for the veth within 10 s");
    println!("carrier loss seen after {:?}", start.elapsed());
    assert_eq!(ev.change, LinkChange::Changed);
    assert!(
        ev.admin_up,
        "the host end itself is still administratively up"
    );
    // veth says `down` (RFC 2863 would say lowerlayerdown); either way not up.
    assert_ne!(ev.operstate.as_deref(), Some("up"));
}
