//! Feeds arbitrary bytes to the TFTP packet decoder, the served-root name
//! resolution and a read transfer.
//!
//! The input is split in three: a length byte and that many bytes of request (the
//! decoder's input; an RRQ's options start the transfer and its file name is
//! resolved against a root with a secret beside it), two bytes of file size and
//! four of server limits, then a list of events for the transfer — an ACK near the
//! window, a raw datagram, a peer ERROR, or the retransmission timer firing on a
//! virtual clock. Afterwards an honest client takes over.
//!
//! Invariants checked: no panic; decoded requests and OACKs re-encode to
//! themselves; a resolved name never leaves the root; every datagram the transfer
//! sends decodes, and DATA carries exactly the file's bytes for its block, at most
//! one block size of them; a timeout is pending exactly while the transfer runs;
//! whatever came before, the honest client brings the transfer to an end within a
//! bounded number of steps, and when it ends `Done` it received the whole tail.

#![no_main]

use std::{
    path::PathBuf,
    sync::OnceLock,
    time::{Duration, Instant},
};

use libfuzzer_sys::fuzz_target;
use nodus_netboot::tftp::{
    Limits, Root, State, Transfer,
    packet::{self, Packet},
};

/// A served root holding `a.efi`, with `secret` beside it and a symlink out.
fn root() -> &'static (Root, PathBuf) {
    static ROOT: OnceLock<(Root, PathBuf)> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("nodus-fuzz-tftp-{}", std::process::id()));
        let served = base.join("root");
        std::fs::create_dir_all(served.join("sub")).expect("temp dir");
        std::fs::write(served.join("a.efi"), b"a").expect("temp file");
        std::fs::write(base.join("secret"), b"s").expect("temp file");
        let _ = std::os::unix::fs::symlink(base.join("secret"), served.join("out"));
        let _ = std::os::unix::fs::symlink("../root/a.efi", served.join("sub/in"));
        (Root::new(&served).expect("root"), base.join("secret"))
    })
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

fn file(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// Checks one datagram the transfer sent; returns its DATA block number.
fn check_sent(d: &[u8], data: &[u8], blksize: usize) -> Option<u16> {
    match Packet::decode(d).expect("the transfer's datagrams decode") {
        Packet::Data {
            block,
            data: payload,
        } => {
            assert!(block >= 1, "block 0 sent");
            assert!(payload.len() <= blksize);
            // Files here stay below 65535 blocks: no wrap.
            let at = (usize::from(block) - 1) * blksize;
            assert!(at <= data.len(), "block {block} past the end");
            let end = (at + blksize).min(data.len());
            assert_eq!(payload, &data[at..end], "block {block} holds other bytes");
            Some(block)
        }
        Packet::Oack { .. } | Packet::Error { .. } => None,
        other => panic!("the transfer sent {other:?}"),
    }
}

fuzz_target!(|input: &[u8]| {
    let mut b = Bytes(input);
    let n = usize::from(b.u8());
    let req = b.take(n);
    let mut options: Vec<(String, String)> = Vec::new();
    match Packet::decode(req) {
        Ok(Packet::Rrq {
            file: name,
            mode,
            options: opts,
        }) => {
            if mode == "octet" {
                let o: Vec<(&str, &str)> = opts.clone();
                assert_eq!(packet::rrq(name, &o), req, "RRQ re-encodes to itself");
            }
            let (root, secret) = root();
            if let Ok(p) = root.resolve(name) {
                assert!(p.starts_with(root.dir()), "{name:?} resolved to {p:?}");
                assert_ne!(&p, secret);
            }
            options = opts
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        }
        Ok(Packet::Oack { options: o }) => {
            let owned: Vec<(&str, String)> = o.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
            assert_eq!(packet::oack(&owned), req, "OACK re-encodes to itself");
        }
        Ok(Packet::Ack { block }) => assert_eq!(&packet::ack(block)[..], &req[..4]),
        _ => {}
    }

    // Up to 12 000 bytes: with blocks of at least 8 bytes, 1500 blocks at most, so
    // block numbers never wrap and a run stays fast.
    let size = usize::from(b.u16()) % 12_000;
    let data = file(size);
    let limits = Limits {
        max_blksize: b.u16().max(8),
        max_windowsize: u16::from(b.u8()).max(1),
        timeout: Duration::from_secs(1),
        max_retries: u32::from(b.u8() % 6),
    };
    let opts: Vec<(&str, &str)> = options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let start = Instant::now();
    let mut now = start;
    let mut t = Transfer::start(&opts, data.clone(), size as u64, limits, now);
    let bs = usize::from(t.granted().blksize);
    assert!(t.granted().windowsize >= 1 && t.granted().windowsize <= limits.max_windowsize);
    let mut highest: u16 = 0;
    let drain = |t: &mut Transfer<Vec<u8>>, highest: &mut u16| {
        while let Some(d) = t.poll_transmit() {
            if let Some(block) = check_sent(&d, &data, bs) {
                *highest = (*highest).max(block);
            }
        }
    };
    drain(&mut t, &mut highest);
    for _ in 0..256 {
        if b.0.is_empty() {
            break;
        }
        let ctl = b.u8();
        match ctl % 4 {
            0 => {
                if let Some(d) = t.poll_timeout() {
                    now = now.max(d);
                }
                t.handle_timeout(now);
            }
            1 => {
                let back = u16::from(b.u8() % 8);
                t.handle(&packet::ack(highest.wrapping_sub(back)), now);
            }
            2 => {
                let n = usize::from(b.u8());
                t.handle(b.take(n), now);
            }
            _ => {
                if ctl & 0x80 != 0 {
                    t.handle(&packet::error(packet::ErrorCode::Undefined, "x"), now);
                }
            }
        }
        now += Duration::from_millis(u64::from(ctl >> 2));
        assert_eq!(t.poll_timeout().is_some(), !t.is_finished());
        drain(&mut t, &mut highest);
    }

    // An honest client: acknowledges every block in order, waits out timeouts.
    let mut expect = highest.saturating_add(0);
    let mut got_last = false;
    for _ in 0..200_000 {
        if t.is_finished() {
            break;
        }
        let mut acks = Vec::new();
        while let Some(d) = t.poll_transmit() {
            match check_sent(&d, &data, bs) {
                Some(block) => {
                    if block <= expect.wrapping_add(1) {
                        expect = expect.max(block);
                        acks.push(packet::ack(block));
                    }
                    if (usize::from(block) - 1) * bs + bs > data.len() {
                        got_last = true;
                    }
                }
                None => acks.push(packet::ack(0)),
            }
        }
        if acks.is_empty() {
            match t.poll_timeout() {
                Some(d) => now = now.max(d),
                None => break,
            }
            t.handle_timeout(now);
        }
        for a in acks {
            t.handle(&a, now);
        }
    }
    assert!(t.is_finished(), "transfer still running: {:?}", t.state());
    if t.state() == State::Done {
        assert!(
            got_last || highest as usize * bs > data.len(),
            "done before the last block"
        );
    }
});
