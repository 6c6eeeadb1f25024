#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn file(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// A simulated client on a virtual clock. `lose(i)` drops the i-th datagram the
/// server sends. Returns the bytes received and the number of datagrams sent.
fn fetch(
    data: Vec<u8>,
    options: &[(&str, &str)],
    mut lose: impl FnMut(usize) -> bool,
) -> (Vec<u8>, Transfer<Vec<u8>>, usize) {
    let mut now = Instant::now();
    let size = data.len() as u64;
    let mut t = Transfer::start(options, data, size, Limits::default(), now);
    let mut got = Vec::new();
    let mut expect: u16 = 1;
    let mut sent = 0usize;
    let window = t.granted().windowsize;
    let mut in_window = 0u16;
    for _ in 0..1_000_000 {
        if t.is_finished() {
            break;
        }
        let mut acks = Vec::new();
        let mut any = false;
        while let Some(d) = t.poll_transmit() {
            sent += 1;
            any = true;
            if lose(sent) {
                continue;
            }
            match Packet::decode(&d).unwrap() {
                Packet::Oack { .. } => acks.push(packet::ack(0)),
                Packet::Data { block, data } => {
                    if block == expect {
                        got.extend_from_slice(data);
                        in_window += 1;
                        let last = data.len() < usize::from(t.granted().blksize);
                        if in_window == window || last {
                            acks.push(packet::ack(block));
                            in_window = 0;
                        }
                        expect = expect.wrapping_add(1);
                    } else if block != expect.wrapping_sub(1) {
                        // Out of order: ack the last good block (RFC 7440 §4).
                        acks.push(packet::ack(expect.wrapping_sub(1)));
                        in_window = 0;
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        for a in acks {
            t.handle(&a, now);
        }
        if !any && !t.is_finished() {
            now = t.poll_timeout().unwrap();
            in_window = 0;
            t.handle_timeout(now);
        }
    }
    (got, t, sent)
}

#[test]
fn lock_step_without_options() {
    let data = file(5000);
    let (got, t, sent) = fetch(data.clone(), &[], |_| false);
    assert_eq!(got, data);
    assert_eq!(t.state(), State::Done);
    assert_eq!(sent, 10); // 9 full blocks + 1 short one
}

#[test]
fn exact_multiple_ends_with_an_empty_block() {
    let data = file(1024);
    let (got, t, sent) = fetch(data.clone(), &[], |_| false);
    assert_eq!(got, data);
    assert_eq!(t.state(), State::Done);
    assert_eq!(sent, 3);
}

#[test]
fn options_are_negotiated_and_clamped() {
    let data = file(100_000);
    let opts = [
        ("BLKSIZE", "65464"),
        ("tsize", "0"),
        ("timeout", "3"),
        ("windowsize", "1000"),
        ("nonsense", "1"),
    ];
    let mut t = Transfer::start(&opts, data, 100_000, Limits::default(), Instant::now());
    let oack = t.poll_transmit().unwrap();
    let Packet::Oack { options } = Packet::decode(&oack).unwrap() else {
        panic!()
    };
    assert_eq!(
        options,
        vec![
            ("blksize", "1468"),
            ("tsize", "100000"),
            ("timeout", "3"),
            ("windowsize", "64")
        ]
    );
    assert_eq!(t.granted().timeout, Duration::from_secs(3));
    // Nothing else until ACK 0.
    assert!(t.poll_transmit().is_none());
    t.handle(&packet::ack(0), Instant::now());
    let mut n = 0;
    while t.poll_transmit().is_some() {
        n += 1;
    }
    assert_eq!(n, 64);
}

#[test]
fn bad_option_values_are_ignored() {
    let t = Transfer::start(
        &[("blksize", "4"), ("timeout", "0"), ("windowsize", "x")],
        file(10),
        10,
        Limits::default(),
        Instant::now(),
    );
    assert_eq!(
        t.state(),
        State::Sending,
        "no OACK when nothing was granted"
    );
    assert_eq!(t.granted().blksize, DEFAULT_BLKSIZE);
}

#[test]
fn windowed_transfer_survives_loss() {
    let data = file(300_000);
    let opts = [("blksize", "1024"), ("windowsize", "8")];
    let (got, t, _) = fetch(data.clone(), &opts, |i| i % 13 == 5);
    assert_eq!(got.len(), data.len());
    assert_eq!(got, data);
    assert_eq!(t.state(), State::Done);
}

#[test]
fn lock_step_survives_loss_via_timeouts() {
    let data = file(20_000);
    let (got, t, _) = fetch(data.clone(), &[], |i| i % 4 == 0);
    assert_eq!(got, data);
    assert_eq!(t.state(), State::Done);
}

#[test]
fn block_numbers_wrap_past_65535() {
    let data = file(512 * 70_000 + 3);
    let (got, t, sent) = fetch(data.clone(), &[("windowsize", "16")], |_| false);
    assert_eq!(got.len(), data.len());
    assert!(got == data);
    assert_eq!(t.state(), State::Done);
    assert_eq!(sent, 70_002); // OACK + 70 001 blocks
}

#[test]
fn duplicate_acks_do_not_resend() {
    let now = Instant::now();
    let mut t = Transfer::start(&[], file(5000), 5000, Limits::default(), now);
    assert!(t.poll_transmit().is_some());
    t.handle(&packet::ack(1), now);
    assert!(t.poll_transmit().is_some());
    t.handle(&packet::ack(1), now);
    t.handle(&packet::ack(1), now);
    assert!(t.poll_transmit().is_none(), "sorcerer's apprentice");
}

#[test]
fn gives_up_after_retries() {
    let mut now = Instant::now();
    let mut t = Transfer::start(&[], file(5000), 5000, Limits::default(), now);
    let mut resends = 0;
    while let Some(d) = t.poll_timeout() {
        while t.poll_transmit().is_some() {
            resends += 1;
        }
        now = d;
        t.handle_timeout(now);
    }
    assert_eq!(t.state(), State::Failed);
    assert_eq!(resends, 1 + Limits::default().max_retries as usize);
}

#[test]
fn client_error_ends_the_transfer() {
    let now = Instant::now();
    let mut t = Transfer::start(&[("tsize", "0")], file(10), 10, Limits::default(), now);
    t.handle(&packet::error(ErrorCode::BadOption, "just the size"), now);
    assert_eq!(t.state(), State::Failed);
    assert_eq!(t.poll_timeout(), None);
}
