//! TOTP (RFC 6238): the second factor that elevates an operator session.
//!
//! An operator's key proves who they are; a six-digit code from their phone proves
//! they are at the keyboard now. The node keeps the shared secret, checks codes
//! within a small window for clock drift, and refuses a code it has already
//! accepted ([`Verifier`] remembers the last time step used).

use hmac::{Hmac, Mac as _};

use zeroize::Zeroizing;

/// RFC 6238 §4.1: the default time step.
pub const DEFAULT_STEP_SECS: u64 = 30;
/// Steps either side of now that are accepted: one step (30 s) covers phone clocks
/// that drift and the time it takes to type.
pub const DEFAULT_WINDOW: u64 = 1;

/// The HMAC hash. SHA-1 is what authenticator apps default to; RFC 6238 also
/// defines SHA-256 and SHA-512.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA-1.
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

/// Why a TOTP secret or code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TotpError {
    /// Secret shorter than RFC 4226 §4's 128-bit minimum.
    #[error("TOTP secret is {0} bytes; at least 16 are required")]
    ShortSecret(usize),
    /// Secret text is not base32.
    #[error("TOTP secret is not valid base32")]
    BadSecret,
    /// Digits outside 6..=8.
    #[error("TOTP codes have 6 to 8 digits, not {0}")]
    BadDigits(u32),
    /// The code does not match any step in the window.
    #[error("TOTP code is wrong or expired")]
    WrongCode,
    /// The code was already used.
    #[error("TOTP code was already used")]
    Reused,
}

/// A TOTP generator/checker over a shared secret. The secret is wiped on drop and
/// never printed.
#[derive(Clone)]
pub struct Totp {
    secret: Zeroizing<Vec<u8>>,
    algorithm: Algorithm,
    digits: u32,
    step: u64,
}

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Totp")
            .field("secret", &"..")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("step", &self.step)
            .finish()
    }
}

impl Totp {
    /// A checker over raw secret bytes.
    pub fn new(secret: &[u8], algorithm: Algorithm, digits: u32) -> Result<Self, TotpError> {
        if secret.len() < 16 {
            return Err(TotpError::ShortSecret(secret.len()));
        }
        if !(6..=8).contains(&digits) {
            return Err(TotpError::BadDigits(digits));
        }
        Ok(Self {
            secret: Zeroizing::new(secret.to_vec()),
            algorithm,
            digits,
            step: DEFAULT_STEP_SECS,
        })
    }

    /// A fresh random 20-byte secret (RFC 4226's recommended length), SHA-1, 6 digits:
    /// what every authenticator app accepts.
    pub fn generate() -> Result<Self, TotpError> {
        let mut s = Zeroizing::new([0u8; 20]);
        getrandom::getrandom(s.as_mut()).map_err(|_| TotpError::BadSecret)?;
        Self::new(s.as_ref(), Algorithm::Sha1, 6)
    }

    /// Parses a base32 secret as shown by authenticator apps (spaces and case ignored).
    pub fn from_base32(text: &str, algorithm: Algorithm, digits: u32) -> Result<Self, TotpError> {
        let clean: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes = Zeroizing::new(
            data_encoding::BASE32_NOPAD
                .decode(clean.as_bytes())
                .map_err(|_| TotpError::BadSecret)?,
        );
        Self::new(&bytes, algorithm, digits)
    }

    /// The secret in base32, for enrolment. Handle as a secret.
    pub fn secret_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(data_encoding::BASE32_NOPAD.encode(&self.secret))
    }

    /// An `otpauth://` URI for QR enrolment. Handle as a secret.
    pub fn provisioning_uri(&self, issuer: &str, account: &str) -> Zeroizing<String> {
        let alg = match self.algorithm {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        };
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        };
        Zeroizing::new(format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={alg}&digits={}&period={}",
            enc(issuer),
            enc(account),
            self.secret_base32().as_str(),
            enc(issuer),
            self.digits,
            self.step
        ))
    }

    /// The time step counter for Unix time `t` (RFC 6238 §4.2, T0 = 0).
    pub fn step_at(&self, t: u64) -> u64 {
        t / self.step
    }

    /// The code for time step `counter` (HOTP, RFC 4226 §5.3).
    pub fn code_for_step(&self, counter: u64) -> String {
        let msg = counter.to_be_bytes();
        let mac = hmac_bytes(self.algorithm, &self.secret, &msg);
        // Dynamic truncation: the low nibble of the last byte picks 4 bytes.
        let off = usize::from(mac.last().copied().unwrap_or_default() & 0x0f);
        let bin = u32::from_be_bytes([
            mac.get(off).copied().unwrap_or_default() & 0x7f,
            mac.get(off + 1).copied().unwrap_or_default(),
            mac.get(off + 2).copied().unwrap_or_default(),
            mac.get(off + 3).copied().unwrap_or_default(),
        ]);
        let code = bin % 10u32.pow(self.digits);
        format!("{code:0width$}", width = self.digits as usize)
    }

    /// The code at Unix time `t`.
    pub fn code_at(&self, t: u64) -> String {
        self.code_for_step(self.step_at(t))
    }

    /// Finds the step within `window` of `now` whose code is `code`, comparing in
    /// constant time.
    fn matching_step(&self, code: &str, now: u64, window: u64) -> Option<u64> {
        let centre = self.step_at(now);
        let mut found = None;
        for s in centre.saturating_sub(window)..=centre.saturating_add(window) {
            let expect = self.code_for_step(s);
            if bool::from(subtle::ConstantTimeEq::ct_eq(
                expect.as_bytes(),
                code.trim().as_bytes(),
            )) {
                found = Some(s);
            }
        }
        found
    }
}

