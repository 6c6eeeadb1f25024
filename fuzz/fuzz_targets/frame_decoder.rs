//! Feeds arbitrary bytes, in arbitrary splits, to the wire's `FrameDecoder` and
//! decodes every frame as a transport message.
//!
//! Invariants checked: no panic; memory held never exceeds the frame limit; every
//! frame respects the limit; a decoded message re-encodes to a frame that decodes
//! to the same message; after an error the decoder stays failed.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nodus_wire::{Blob, FrameDecoder, Role, decode_body, encode_frame, message::Welcome};

/// Small enough that the fuzzer reaches the limit often.
const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&split, mut input)) = data.split_first() else {
        return;
    };
    // The first byte picks the chunk size, so partial prefixes and bodies are hit.
    let chunk = usize::from(split % 16) + 1;
    let mut dec = FrameDecoder::new(MAX);
    while !input.is_empty() {
        let piece = &input[..chunk.min(input.len())];
        match dec.feed(piece) {
            Ok(used) => {
                assert!(used <= piece.len());
                input = &input[used..];
            }
            Err(e) => {
                assert_eq!(dec.feed(b"\x00"), Err(e), "errors are sticky");
                assert_eq!(dec.buffered_capacity(), 0);
                return;
            }
        }
        assert!(dec.buffered_capacity() <= MAX);
        if let Some(body) = dec.poll_frame() {
            assert!(body.len() <= MAX);
            check_round_trip::<Welcome>(&body);
            check_round_trip::<Role>(&body);
            check_round_trip::<Blob>(&body);
            check_round_trip::<Vec<String>>(&body);
        }
    }
    let _ = dec.finish();
});

fn check_round_trip<T>(body: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(msg) = decode_body::<T>(body) else {
        return;
    };
    let frame = encode_frame(&msg, usize::MAX).expect("a decoded message re-encodes");
    let mut dec = FrameDecoder::new(MAX);
    let used = dec.feed(&frame).expect("our own frame decodes");
    assert_eq!(used, frame.len());
    let again = dec.poll_frame().expect("one whole frame");
    assert_eq!(decode_body::<T>(&again).ok(), Some(msg));
}
