//! TFTP packets (RFC 1350) and options (RFC 2347 OACK).

/// Read request.
pub const OP_RRQ: u16 = 1;
/// Write request.
pub const OP_WRQ: u16 = 2;
/// Data.
pub const OP_DATA: u16 = 3;
/// Acknowledgement.
pub const OP_ACK: u16 = 4;
/// Error.
pub const OP_ERROR: u16 = 5;
/// Option acknowledgement (RFC 2347).
pub const OP_OACK: u16 = 6;

/// Longest request we parse; RFC 2347 keeps requests within 512 bytes, some
/// clients go beyond, none legitimately near this.
pub const MAX_REQUEST: usize = 2048;

/// TFTP error codes (RFC 1350 §5, RFC 2347).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    /// Not defined, see message.
    Undefined = 0,
    /// File not found.
    NotFound = 1,
    /// Access violation.
    AccessViolation = 2,
    /// Illegal TFTP operation.
    IllegalOperation = 4,
    /// Unknown transfer id.
    UnknownTid = 5,
    /// Option negotiation refused (RFC 2347).
    BadOption = 8,
}

/// A decoded packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Read request: file name, mode and options in the order sent.
    Rrq {
        /// The file name as sent.
        file: &'a str,
        /// `octet` or `netascii` (case-insensitive).
        mode: &'a str,
        /// Option names (lower-cased by the reader) and values.
        options: Vec<(&'a str, &'a str)>,
    },
    /// Write request (always refused).
    Wrq,
    /// Data block.
    Data {
        /// Block number.
        block: u16,
        /// Payload.
        data: &'a [u8],
    },
    /// Acknowledgement.
    Ack {
        /// Block number.
        block: u16,
    },
    /// Error from the peer.
    Error {
        /// Code.
        code: u16,
        /// Message.
        message: &'a str,
    },
    /// Option acknowledgement.
    Oack {
        /// Options.
        options: Vec<(&'a str, &'a str)>,
    },
}

/// Why a packet did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than its opcode or fixed fields.
    #[error("TFTP packet too short")]
    Short,
    /// Unknown opcode.
    #[error("Unknown TFTP opcode {0}")]
    Opcode(u16),
    /// A string field without its NUL, not UTF-8, or an odd option list.
    #[error("Malformed TFTP string field")]
    Field,
    /// Longer than any request we accept.
    #[error("TFTP request too long")]
    TooLong,
}

impl<'a> Packet<'a> {
    /// Decodes a datagram. Never panics.
    pub fn decode(b: &'a [u8]) -> Result<Self, DecodeError> {
        let (op, rest) = split_u16(b).ok_or(DecodeError::Short)?;
        match op {
            OP_RRQ | OP_WRQ => {
                if b.len() > MAX_REQUEST {
                    return Err(DecodeError::TooLong);
                }
                if op == OP_WRQ {
                    return Ok(Self::Wrq);
                }
                let mut fields = strings(rest)?;
                if fields.len() < 2 || fields.len() % 2 != 0 {
                    return Err(DecodeError::Field);
                }
                let options = fields.split_off(2);
                let options = options.chunks(2).map(|c| (c[0], c[1])).collect();
                Ok(Self::Rrq {
                    file: fields[0],
                    mode: fields[1],
                    options,
                })
            }
            OP_DATA => {
                let (block, data) = split_u16(rest).ok_or(DecodeError::Short)?;
                Ok(Self::Data { block, data })
            }
            OP_ACK => {
                let (block, _) = split_u16(rest).ok_or(DecodeError::Short)?;
                Ok(Self::Ack { block })
            }
            OP_ERROR => {
                let (code, msg) = split_u16(rest).ok_or(DecodeError::Short)?;
                // Be lenient with the message: some clients omit the NUL.
                let msg = msg.split(|&c| c == 0).next().unwrap_or_default();
                let message = std::str::from_utf8(msg).unwrap_or("");
                Ok(Self::Error { code, message })
            }
            OP_OACK => {
                let fields = strings(rest)?;
                if fields.len() % 2 != 0 {
                    return Err(DecodeError::Field);
                }
                Ok(Self::Oack {
                    options: fields.chunks(2).map(|c| (c[0], c[1])).collect(),
                })
            }
            other => Err(DecodeError::Opcode(other)),
        }
    }
}

