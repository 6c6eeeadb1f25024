//! Feeds arbitrary bytes, as the start of a QUIC Initial CRYPTO stream, to the
//! wire's ClientHello ALPN reader (`nodus_wire::tls::client_hello::read`).
//!
//! Invariants checked: no panic; the answer depends only on the bytes; a complete
//! hello lies within the input and the size limit, its protocol names are
//! non-empty slices of it, and every shorter prefix (header read) is still
//! waiting for more; waiting only happens below the size limit; the first byte
//! alone decides "not a ClientHello".

#![no_main]

use libfuzzer_sys::fuzz_target;
use nodus_wire::tls::client_hello::{ClientHelloError, MAX_CLIENT_HELLO_LEN, Progress, read};

fuzz_target!(|data: &[u8]| {
    let answer = read(data);
    assert_eq!(read(data), answer, "the answer depends only on the bytes");
    match &answer {
        Ok(Progress::NeedMore) => assert!(data.len() < MAX_CLIENT_HELLO_LEN),
        Ok(Progress::Complete(hello)) => {
            assert!(hello.len <= data.len());
            assert!(hello.len <= MAX_CLIENT_HELLO_LEN);
            let range = data.as_ptr_range();
            for name in hello.alpn.iter().flatten() {
                assert!(!name.is_empty());
                let inner = name.as_ptr_range();
                assert!(range.start <= inner.start && inner.end <= range.end);
            }
            // The same hello without what follows it.
            assert_eq!(read(&data[..hello.len]), answer);
            // Anything shorter (past the 4-byte header) waits for the rest.
            for cut in [hello.len - 1, 4 + (hello.len - 4) / 2, 4] {
                if cut < hello.len {
                    assert_eq!(read(&data[..cut]), Ok(Progress::NeedMore), "cut at {cut}");
                }
            }
        }
        Err(ClientHelloError::NotClientHello(t)) => {
            assert_eq!(Some(t), data.first());
            assert_eq!(read(&data[..1]), answer);
        }
        Err(ClientHelloError::TooLarge { len, max }) => {
            assert!(len > max);
            assert_eq!(read(&data[..4]), answer);
        }
        Err(_) => {}
    }
});
