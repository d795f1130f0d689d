//! Reading untrusted CBOR (RFC 8949) straight into JSON, for the claims of a passport.
//!
//! Why not ciborium's `Value` and a conversion? Verification is bounded below by the ECDSA
//! verify (~56 µs); building a `Value` tree and then a JSON tree cost ~4 µs of the 8 µs the
//! issue allows on top. Reading once into JSON halves that. Everything read is bounded: the
//! nesting depth by [`MAX_CBOR_DEPTH`], every declared length by the bytes that remain (so a
//! hostile length cannot make us allocate), and trailing bytes are refused.

use serde_json::Value as Json;

use super::cose::MAX_CBOR_DEPTH;

/// Why CBOR could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// Not well-formed CBOR (RFC 8949 §5.3.1), or past a bound.
    Syntax,
    /// A map repeats a key. RFC 8949 §5.6 makes such a map invalid; a reader that lets
    /// the last entry win (as JSON objects do) would show a payload other than the one
    /// another verifier sees.
    DuplicateKey,
}

/// A cursor over CBOR bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// The head of a data item: major type and argument (`None` for indefinite length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) major: u8,
    pub(crate) minor: u8,
    pub(crate) arg: Option<u64>,
}

const BREAK: u8 = 0xff;

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(n).ok_or(Malformed::Syntax)?;
        let s = self.buf.get(self.pos..end).ok_or(Malformed::Syntax)?;
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, Malformed> {
        Ok(*self.take(1)?.first().ok_or(Malformed::Syntax)?)
    }

    /// Counts down the entries of a map (or array) being read: `Some(n)` for a definite
    /// length, `None` for an indefinite one, which ends at a "break" byte (consumed here).
    pub(crate) fn next_entry(&mut self, remaining: &mut Option<u64>) -> bool {
        match remaining {
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                true
            }
            None => !self.peek_break(),
        }
    }

    fn peek_break(&mut self) -> bool {
        if self.buf.get(self.pos) == Some(&BREAK) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn head(&mut self) -> Result<Head, Malformed> {
        let b = self.byte()?;
        let (major, minor) = (b >> 5, b & 0x1f);
        let arg = match minor {
            0..=23 => Some(u64::from(minor)),
            24 => Some(u64::from(self.byte()?)),
            25 => Some(u64::from(u16::from_be_bytes(self.take(2)?.try_into().map_err(|_| Malformed::Syntax)?))),
            26 => Some(u64::from(u32::from_be_bytes(self.take(4)?.try_into().map_err(|_| Malformed::Syntax)?))),
            27 => Some(u64::from_be_bytes(self.take(8)?.try_into().map_err(|_| Malformed::Syntax)?)),
            // Indefinite length: strings, arrays, maps; for major 7 it is "break".
            31 if matches!(major, 2..=5) => None,
            _ => return Err(Malformed::Syntax),
        };
        Ok(Head { major, minor, arg })
    }

    /// A declared element count, refused if the remaining bytes cannot hold that many items
    /// (each takes at least one byte).
    fn count(&self, n: u64, bytes_per_item: usize) -> Result<usize, Malformed> {
        let n = usize::try_from(n).map_err(|_| Malformed::Syntax)?;
        if n.checked_mul(bytes_per_item).ok_or(Malformed::Syntax)? > self.remaining() {
            Err(Malformed::Syntax)
        } else {
            Ok(n)
        }
    }

    /// The bytes of a byte or text string (indefinite strings concatenated).
    fn string(&mut self, head: Head) -> Result<Vec<u8>, Malformed> {
        match head.arg {
            Some(n) => Ok(self.take(self.count(n, 1)?)?.to_vec()),
            None => {
                let mut out = Vec::new();
                while !self.peek_break() {
                    let chunk = self.head()?;
                    if chunk.major != head.major || chunk.arg.is_none() {
                        return Err(Malformed::Syntax);
                    }
                    out.extend_from_slice(&self.string(chunk)?);
                }
                Ok(out)
            }
        }
    }

    /// Reads a text string item.
    pub(crate) fn text(&mut self, head: Head) -> Result<String, Malformed> {
        if head.major != 3 {
            return Err(Malformed::Syntax);
        }
        String::from_utf8(self.string(head)?).map_err(|_| Malformed::Syntax)
    }

    /// An integer item (major 0 or 1) as i128.
    pub(crate) fn integer(head: Head) -> Option<i128> {
        match (head.major, head.arg) {
            (0, Some(n)) => Some(i128::from(n)),
            (1, Some(n)) => Some(-1 - i128::from(n)),
            _ => None,
        }
    }

    /// A number (integer or float), after an optional tag 1 (epoch time).
    pub(crate) fn number(&mut self, depth: usize) -> Result<Option<f64>, Malformed> {
        let head = self.head()?;
        if let Some(i) = Self::integer(head) {
            return Ok(Some(i as f64));
        }
        match (head.major, head.minor) {
            (7, 25..=27) => Ok(float(head).filter(|f| f.is_finite())),
            (6, _) if head.arg == Some(1) && depth < MAX_CBOR_DEPTH => self.number(depth + 1),
            _ => {
                self.skip_after_head(head, depth)?;
                Ok(None)
            }
        }
    }

    /// Skips the next item.
    pub(crate) fn skip(&mut self, depth: usize) -> Result<(), Malformed> {
        let head = self.head()?;
        self.skip_after_head(head, depth)
    }

    fn skip_after_head(&mut self, head: Head, depth: usize) -> Result<(), Malformed> {
        let _ = self.json_after_head(head, depth)?;
        Ok(())
    }

    /// Reads the next item as JSON.
    pub(crate) fn json(&mut self, depth: usize) -> Result<Json, Malformed> {
        let head = self.head()?;
        self.json_after_head(head, depth)
    }

    /// Reads the item whose head was just read as JSON: tags are dropped, byte strings
    /// become base64, map keys text (integers in decimal).
    pub(crate) fn json_after_head(&mut self, head: Head, depth: usize) -> Result<Json, Malformed> {
        if depth >= MAX_CBOR_DEPTH {
            return Err(Malformed::Syntax);
        }
        Ok(match head.major {
            0 | 1 => {
                let i = Self::integer(head).ok_or(Malformed::Syntax)?;
                if let Ok(n) = i64::try_from(i) {
                    Json::from(n)
                } else if let Ok(n) = u64::try_from(i) {
                    Json::from(n)
                } else {
                    Json::from(i as f64)
                }
            }
            2 => {
                use base64::Engine as _;
                Json::String(base64::engine::general_purpose::STANDARD.encode(self.string(head)?))
            }
            3 => Json::String(self.text(head)?),
            4 => {
                let mut items = Vec::new();
                match head.arg {
                    Some(n) => {
                        for _ in 0..self.count(n, 1)? {
                            items.push(self.json(depth + 1)?);
                        }
                    }
                    None => {
                        while !self.peek_break() {
                            items.push(self.json(depth + 1)?);
                        }
                    }
                }
                Json::Array(items)
            }
            5 => {
                let mut map = serde_json::Map::new();
                let mut entry = |r: &mut Reader<'a>| -> Result<(), Malformed> {
                    let key = r.key(depth + 1)?;
                    let value = r.json(depth + 1)?;
                    // Keys are compared as the JSON text they become, so the integer 1 and
                    // the text "1" count as one key too: the JSON could not show both.
                    match map.insert(key, value) {
                        None => Ok(()),
                        Some(_) => Err(Malformed::DuplicateKey),
                    }
                };
                match head.arg {
                    Some(n) => {
                        for _ in 0..self.count(n, 2)? {
                            entry(self)?;
                        }
                    }
                    None => {
                        while !self.peek_break() {
                            entry(self)?;
                        }
                    }
                }
                Json::Object(map)
            }
            6 => self.json(depth + 1)?,
            _ => match head.minor {
                20 => Json::Bool(false),
                21 => Json::Bool(true),
                25..=27 => float(head).and_then(serde_json::Number::from_f64).map_or(Json::Null, Json::Number),
                // null, undefined and unassigned simple values
                _ => Json::Null,
            },
        })
    }

    /// A map key as JSON object key text. An array or a map as a key is refused: its JSON
    /// text would be escaped into the text of the enclosing key, and a key nested in a key
    /// is escaped again at every level, doubling its length each time (fuzzing found a
    /// 238-byte payload that grew past gigabytes). CWT and DCC keys are integers and text.
    pub(crate) fn key(&mut self, depth: usize) -> Result<String, Malformed> {
        let head = self.head()?;
        if head.major == 3 {
            return self.text(head);
        }
        if let Some(i) = Self::integer(head) {
            return Ok(i.to_string());
        }
        match self.json_after_head(head, depth)? {
            Json::Array(_) | Json::Object(_) => Err(Malformed::Syntax),
            scalar => Ok(scalar.to_string()),
        }
    }
}

