//! Single byte ranges (RFC 9110 §14.1.2).

/// What to send for a `Range` header against a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranged {
    /// The whole file (no header, or one we choose to ignore, such as several ranges).
    Full,
    /// Bytes `start..=end`.
    Part {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// No byte of the range exists: answer 416.
    Unsatisfiable,
}

/// Interprets a `Range` header value.
pub fn parse(header: Option<&str>, size: u64) -> Ranged {
    let Some(h) = header else {
        return Ranged::Full;
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ranged::Full;
    };
    if spec.contains(',') {
        // Several ranges would need multipart/byteranges; serving the whole file
        // is allowed (§14.2) and no boot client asks for more than one.
        return Ranged::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ranged::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => {
            if start >= size {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part {
                    start,
                    end: end.min(size - 1),
                }
            }
        }
        (Ok(start), Err(_)) if b.is_empty() => {
            if start >= size {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part {
                    start,
                    end: size - 1,
                }
            }
        }
        (Err(_), Ok(suffix)) if a.is_empty() => {
            if suffix == 0 || size == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part {
                    start: size.saturating_sub(suffix),
                    end: size - 1,
                }
            }
        }
        _ => Ranged::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse(None, 10), Ranged::Full);
        assert_eq!(
            parse(Some("bytes=0-4"), 10),
            Ranged::Part { start: 0, end: 4 }
        );
        assert_eq!(
            parse(Some("bytes=5-"), 10),
            Ranged::Part { start: 5, end: 9 }
        );
        assert_eq!(
            parse(Some("bytes=-3"), 10),
            Ranged::Part { start: 7, end: 9 }
        );
        assert_eq!(
            parse(Some("bytes=-30"), 10),
            Ranged::Part { start: 0, end: 9 }
        );
        assert_eq!(
            parse(Some("bytes=8-100"), 10),
            Ranged::Part { start: 8, end: 9 }
        );
        assert_eq!(parse(Some("bytes=10-"), 10), Ranged::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 10), Ranged::Unsatisfiable);
        assert_eq!(parse(Some("bytes=4-2"), 10), Ranged::Full);
        assert_eq!(parse(Some("bytes=0-1,3-4"), 10), Ranged::Full);
        assert_eq!(parse(Some("items=0-1"), 10), Ranged::Full);
        assert_eq!(parse(Some("bytes=x-y"), 10), Ranged::Full);
    }
}
