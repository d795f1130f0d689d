//! Strict JSON reading for signed foreign content: a repeated member name is refused (RFC
//! 8259 §4 leaves it undefined, and a reader that kept the last one would show content other
//! verifiers do not see, as with CBOR in issue #8); depth is bounded by serde_json (128).

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value that refused duplicate member names while it was read.
struct Strict(Value);

impl<'de> de::Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if out.insert(key, v).is_some() {
                return Err(de::Error::custom("a member name is repeated"));
            }
        }
        Ok(Value::Object(out))
    }
}

/// Parses `text` as one JSON value, refusing repeated member names and trailing content;
/// `None` when it is not one. The text is checked as UTF-8 once, not string by string as
/// `from_slice` does (7 k of a card's instructions, callgrind): a byte that is not UTF-8 is
/// refused either way, in a string or as a stray byte outside one.
pub(crate) fn parse_strict(text: &[u8]) -> Option<Value> {
    parse_strict_str(std::str::from_utf8(text).ok()?).ok()
}

/// [`parse_strict`] of a text already known to be UTF-8.
pub(crate) fn parse_strict_str(text: &str) -> Result<Value, serde_json::Error> {
    let mut d = serde_json::Deserializer::from_str(text);
    let Strict(v) = de::Deserialize::deserialize(&mut d)?;
    d.end()?;
    Ok(v)
}

/// Appends the RFC 8785 (JCS) canonical form of `v` to `out`: the same bytes as
/// `serde_json_canonicalizer::to_vec`, which builds a buffer, a sort key and a tree node per
/// member (129 k instructions for a 2-dose seal's `data`, 13 % of its verification, callgrind);
/// this writes straight from the parsed value.
pub(crate) fn canonical(v: &Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => canonical_number(n, out)?,
        Value::String(s) => canonical_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            // RFC 8785 §3.2.3 orders members by their names' UTF-16 code units. A map iterates
            // in byte (code point) order, the same order unless a name holds a character from
            // U+E000–U+FFFF or above U+FFFF (UTF-8 lead bytes 0xEE and up); then sort.
            let mut prev: Option<&str> = None;
            let in_order = members.keys().all(|k| {
                let ok = !k.bytes().any(|b| b >= 0xEE) && prev.is_none_or(|p| p < k.as_str());
                prev = Some(k);
                ok
            });
            let write = |i: usize, k: &str, v: &Value, out: &mut Vec<u8>| {
                if i > 0 {
                    out.push(b',');
                }
                canonical_string(k, out);
                out.push(b':');
                canonical(v, out)
            };
            if in_order {
                for (i, (k, v)) in members.iter().enumerate() {
                    write(i, k, v, out)?;
                }
            } else {
                let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
                sorted.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
                for (i, (k, v)) in sorted.into_iter().enumerate() {
                    write(i, k, v, out)?;
                }
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Integers up to 2^53 are written as they are (ECMAScript prints an exactly representable
/// integer below 10^21 in plain digits); any other number goes through the crate's
/// ECMAScript double formatting, as before.
fn canonical_number(n: &serde_json::Number, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    const EXACT: u64 = 1 << 53;
    if let Some(u) = n.as_u64().filter(|u| *u <= EXACT) {
        decimal(u, out);
    } else if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= EXACT) {
        out.push(b'-'); // as_u64 took every non-negative i64
        decimal(i.unsigned_abs(), out);
    } else {
        serde_json_canonicalizer::to_writer(n, out)?;
    }
    Ok(())
}

fn decimal(mut n: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A string as JSON.stringify writes it (RFC 8785 §3.2.2.2): `"` and `\` escaped, the
/// control characters as `\b \t \n \f \r` or `\u00xx` (lower-case hex), all else as is.
fn canonical_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0a => b'n',
            0x0c => b'f',
            0x0d => b'r',
            0x00..=0x1f => 0,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short == 0 {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_and_trailing_text_are_refused() {
        assert!(parse_strict(br#"{"a":1,"b":{"c":[1,2.5,"x",null,true]}}"#).is_some());
        assert!(parse_strict(br#"{"a":1,"a":2}"#).is_none());
        assert!(parse_strict(br#"{"a":{"b":1,"b":1}}"#).is_none());
        assert!(parse_strict(br#"{"a":1} x"#).is_none());
        assert!(parse_strict(&[b'['; 200]).is_none());
        assert!(parse_strict(b"{\"a\":\"\xff\"}").is_none());
        assert!(parse_strict(b"{\"a\":1}\xff").is_none());
        assert!(parse_strict("{\"é\":\"\u{1F600}\"}".as_bytes()).is_some());
    }

    #[test]
    fn canonical_form_is_the_crates() {
        let texts = [
            r#"{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],
                "string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}"#,
            r#"{"\u20ac":1,"\r":2,"1":3,"\ud83d\ude00":4,"\u00f6":5,"a":6,"\ufb01":7,"\ue000x":8,"\ud800\udc00":9}"#,
            r#"[0,-0,-1,9007199254740992,9007199254740993,-9007199254740992,-9007199254740993,
                18446744073709551615,-9223372036854775808,1e21,1e20,123456789012345678901234,0.1,-0.0,5e-324]"#,
            r#"{"ctl":"\u0000\u0001\b\t\n\u000b\f\r\u001f\u007f\u2028 é","":{},"e":[],"n":{"b":[{"z":1,"y":null}],"a":"x"}}"#,
        ];
        for text in texts {
            let v = parse_strict(text.as_bytes()).unwrap();
            let mut mine = Vec::new();
            canonical(&v, &mut mine).unwrap();
            assert_eq!(String::from_utf8(mine).unwrap(), serde_json_canonicalizer::to_string(&v).unwrap(), "{text}");
        }
    }
}