/// The value of a half, single or double precision float head.
fn float(head: Head) -> Option<f64> {
    let bits = head.arg?;
    match head.minor {
        25 => Some(half_to_f64(u16::try_from(bits).ok()?)),
        26 => Some(f64::from(f32::from_bits(u32::try_from(bits).ok()?))),
        27 => Some(f64::from_bits(bits)),
        _ => None,
    }
}

/// IEEE 754 half precision (RFC 8949 Appendix D).
fn half_to_f64(h: u16) -> f64 {
    let exp = (h >> 10) & 0x1f;
    let mant = f64::from(h & 0x3ff);
    let v = match exp {
        0 => mant * 2f64.powi(-24),
        31 => {
            if mant == 0.0 {
                f64::INFINITY
            } else {
                f64::NAN
            }
        }
        _ => (mant + 1024.0) * 2f64.powi(i32::from(exp) - 25),
    };
    if h & 0x8000 != 0 { -v } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn to_json(bytes: &[u8]) -> Result<Json, Malformed> {
        let mut r = Reader::new(bytes);
        let v = r.json(0)?;
        if r.at_end() { Ok(v) } else { Err(Malformed::Syntax) }
    }

    #[test]
    fn reads_rfc_8949_appendix_a_examples() {
        assert_eq!(to_json(&[0x18, 0x64]), Ok(Json::from(100)));
        assert_eq!(to_json(&[0x39, 0x03, 0xe7]), Ok(Json::from(-1000)));
        assert_eq!(to_json(&[0xf9, 0x3c, 0x00]), Ok(Json::from(1.0)));
        assert_eq!(to_json(&[0xf9, 0x7b, 0xff]), Ok(Json::from(65504.0)));
        assert_eq!(to_json(&[0xfb, 0x3f, 0xf1, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a]), Ok(Json::from(1.1)));
        assert_eq!(to_json(&[0xc1, 0x1a, 0x51, 0x4b, 0x67, 0xb0]), Ok(Json::from(1_363_896_240)));
        assert_eq!(to_json(b"\x7f\x65strea\x64ming\xff"), Ok(Json::from("streaming")));
        assert_eq!(to_json(b"\xbf\x63Fun\xf5\x63Amt\x21\xff"), Ok(serde_json::json!({"Fun": true, "Amt": -2})));
        assert_eq!(to_json(&[0xa1, 0x01, 0x02]), Ok(serde_json::json!({"1": 2})));
    }

    #[test]
    fn hostile_lengths_and_depth_are_refused() {
        // An array claiming 2^32 elements in a 6-byte input.
        assert_eq!(to_json(&[0x9a, 0xff, 0xff, 0xff, 0xff, 0x00]), Err(Malformed::Syntax));
        assert_eq!(to_json(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Err(Malformed::Syntax));
        let mut deep = vec![0x81u8; 1000];
        deep.push(0);
        assert_eq!(to_json(&deep), Err(Malformed::Syntax));
        assert_eq!(to_json(&[0x01, 0x02]), Err(Malformed::Syntax), "trailing bytes");
        assert_eq!(to_json(&[0x62, 0xff, 0xfe]), Err(Malformed::Syntax), "text that is not UTF-8");
    }

    #[test]
    fn repeated_map_keys_are_refused_at_any_depth() {
        // {1: 2, 1: 3}, {"a": 1, "a": 2}, {1: 1, "1": 2} and [{1: {2: 0, 2: 1}}]
        assert_eq!(to_json(&[0xa2, 0x01, 0x02, 0x01, 0x03]), Err(Malformed::DuplicateKey));
        assert_eq!(to_json(b"\xa2\x61a\x01\x61a\x02"), Err(Malformed::DuplicateKey));
        assert_eq!(to_json(b"\xa2\x01\x01\x611\x02"), Err(Malformed::DuplicateKey));
        assert_eq!(to_json(&[0x81, 0xa1, 0x01, 0xa2, 0x02, 0x00, 0x02, 0x01]), Err(Malformed::DuplicateKey));
        // The same key written in a longer form (0x18 0x01) is the same key.
        assert_eq!(to_json(&[0xa2, 0x01, 0x02, 0x18, 0x01, 0x03]), Err(Malformed::DuplicateKey));
        // Indefinite-length maps too.
        assert_eq!(to_json(&[0xbf, 0x01, 0x02, 0x01, 0x03, 0xff]), Err(Malformed::DuplicateKey));
        assert_eq!(to_json(&[0xa2, 0x01, 0x02, 0x02, 0x03]), Ok(serde_json::json!({"1": 2, "2": 3})));
    }

    #[test]
    fn a_key_nested_in_keys_is_refused_in_linear_time() {
        // {{{…{"": 0}: 0}…: 0}: 0}, 31 levels: each level's key would be the escaped JSON
        // text of the level inside it, doubling at every level (the fuzzer's 238-byte input).
        let mut bytes = vec![0xa1; 31];
        bytes.extend_from_slice(&[0x60, 0x00]);
        bytes.extend(std::iter::repeat_n(0x00, 30));
        let start = std::time::Instant::now();
        assert_eq!(to_json(&bytes), Err(Malformed::Syntax));
        assert!(start.elapsed() < std::time::Duration::from_millis(100), "{:?}", start.elapsed());
        // An array key too, and a tagged one; scalar keys other than text and integers stay.
        assert_eq!(to_json(&[0xa1, 0x80, 0x00]), Err(Malformed::Syntax));
        assert_eq!(to_json(&[0xa1, 0xc1, 0xa0, 0x00]), Err(Malformed::Syntax));
        assert_eq!(to_json(&[0xa1, 0xf5, 0x00]), Ok(serde_json::json!({"true": 0})));
        assert_eq!(to_json(&[0xa1, 0x41, 0x00, 0x00]), Ok(serde_json::json!({"\"AA==\"": 0})));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, .. ProptestConfig::default() })]

        /// On whatever ciborium accepts, this reader gives the same JSON as the
        /// ciborium-based conversion it replaced; on anything else it just errs.
        #[test]
        fn agrees_with_ciborium_and_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let ours = to_json(&bytes);
            if let Ok(v) = crate::passport::cose::parse_cbor(&bytes) && let Ok(j) = &ours {
                prop_assert_eq!(j, &super::super::cwt::to_json(&v));
            }
        }
    }
}
