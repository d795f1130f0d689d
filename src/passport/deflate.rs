//! A small zlib (RFC 1950) / DEFLATE (RFC 1951) encoder for issuing passports: one block with
//! the fixed Huffman codes, greedy LZ77 matching over a 1 KiB window.
//!
//! Why not zlib? A passport is under 1 KiB. zlib (any implementation) sets up and clears
//! ~128–256 KB of window and hash tables per stream, which costs about half a signature
//! (benches/passport.rs); a stored (uncompressed) block costs nothing but makes a 3-dose
//! passport three QR versions larger. Here the whole state is a 2 KB hash table on the stack,
//! and the repeats that matter (vaccine codes, field names of each dose) are all within 1 KiB.
//! Decoding uses flate2's inflate, which the property tests use as the oracle.

/// Largest back-reference distance we emit. The zlib header still declares the standard
/// 32 KiB window, which every decoder accepts.
const WINDOW: usize = 1024;
/// Hash table size (entries); 10 bits of a 3-byte hash.
const HASH_BITS: u32 = 10;
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;

/// RFC 1951 §3.2.5: base lengths of codes 257..285 and their extra bits.
const LENGTH_BASE: [u16; 29] =
    [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA: [u8; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
/// Base distances of codes 0..19 (the window stops at 1024) and their extra bits.
const DIST_BASE: [u16; 20] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769];
const DIST_EXTRA: [u8; 20] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8];

/// Bits written least significant first, as DEFLATE packs them, 32 at a time.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    /// Appends a packed code (see [`pack`]): at most 31 bits, least significant first.
    #[inline(always)]
    fn put(&mut self, packed: u32) {
        let (value, count) = (packed >> 5, packed & 31);
        self.acc |= u64::from(value) << self.n;
        self.n += count;
        if self.n >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.n -= 32;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        while self.n > 0 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n = self.n.saturating_sub(8);
        }
        self.out
    }
}

/// `value` bits (already in output order) and their count, packed as `value << 5 | count`,
/// so that one table entry holds a whole code.
const fn pack(value: u32, count: u32) -> u32 {
    value << 5 | count
}

/// The fixed Huffman code of a literal/length symbol (RFC 1951 §3.2.6), bit-reversed for
/// least-significant-first output, and its length.
const fn fixed_code(sym: u32) -> (u32, u32) {
    let (code, len) = if sym < 144 {
        (0x30 + sym, 8)
    } else if sym < 256 {
        (0x190 + (sym - 144), 9)
    } else if sym < 280 {
        (sym - 256, 7)
    } else {
        (0xC0 + (sym - 280), 8)
    };
    (code.reverse_bits() >> (32 - len), len)
}

/// Every literal/length symbol's code, packed.
const LITERAL: [u32; 288] = {
    let mut t = [0u32; 288];
    let mut sym = 0;
    while sym < 288 {
        let (code, len) = fixed_code(sym as u32);
        t[sym] = pack(code, len);
        sym += 1;
    }
    t
};

/// Every match length's code followed by its extra bits (RFC 1951 §3.2.5), packed.
const LENGTH: [u32; MAX_MATCH + 1] = {
    let mut t = [0u32; MAX_MATCH + 1];
    let mut len = MIN_MATCH;
    let mut li = 0;
    while len <= MAX_MATCH {
        while li + 1 < LENGTH_BASE.len() && LENGTH_BASE[li + 1] as usize <= len {
            li += 1;
        }
        let (code, code_len) = fixed_code(257 + li as u32);
        let extra = (len - LENGTH_BASE[li] as usize) as u32;
        t[len] = pack(code | extra << code_len, code_len + LENGTH_EXTRA[li] as u32);
        len += 1;
    }
    t
};

/// Every distance's 5-bit code followed by its extra bits, packed.
const DISTANCE: [u32; WINDOW + 1] = {
    let mut t = [0u32; WINDOW + 1];
    let mut dist = 1;
    let mut di = 0;
    while dist <= WINDOW {
        while di + 1 < DIST_BASE.len() && DIST_BASE[di + 1] as usize <= dist {
            di += 1;
        }
        let code = (di as u32).reverse_bits() >> 27;
        let extra = (dist - DIST_BASE[di] as usize) as u32;
        t[dist] = pack(code | extra << 5, 5 + DIST_EXTRA[di] as u32);
        dist += 1;
    }
    t
};

