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

/// Bits needed to store every value below `n`: ⌈log2 n⌉, at least 1. Centroid ids of a
/// K-centroid codebook take `bits_for(K)` bits.
pub fn bits_for(n: u64) -> u32 {
    (u64::BITS - n.saturating_sub(1).leading_zeros()).max(1)
}

/// Appends `values` to `out` as one bit stream of `width`-bit fields (1 ≤ width ≤ 32): value
/// `i` occupies bits `i·width ..` of the appended bytes counted from the first byte's lowest bit
/// (little-endian), and the last byte is zero-padded. [`UintReader`] reads it back.
///
/// # Panics
/// If `width` is outside 1..=32 or a value does not fit in `width` bits.
pub fn pack_uints(values: &[u32], width: u32, out: &mut Vec<u8>) {
    assert!((1..=32).contains(&width), "width must be 1..=32, got {width}");
    out.reserve((values.len() * width as usize).div_ceil(8));
    let (mut acc, mut filled) = (0u64, 0u32);
    for &v in values {
        assert!(width == 32 || v >> width == 0, "value {v} does not fit in {width} bits");
        acc |= (v as u64) << filled;
        filled += width;
        while filled >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            filled -= 8;
        }
    }
    if filled > 0 {
        out.push(acc as u8);
    }
}

/// Bytes that `n` values of `width` bits take in a [`pack_uints`] stream.
pub fn packed_len(n: usize, width: u32) -> usize {
    (n * width as usize).div_ceil(8)
}

/// Random and sequential access to a [`pack_uints`] stream.
#[derive(Debug, Clone, Copy)]
pub struct UintReader<'a> {
    bytes: &'a [u8],
    width: u32,
    len: usize,
}

impl<'a> UintReader<'a> {
    /// A reader over the `bytes.len() · 8 / width` whole fields of `bytes`.
    ///
    /// # Panics
    /// If `width` is outside 1..=32.
    pub fn new(bytes: &'a [u8], width: u32) -> Self {
        assert!((1..=32).contains(&width), "width must be 1..=32, got {width}");
        Self { bytes, width, len: bytes.len() * 8 / width as usize }
    }
    /// Number of whole fields in the stream (trailing padding may add one spurious zero field
    /// when it holds `width` or more bits).
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the stream holds no whole field.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Field `i`.
    ///
    /// # Panics
    /// If `i ≥ len()`.
    #[inline]
    pub fn get(&self, i: usize) -> u32 {
        assert!(i < self.len, "field {i} of {}", self.len);
        self.load(i)
    }
    /// Fields `range`, in order.
    ///
    /// # Panics
    /// If the range ends beyond `len()`.
    #[inline]
    pub fn iter(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = u32> + 'a {
        assert!(range.end <= self.len, "fields up to {} of {}", range.end, self.len);
        let me = *self;
        range.map(move |i| me.load(i))
    }

    /// Replaces `out`'s contents with fields `range`, in order (vectorised where the CPU
    /// allows: [`tartan_kernels::unpack_uints`]).
    ///
    /// # Panics
    /// If the range ends beyond `len()`.
    #[inline]
    pub fn read_into(&self, range: std::ops::Range<usize>, out: &mut Vec<u32>) {
        assert!(range.end <= self.len, "fields up to {} of {}", range.end, self.len);
        out.clear();
        out.resize(range.len(), 0);
        tartan_kernels::unpack_uints(self.bytes, self.width, range.start, out);
    }

    /// Hints the CPU to bring the bytes of fields `range` into cache (no effect on any value;
    /// fields past the end are ignored): a caller about to read scattered documents one after
    /// another fetches the next while it reads this one.
    pub fn prefetch(&self, range: std::ops::Range<usize>) {
        let w = self.width as usize;
        let end = (range.end.min(self.len) * w).div_ceil(8);
        let start = (range.start * w / 8).min(end);
        tartan_kernels::prefetch(&self.bytes[start..end]);
    }

    /// Field `i`, known to be in bounds: one 8-byte little-endian load (a field spans at most
    /// 7 + 32 bits), copied through a zeroed buffer only at the stream's tail.
    #[inline]
    fn load(&self, i: usize) -> u32 {
        let bit = i * self.width as usize;
        let byte = bit / 8;
        let word = match self.bytes.get(byte..byte + 8) {
            Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")),
            None => {
                let mut b = [0u8; 8];
                let tail = &self.bytes[byte..];
                b[..tail.len()].copy_from_slice(tail);
                u64::from_le_bytes(b)
            }
        };
        ((word >> (bit % 8)) & ((1u64 << self.width) - 1)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prefetch_takes_any_range_and_changes_nothing() {
        let mut bytes = Vec::new();
        pack_uints(&[5, 9, 1, 7, 3], 4, &mut bytes);
        let r = UintReader::new(&bytes, 4);
        let before: Vec<u32> = r.iter(0..r.len()).collect();
        for range in [0..0, 0..5, 2..4, 4..9, 7..12] {
            r.prefetch(range);
        }
        assert_eq!(r.iter(0..r.len()).collect::<Vec<_>>(), before);
    }

    proptest! {
        #[test]
        fn pack_roundtrip(nbits in prop::sample::select(vec![1u8, 2, 4, 8]), raw in prop::collection::vec(any::<u8>(), 0..600)) {
            let values: Vec<u8> = raw.iter().map(|v| if nbits == 8 { *v } else { v & ((1 << nbits) - 1) }).collect();
            let packed = pack(&values, nbits);
            prop_assert_eq!(packed.len(), (values.len() * nbits as usize).div_ceil(8));
            prop_assert_eq!(unpack(&packed, nbits, values.len()), values);
        }
    }

    proptest! {
        #[test]
        fn uints_roundtrip(width in 1u32..=32, raw in prop::collection::vec(any::<u32>(), 0..300), lead in prop::collection::vec(any::<u8>(), 0..3)) {
            let values: Vec<u32> = raw.iter().map(|v| if width == 32 { *v } else { v & ((1 << width) - 1) }).collect();
            let mut out = lead.clone();
            pack_uints(&values, width, &mut out);
            let body = &out[lead.len()..];
            prop_assert_eq!(body.len(), packed_len(values.len(), width));
            let r = UintReader::new(body, width);
            prop_assert!(r.len() >= values.len() && r.len() < values.len() + 8);
            prop_assert_eq!(r.iter(0..values.len()).collect::<Vec<_>>(), values.clone());
            for (i, &v) in values.iter().enumerate() {
                prop_assert_eq!(r.get(i), v);
            }
        }
    }

    #[test]
    fn bits_for_is_ceil_log2() {
        let cases = [(0, 1), (1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (16384, 14), (16385, 15)];
        for (n, bits) in cases {
            assert_eq!(bits_for(n), bits, "n = {n}");
        }
        assert_eq!(bits_for(1 << 17), 17);
        assert_eq!(bits_for(u64::MAX), 64);
    }

    #[test]
    fn uint_layout_is_little_endian() {
        let mut out = Vec::new();
        pack_uints(&[0b101, 0b011, 0b111], 3, &mut out);
        assert_eq!(out, vec![0b11_011_101, 0b1]);
        assert_eq!(UintReader::new(&out, 3).get(2), 0b111);
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn uints_reject_oversized_values() {
        pack_uints(&[8], 3, &mut Vec::new());
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
