//! Checksums and deterministic byte patterns: pure functions of their inputs, so a
//! child process produces exactly the bytes (and sums) its parent expects.
//!
//! * [`fnv1a`]: byte-at-a-time FNV-1a, continued from a previous value: the sum of a
//!   stream does not depend on how it was cut;
//! * [`fnv1a_words`]: FNV-1a over 8-byte words (the last one zero-padded), fast in
//!   debug builds; the sum depends on the cuts, which must then agree;
//! * [`checksum`]: a one-shot, length-sensitive 64-bit sum of a message;
//! * [`xorshift`], [`XorShift`], [`mix`]: tiny seeded generators;
//! * [`fill`], [`pattern`], [`Stream`]: deterministic bytes.

/// The FNV-1a offset basis: where [`fnv1a`] and [`fnv1a_words`] sums start.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a of `bytes`, continued from `h` (start with [`FNV_START`]).
#[inline]
pub fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }
    h
}

/// FNV-1a over the 8-byte little-endian words of `bytes` (the last one zero-padded),
/// continued from `h` (start with [`FNV_START`]).
#[inline]
pub fn fnv1a_words(mut h: u64, bytes: &[u8]) -> u64 {
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(FNV_PRIME);
    }
    h
}

/// A word-at-a-time checksum of `bytes`, sensitive to their order and length.
#[inline]
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h = FNV_START ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap());
        h = (h ^ w).wrapping_mul(FNV_PRIME).rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }
    mix(h)
}

/// splitmix64's finaliser: a good 64-bit mix.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One xorshift64 step of `state` (which must not be 0); returns the new state.
#[inline]
pub fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// xorshift64 seeded through [`mix`]: tiny, seedable by any value, the same in every
/// process.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> XorShift {
        XorShift(mix(seed) | 1)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        xorshift(&mut self.0)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `1/n`.
    #[inline]
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// Fills `buf` with the next bytes of the xorshift64 sequence from `state` (non-zero),
/// eight bytes a step; `state` is left where a following call continues.
pub fn fill(buf: &mut [u8], state: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        let b = xorshift(state).to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// `len` deterministic bytes for `seed` (any value); a shorter pattern of the same seed
/// is a prefix of a longer one.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v = vec![0u8; len];
    fill(&mut v, &mut state);
    v
}

/// A deterministic byte stream, produced in pieces of any size: byte `p` is byte
/// `p % 8` of `mix(seed ^ p / 8)`.
pub struct Stream {
    seed: u64,
    pos: u64,
    word: [u8; 8],
}

impl Stream {
    /// The stream for `seed`, at position 0.
    pub fn new(seed: u64) -> Stream {
        Stream {
            seed,
            pos: 0,
            word: mix(seed).to_le_bytes(),
        }
    }

    /// Bytes produced so far.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Writes the next `buf.len()` bytes of the stream into `buf`.
    #[inline]
    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            let i = (self.pos & 7) as usize;
            if i == 0 {
                self.word = mix(self.seed ^ (self.pos >> 3)).to_le_bytes();
            }
            *b = self.word[i];
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_fill_from_its_seed_and_prefix_stable() {
        let long = pattern(100, 7);
        assert_eq!(&pattern(13, 7)[..], &long[..13]);
        let mut state = 7u64.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut buf = [0u8; 100];
        fill(&mut buf, &mut state);
        assert_eq!(&buf[..], &long[..]);
        assert_ne!(pattern(100, 8), long);
    }

    #[test]
    fn fnv1a_continues_across_cuts() {
        let data = pattern(1000, 1);
        let whole = fnv1a(FNV_START, &data);
        let (a, b) = data.split_at(333);
        assert_eq!(fnv1a(fnv1a(FNV_START, a), b), whole);
        // Word-wise, a cut at a multiple of 8 keeps the sum.
        let (a, b) = data.split_at(336);
        let words = fnv1a_words(FNV_START, &data);
        assert_eq!(fnv1a_words(fnv1a_words(FNV_START, a), b), words);
    }

    #[test]
    fn checksum_sees_length_and_order() {
        assert_ne!(checksum(&[1, 0]), checksum(&[1]));
        assert_ne!(checksum(&[1, 2]), checksum(&[2, 1]));
    }

    #[test]
    fn stream_does_not_depend_on_piece_sizes() {
        let mut one = Stream::new(3);
        let mut whole = [0u8; 77];
        one.fill(&mut whole);
        let mut pieces = Stream::new(3);
        let mut cut = [0u8; 77];
        let (a, b) = cut.split_at_mut(13);
        pieces.fill(a);
        pieces.fill(b);
        assert_eq!(whole, cut);
        assert_eq!(pieces.pos(), 77);
    }
}