#[inline(always)]
fn hash(b: &[u8]) -> usize {
    let v = u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
    (v.wrapping_mul(2_654_435_761) >> (32 - HASH_BITS)) as usize
}

/// Length of the common prefix of `a` and `b`, 8 bytes at a time.
#[inline(always)]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let max = a.len().min(b.len());
    let mut n = 0;
    while n + 8 <= max {
        let x = u64::from_le_bytes(a[n..n + 8].try_into().unwrap_or([0; 8]))
            ^ u64::from_le_bytes(b[n..n + 8].try_into().unwrap_or([0; 8]));
        if x != 0 {
            return n + (x.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while n < max && a[n] == b[n] {
        n += 1;
    }
    n
}

/// Adler-32 (RFC 1950 §9), reduced every 5552 bytes as zlib does.
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that can be summed before the u32 could overflow.
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// Compresses `data` into a zlib stream (header `78 01`, one fixed-Huffman block, Adler-32).
pub(crate) fn zlib_compress(data: &[u8]) -> Vec<u8> {
    let mut w = BitWriter { out: Vec::with_capacity(data.len() + 16), acc: 0, n: 0 };
    // CMF 0x78: deflate, 32 KiB window; FLG 0x01: fastest, no dictionary, check bits.
    w.out.extend_from_slice(&[0x78, 0x01]);
    w.put(pack(0b011, 3)); // BFINAL = 1, BTYPE = 01: fixed Huffman codes
    // Positions are stored + 1, so that 0 means "none yet".
    let mut head = [0u16; 1 << HASH_BITS];
    let mut i = 0;
    while i < data.len() {
        let mut best = 0;
        let mut dist = 0;
        if i + MIN_MATCH <= data.len() {
            let h = hash(&data[i..]);
            let cand = usize::from(head[h]);
            head[h] = (i + 1) as u16;
            if cand > 0 && i - (cand - 1) <= WINDOW {
                let j = cand - 1;
                let max = MAX_MATCH.min(data.len() - i);
                let len = common_prefix(&data[j..], &data[i..i + max]);
                if len >= MIN_MATCH {
                    best = len;
                    dist = i - j;
                }
            }
        }
        if best > 0 {
            w.put(LENGTH[best]);
            w.put(DISTANCE[dist]);
            // Index the positions the match covers, so later repeats can refer to them.
            let end = i + best;
            for k in i + 1..end.min(data.len().saturating_sub(MIN_MATCH - 1)) {
                head[hash(&data[k..])] = (k + 1) as u16;
            }
            i = end;
        } else {
            w.put(LITERAL[usize::from(data[i])]);
            i += 1;
        }
    }
    w.put(LITERAL[256]); // end of block
    let mut out = w.finish();
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Read as _;

    fn inflate(z: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(z).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn round_trips_empty_and_short_input() {
        for data in [&b""[..], b"a", b"ab", b"abc", b"aaaaaaaaaaaaaaaaaaaa"] {
            assert_eq!(inflate(&zlib_compress(data)), data);
        }
    }

    #[test]
    fn repeated_dose_entries_shrink() {
        let dose = b"\xa8btgi840539006bvpgJ07BX03bmplEU/1/21/1529bmamORG-100001699bdn\x01bsd\x02bdtj2021-07-01bcobVN";
        let data: Vec<u8> = dose.iter().chain(dose.iter()).chain(dose.iter()).copied().collect();
        let z = zlib_compress(&data);
        assert_eq!(inflate(&z), data);
        assert!(z.len() < data.len() * 2 / 3, "{} of {}", z.len(), data.len());
    }

    #[test]
    fn matches_of_every_length_and_distance_decode() {
        let mut data = Vec::new();
        for len in 3..=300usize {
            data.extend((0..len).map(|k| (k * 7 % 251) as u8));
            data.extend((0..len % 50).map(|k| (k * 13 % 17) as u8));
        }
        assert_eq!(inflate(&zlib_compress(&data)), data);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

        #[test]
        fn any_bytes_round_trip(data in prop::collection::vec(any::<u8>(), 0..3000)) {
            prop_assert_eq!(inflate(&zlib_compress(&data)), data);
        }

        #[test]
        fn repetitive_bytes_round_trip(seed in prop::collection::vec(0u8..4, 1..40), n in 1usize..2000) {
            let data: Vec<u8> = seed.iter().cycle().take(n).copied().collect();
            prop_assert_eq!(inflate(&zlib_compress(&data)), data);
        }
    }
}
