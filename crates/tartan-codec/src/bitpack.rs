/// Packs bucket indices (each `< 2^nbits`) into bytes: value `i` occupies bits
/// `(i·nbits) mod 8 ..` of byte `i·nbits / 8`, lowest bits first. The last byte is zero-padded.
///
/// # Panics
/// If `nbits` is not 1, 2, 4 or 8, or a value does not fit in `nbits` bits.
pub fn pack(values: &[u8], nbits: u8) -> Vec<u8> {
    let mut out = vec![0u8; (values.len() * nbits as usize).div_ceil(8)];
    pack_into(values, nbits, &mut out);
    out
}

/// [`pack`] into a buffer of exactly `ceil(len · nbits / 8)` bytes.
pub(crate) fn pack_into(values: &[u8], nbits: u8, out: &mut [u8]) {
    assert!(matches!(nbits, 1 | 2 | 4 | 8), "nbits must be 1, 2, 4 or 8");
    assert_eq!(out.len(), (values.len() * nbits as usize).div_ceil(8));
    let per_byte = 8 / nbits as usize;
    for (byte, chunk) in out.iter_mut().zip(values.chunks(per_byte)) {
        let mut b = 0u8;
        for (j, &v) in chunk.iter().enumerate() {
            assert!(nbits == 8 || v >> nbits == 0, "value {v} does not fit in {nbits} bits");
            b |= v << (j * nbits as usize);
        }
        *byte = b;
    }
}

/// Inverse of [`pack`]: the first `n` values.
///
/// # Panics
/// If `nbits` is not 1, 2, 4 or 8, or `packed` is shorter than `n` values need.
pub fn unpack(packed: &[u8], nbits: u8, n: usize) -> Vec<u8> {
    assert!(matches!(nbits, 1 | 2 | 4 | 8), "nbits must be 1, 2, 4 or 8");
    assert!(packed.len() * 8 >= n * nbits as usize, "packed buffer too short");
    let mask = ((1u16 << nbits) - 1) as u8;
    (0..n)
        .map(|i| {
            let bit = i * nbits as usize;
            (packed[bit / 8] >> (bit % 8)) & mask
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pack_roundtrip(nbits in prop::sample::select(vec![1u8, 2, 4, 8]), raw in prop::collection::vec(any::<u8>(), 0..600)) {
            let values: Vec<u8> = raw.iter().map(|v| if nbits == 8 { *v } else { v & ((1 << nbits) - 1) }).collect();
            let packed = pack(&values, nbits);
            prop_assert_eq!(packed.len(), (values.len() * nbits as usize).div_ceil(8));
            prop_assert_eq!(unpack(&packed, nbits, values.len()), values);
        }
    }

    #[test]
    fn layout_is_low_bits_first() {
        assert_eq!(pack(&[1, 0, 1, 1, 0, 0, 0, 1], 1), vec![0b1000_1101]);
        assert_eq!(pack(&[3, 0, 2, 1], 2), vec![0b01_10_00_11]);
        assert_eq!(pack(&[0xA, 0x5, 0x1], 4), vec![0x5A, 0x01]);
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn rejects_oversized_values() {
        pack(&[4], 2);
    }
}