fn split_u16(b: &[u8]) -> Option<(u16, &[u8])> {
    let (head, rest) = b.split_first_chunk::<2>()?;
    Some((u16::from_be_bytes(*head), rest))
}

/// NUL-terminated strings filling the whole buffer.
fn strings(mut b: &[u8]) -> Result<Vec<&str>, DecodeError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let end = b.iter().position(|&c| c == 0).ok_or(DecodeError::Field)?;
        out.push(std::str::from_utf8(&b[..end]).map_err(|_| DecodeError::Field)?);
        b = &b[end + 1..];
    }
    Ok(out)
}

/// Encodes a DATA packet header followed by `data`.
pub fn data(block: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + payload.len());
    v.extend_from_slice(&OP_DATA.to_be_bytes());
    v.extend_from_slice(&block.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Encodes an ACK.
pub fn ack(block: u16) -> Vec<u8> {
    let mut v = OP_ACK.to_be_bytes().to_vec();
    v.extend_from_slice(&block.to_be_bytes());
    v
}

/// Encodes an ERROR.
pub fn error(code: ErrorCode, message: &str) -> Vec<u8> {
    let mut v = OP_ERROR.to_be_bytes().to_vec();
    v.extend_from_slice(&(code as u16).to_be_bytes());
    v.extend(message.bytes().filter(|&c| c != 0));
    v.push(0);
    v
}

/// Encodes an OACK.
pub fn oack(options: &[(&str, String)]) -> Vec<u8> {
    let mut v = OP_OACK.to_be_bytes().to_vec();
    for (k, val) in options {
        v.extend_from_slice(k.as_bytes());
        v.push(0);
        v.extend_from_slice(val.as_bytes());
        v.push(0);
    }
    v
}

/// Encodes a read request (for test clients and the benchmark).
pub fn rrq(file: &str, options: &[(&str, &str)]) -> Vec<u8> {
    let mut v = OP_RRQ.to_be_bytes().to_vec();
    for s in [file, "octet"] {
        v.extend_from_slice(s.as_bytes());
        v.push(0);
    }
    for (k, val) in options {
        v.extend_from_slice(k.as_bytes());
        v.push(0);
        v.extend_from_slice(val.as_bytes());
        v.push(0);
    }
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn request_with_options_round_trips() {
        let b = rrq("a/b.efi", &[("blksize", "1468"), ("tsize", "0")]);
        let p = Packet::decode(&b).unwrap();
        assert_eq!(
            p,
            Packet::Rrq {
                file: "a/b.efi",
                mode: "octet",
                options: vec![("blksize", "1468"), ("tsize", "0")]
            }
        );
    }

    #[test]
    fn bad_packets_are_errors() {
        assert_eq!(Packet::decode(&[]), Err(DecodeError::Short));
        assert_eq!(Packet::decode(&[0, 1, b'a']), Err(DecodeError::Field));
        assert_eq!(Packet::decode(&[0, 1, b'a', 0]), Err(DecodeError::Field));
        assert_eq!(Packet::decode(&[0, 9]), Err(DecodeError::Opcode(9)));
        assert_eq!(Packet::decode(&[0, 4, 1]), Err(DecodeError::Short));
        assert_eq!(
            Packet::decode(&[0, 5, 0, 1, b'x']),
            Ok(Packet::Error {
                code: 1,
                message: "x"
            })
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]
        #[test]
        fn decoder_never_panics(b in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let _ = Packet::decode(&b);
        }

        #[test]
        fn requests_with_random_strings_never_panic(
            parts in proptest::collection::vec("[a-z0-9./\\x00-\\x7f]{0,20}", 0..8)
        ) {
            let mut b = OP_RRQ.to_be_bytes().to_vec();
            for p in parts { b.extend_from_slice(p.as_bytes()); b.push(0); }
            let _ = Packet::decode(&b);
        }
    }
}