fn hmac_bytes(algorithm: Algorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail; an empty
    // result would simply never match a code.
    macro_rules! mac {
        ($d:ty) => {
            match <Hmac<$d> as hmac::Mac>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(msg);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        };
    }
    match algorithm {
        Algorithm::Sha1 => mac!(sha1::Sha1),
        Algorithm::Sha256 => mac!(sha2::Sha256),
        Algorithm::Sha512 => mac!(sha2::Sha512),
    }
}

/// Checks codes for one enrolled operator and refuses reuse.
#[derive(Debug)]
pub struct Verifier {
    totp: Totp,
    window: u64,
    last_step: Option<u64>,
}

impl Verifier {
    /// A verifier with the default drift window.
    pub fn new(totp: Totp) -> Self {
        Self {
            totp,
            window: DEFAULT_WINDOW,
            last_step: None,
        }
    }

    /// Accepts `code` at Unix time `now` once. Returns the step it matched; a code
    /// for that step or an earlier one is refused afterwards, so a code seen over a
    /// shoulder cannot be replayed.
    pub fn verify(&mut self, code: &str, now: u64) -> Result<u64, TotpError> {
        let step = self
            .totp
            .matching_step(code, now, self.window)
            .ok_or(TotpError::WrongCode)?;
        if self.last_step.is_some_and(|last| step <= last) {
            return Err(TotpError::Reused);
        }
        self.last_step = Some(step);
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B seeds: the ASCII digits repeated to the hash's size.
    fn seed(len: usize) -> Vec<u8> {
        b"1234567890".iter().cycle().take(len).copied().collect()
    }

    #[test]
    fn rfc6238_appendix_b_vectors() {
        let cases: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        let sha1 = Totp::new(&seed(20), Algorithm::Sha1, 8).unwrap();
        let sha256 = Totp::new(&seed(32), Algorithm::Sha256, 8).unwrap();
        let sha512 = Totp::new(&seed(64), Algorithm::Sha512, 8).unwrap();
        for (t, c1, c256, c512) in cases {
            assert_eq!(sha1.code_at(t), c1, "SHA1 at {t}");
            assert_eq!(sha256.code_at(t), c256, "SHA256 at {t}");
            assert_eq!(sha512.code_at(t), c512, "SHA512 at {t}");
        }
    }

    #[test]
    fn window_and_replay() {
        let totp = Totp::new(&seed(20), Algorithm::Sha1, 6).unwrap();
        let mut v = Verifier::new(totp.clone());
        let now = 1_700_000_000;
        // A code from the previous step (typed slowly) is accepted once.
        let prev = totp.code_at(now - 30);
        assert!(v.verify(&prev, now).is_ok());
        assert_eq!(v.verify(&prev, now), Err(TotpError::Reused));
        // The current code is still fine, then reused is refused.
        let cur = totp.code_at(now);
        assert!(v.verify(&cur, now).is_ok());
        assert_eq!(v.verify(&cur, now), Err(TotpError::Reused));
        // Two steps away is outside the window.
        let mut v = Verifier::new(totp.clone());
        assert_eq!(
            v.verify(&totp.code_at(now - 90), now),
            Err(TotpError::WrongCode)
        );
        assert_eq!(v.verify("000000x", now), Err(TotpError::WrongCode));
    }

    #[test]
    fn base32_round_trip_and_bad_secrets() {
        let t = Totp::generate().unwrap();
        let b32 = t.secret_base32();
        let back = Totp::from_base32(&b32.to_lowercase(), Algorithm::Sha1, 6).unwrap();
        assert_eq!(back.code_at(1_000_000), t.code_at(1_000_000));
        assert_eq!(
            Totp::new(b"short", Algorithm::Sha1, 6).unwrap_err(),
            TotpError::ShortSecret(5)
        );
        assert_eq!(
            Totp::from_base32("!!!!", Algorithm::Sha1, 6).unwrap_err(),
            TotpError::BadSecret
        );
        assert_eq!(
            Totp::new(&seed(20), Algorithm::Sha1, 9).unwrap_err(),
            TotpError::BadDigits(9)
        );
        assert!(!format!("{t:?}").contains(b32.as_str()));
        assert!(
            t.provisioning_uri("Nodus", "farmer@node")
                .starts_with("otpauth://totp/Nodus:")
        );
    }
}
