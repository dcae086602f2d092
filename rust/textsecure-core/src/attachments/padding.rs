//! Signal's attachment padding buckets.

/// The largest value Signal-Android's computation can return: it converts the bucket (a
/// `double`) with `.toInt()`, which saturates at `Int.MAX_VALUE`.
const JAVA_INT_MAX: f64 = 2_147_483_647.0;

/// Signal-Android's `PaddingInputStream.getPaddedSize`, computed with the same `double`
/// operations in the same order: `max(541, floor(1.05^ceil(ln(size) / ln(1.05))))`, then
/// `.toInt()` (saturating at 2^31 − 1).
///
/// Beyond Android's range (a plaintext larger than 2^31 − 1 bytes, for which Android's formula
/// returns less than the size), the plaintext is not padded: the result is never below `size`.
pub fn padded_size(size: u64) -> u64 {
    // `size as f64` is exact for every size below 2^53; Java's `size.toDouble()` is the same.
    #[allow(clippy::cast_precision_loss)]
    let s = size as f64;
    let exponent = (s.ln() / 1.05f64.ln()).ceil();
    let bucket = 1.05f64.powf(exponent).floor();
    let bucket = bucket.clamp(541.0, JAVA_INT_MAX);
    // `bucket` is an integer-valued double in [541, 2^31 − 1]; the cast is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bucket = bucket as u64;
    bucket.max(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_sizes_pad_to_541() {
        for s in [0u64, 1, 2, 100, 540, 541] {
            assert_eq!(padded_size(s), 541, "size {s}");
        }
        assert_eq!(padded_size(542), 568);
    }

    #[test]
    fn huge_sizes_are_not_padded_below_size() {
        assert_eq!(padded_size(2_147_483_647), 2_147_483_647);
        assert_eq!(padded_size(1 << 31), 1 << 31);
        assert_eq!(padded_size(5 << 30), 5 << 30);
    }
}
