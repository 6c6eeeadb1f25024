//! Exact integer arithmetic for money: products wider than 128 bits, divided back
//! down, with the remainder reported so callers can carry it instead of losing it.

/// Basis points in one whole (100 %).
pub const BPS: u128 = 10_000;

/// The full 256-bit product of two `u128`s, as `(high, low)` halves.
fn widening_mul(a: u128, b: u128) -> (u128, u128) {
    const MASK: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & MASK);
    let (b1, b0) = (b >> 64, b & MASK);
    // Each partial product of two 64-bit halves fits in 128 bits.
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    // At most 3 × (2^64 − 1): fits.
    let mid = (p00 >> 64) + (p01 & MASK) + (p10 & MASK);
    let low = (p00 & MASK) | (mid << 64);
    // The true product is below 2^256, so the high half cannot overflow.
    let high = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (high, low)
}

/// `⌊a × b / c⌋` and `(a × b) mod c`, computed exactly with a 256-bit intermediate.
/// `None` when `c` is zero or the quotient does not fit in 128 bits.
pub fn mul_div_rem(a: u128, b: u128, c: u128) -> Option<(u128, u128)> {
    if c == 0 {
        return None;
    }
    let (high, low) = widening_mul(a, b);
    if high >= c {
        return None;
    }
    // Schoolbook binary long division of (high:low) by c; `rem < c` holds before
    // every shift, so the shifted value is below 2c and one subtraction suffices.
    let mut rem = high;
    let mut quotient = 0u128;
    for i in (0..128).rev() {
        let overflowed = rem >> 127 == 1;
        rem = (rem << 1) | ((low >> i) & 1);
        quotient <<= 1;
        if overflowed || rem >= c {
            // With `overflowed`, the true value is 2^128 + rem ≥ c; wrapping
            // subtraction yields exactly that value minus c, which is below c.
            rem = rem.wrapping_sub(c);
            quotient |= 1;
        }
    }
    Some((quotient, rem))
}

/// `⌊a × b / c⌋`, exactly. `None` when `c` is zero or the result overflows.
pub fn mul_div(a: u128, b: u128, c: u128) -> Option<u128> {
    mul_div_rem(a, b, c).map(|(q, _)| q)
}

/// `⌊amount × bps / 10 000⌋`: a basis-point share, rounded down.
pub fn bps_of(amount: u128, bps: u32) -> u128 {
    // bps ≤ 10 000 is enforced by genesis validation, so the quotient never exceeds
    // `amount` and cannot overflow; `min` keeps that true even if it were not.
    mul_div(amount, u128::from(bps).min(BPS), BPS).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        assert_eq!(mul_div_rem(7, 5, 3), Some((11, 2)));
        assert_eq!(mul_div(u128::MAX, u128::MAX, u128::MAX), Some(u128::MAX));
        assert_eq!(mul_div(u128::MAX, 2, 4), Some(u128::MAX / 2));
        assert_eq!(mul_div(u128::MAX, 2, 1), None);
        assert_eq!(mul_div(1, 1, 0), None);
        assert_eq!(bps_of(1_000, 250), 25);
        assert_eq!(bps_of(999, 5_000), 499);
    }

    proptest! {
        #[test]
        fn matches_native_when_product_fits(a in any::<u64>(), b in any::<u64>(), c in 1..u128::MAX) {
            let p = u128::from(a) * u128::from(b);
            prop_assert_eq!(mul_div_rem(u128::from(a), u128::from(b), c), Some((p / c, p % c)));
        }

        #[test]
        fn reconstructs_the_product(a in any::<u128>(), b in any::<u128>(), c in 1..u128::MAX) {
            if let Some((q, r)) = mul_div_rem(a, b, c) {
                prop_assert!(r < c);
                // q·c + r == a·b, checked in 256 bits.
                let (qh, ql) = widening_mul(q, c);
                let (lo, carry) = ql.overflowing_add(r);
                let hi = qh + u128::from(carry);
                prop_assert_eq!((hi, lo), widening_mul(a, b));
            } else {
                prop_assert!(widening_mul(a, b).0 >= c);
            }
        }
    }
}
