//! [`Glob`]: the `*` / `?` patterns health overrides use to name components,
//! sensors and series. No character classes: operators write names, not regexes.

use std::fmt;

/// A compiled pattern. `*` matches any run of characters (slashes and dots
/// included, since chip ids are paths); `?` matches one character; everything else
/// matches itself. A pattern without wildcards is an exact name.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Box<[char]>,
    text: Box<str>,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GlobError {
    /// The pattern is empty.
    #[error("Empty pattern")]
    Empty,
    /// The pattern is longer than [`MAX_GLOB_LEN`] characters.
    #[error("Pattern longer than {MAX_GLOB_LEN} characters")]
    TooLong,
}

/// Longest accepted pattern; component names are far shorter, and the bound keeps
/// matching cheap.
pub const MAX_GLOB_LEN: usize = 256;

impl Glob {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        let chars: Box<[char]> = pattern.chars().collect();
        if chars.len() > MAX_GLOB_LEN {
            return Err(GlobError::TooLong);
        }
        Ok(Self {
            pattern: chars,
            text: pattern.into(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let t: Vec<char> = name.chars().collect();
        let p = &self.pattern;
        // Classic two-pointer match with one backtrack point: linear in practice,
        // O(p·t) at worst, never exponential.
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
                pi += 1;
                ti += 1;
            } else if pi < p.len() && p[pi] == '*' {
                star = Some((pi, ti));
                pi += 1;
            } else if let Some((sp, st)) = star {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).unwrap().matches(t)
    }

    #[test]
    fn exact_star_and_question() {
        assert!(m("coretemp/temp2", "coretemp/temp2"));
        assert!(!m("coretemp/temp2", "coretemp/temp22"));
        assert!(m("coretemp/temp*", "coretemp/temp22"));
        assert!(m("*/temp?", "platform/coretemp.0/temp1"));
        assert!(!m("*/temp?", "platform/coretemp.0/temp10"));
        assert!(m("nic veth*", "nic veth3a2b"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("disk.*.smart_*", "disk.sda.smart_reallocated_sectors"));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let t = "a".repeat(200);
        assert!(!m(&"*a".repeat(100).replace("*a*a", "*a*b"), &t));
    }

    #[test]
    fn empty_and_long_patterns_are_refused() {
        assert_eq!(Glob::new(""), Err(GlobError::Empty));
        assert_eq!(Glob::new(&"x".repeat(300)), Err(GlobError::TooLong));
    }
}
