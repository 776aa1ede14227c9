//! A small JSON parser and writer: the host's results are JSON, and this crate
//! has no dependencies (no serde on the compilers it targets).
//!
//! The parser is strict RFC 8259 JSON and is written for hostile input: it
//! never panics, nests at most [`MAX_DEPTH`] levels deep, rejects numbers
//! that do not fit an `f64`, lone surrogates and control characters in
//! strings, and reports the byte offset of the first problem.
//!
//! ```
//! use ruvector_plugin_sdk::json::{self, Value};
//!
//! let doc = json::parse(r#"{"gpus":[{"index":0,"temperature_celsius":null}]}"#).unwrap();
//! let gpu = &doc.get("gpus").and_then(Value::as_array).unwrap()[0];
//! assert_eq!(gpu.get("index").and_then(Value::as_u64), Some(0));
//! assert!(gpu.get("temperature_celsius").unwrap().is_null());
//! assert_eq!(doc.to_json(), r#"{"gpus":[{"index":0,"temperature_celsius":null}]}"#);
//! ```

use std::fmt;

/// How deep arrays and objects may nest before [`parse`] gives up.
pub const MAX_DEPTH: usize = 64;

/// A JSON number, kept exact when it is an integer.
///
/// Integers without a fraction or exponent that fit in 64 bits stay integers
/// (byte counts, REG_QWORD values); everything else is an `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An integer from 0 to `u64::MAX`.
    PosInt(u64),
    /// A negative integer from `i64::MIN` to -1.
    NegInt(i64),
    /// Any other number. Always finite.
    Float(f64),
}

impl Number {
    /// The number as an `f64` (large integers round to the nearest `f64`).
    pub fn as_f64(self) -> f64 {
        match self {
            Number::PosInt(n) => n as f64,
            Number::NegInt(n) => n as f64,
            Number::Float(f) => f,
        }
    }

    /// The number as a `u64`, if it is a whole number from 0 to `u64::MAX`.
    pub fn as_u64(self) -> Option<u64> {
        match self {
            Number::PosInt(n) => Some(n),
            Number::NegInt(_) => None,
            // 2^64 as f64 is exact; anything below it that is whole converts exactly.
            Number::Float(f)
                if f >= 0.0 && f < 18_446_744_073_709_551_616.0 && f.fract() == 0.0 =>
            {
                Some(f as u64)
            }
            Number::Float(_) => None,
        }
    }

    /// The number as an `i64`, if it is a whole number in `i64`'s range.
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Number::PosInt(n) => i64::try_from(n).ok(),
            Number::NegInt(n) => Some(n),
            Number::Float(f)
                if f >= -9_223_372_036_854_775_808.0
                    && f < 9_223_372_036_854_775_808.0
                    && f.fract() == 0.0 =>
            {
                Some(f as i64)
            }
            Number::Float(_) => None,
        }
    }
}

/// A parsed JSON document.
///
/// Objects keep their keys in document order; [`Value::get`] returns the first
/// value of a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The value of `key`, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<Number> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        self.as_number().map(Number::as_f64)
    }

    pub fn as_u64(&self) -> Option<u64> {
        self.as_number().and_then(Number::as_u64)
    }

    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(members) => Some(members),
            _ => None,
        }
    }

    /// Compact JSON text, as the host writes it. Non-finite floats (which
    /// JSON cannot hold) are written as `null`.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }

    /// Appends the compact JSON text of this value to `out`.
    pub fn write_to(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(true) => out.push_str("true"),
            Value::Bool(false) => out.push_str("false"),
            Value::Number(n) => write_number(out, *n),
            Value::String(s) => write_string(out, s),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_to(out);
                }
                out.push(']');
            }
            Value::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(out, key);
                    out.push(':');
                    value.write_to(out);
                }
                out.push('}');
            }
        }
    }
}

/// An object from `(key, value)` pairs, in order.
pub fn object<'a, I>(members: I) -> Value
where
    I: IntoIterator<Item = (&'a str, Value)>,
{
    Value::Object(
        members
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    /// A non-finite `f64` becomes `null`: JSON has no NaN or infinity.
    fn from(f: f64) -> Value {
        if f.is_finite() {
            Value::Number(Number::Float(f))
        } else {
            Value::Null
        }
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Number(Number::PosInt(n))
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::Number(Number::PosInt(u64::from(n)))
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        if n >= 0 {
            Value::Number(Number::PosInt(n as u64))
        } else {
            Value::Number(Number::NegInt(n))
        }
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Value {
        Value::from(i64::from(n))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` is `null`: a figure that is not known is not made up.
    fn from(v: Option<T>) -> Value {
        match v {
            Some(v) => v.into(),
            None => Value::Null,
        }
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Value {
        Value::Array(items.into_iter().map(Into::into).collect())
    }
}

fn write_number(out: &mut String, n: Number) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = match n {
        Number::PosInt(n) => write!(out, "{}", n),
        Number::NegInt(n) => write!(out, "{}", n),
        Number::Float(f) if f.is_finite() => write!(out, "{}", f),
        Number::Float(_) => write!(out, "null"),
    };
}

/// Appends `s` to `out` as a JSON string, quotes included.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let n = c as usize;
                out.push_str("\\u00");
                out.push(HEX[n >> 4] as char);
                out.push(HEX[n & 0xf] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Why a document is not JSON, and where: [`ParseError::offset`] is a byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub reason: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// Parses one JSON document (surrounding whitespace allowed).
pub fn parse(text: &str) -> Result<Value, ParseError> {
    let mut p = Parser {
        bytes: text.as_bytes(),
        pos: 0,
    };
    p.skip_ws();
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos != p.bytes.len() {
        return Err(p.error("unexpected text after the document"));
    }
    Ok(value)
}

/// Parses JSON from bytes, which must be UTF-8.
pub fn parse_bytes(bytes: &[u8]) -> Result<Value, ParseError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text),
        Err(e) => Err(ParseError {
            offset: e.valid_up_to(),
            reason: "not UTF-8",
        }),
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, reason: &'static str) -> ParseError {
        ParseError {
            offset: self.pos,
            reason,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Number),
            Some(_) => Err(self.error("expected a value")),
        }
    }

    fn literal(&mut self, word: &'static str, value: Value) -> Result<Value, ParseError> {
        let end = self.pos + word.len();
        if self.bytes.get(self.pos..end) == Some(word.as_bytes()) {
            self.pos = end;
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                None => return Err(self.error("unexpected end of input")),
                Some(_) => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.pos += 1; // '{'
        let mut members = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth)?;
            members.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(members));
                }
                None => return Err(self.error("unexpected end of input")),
                Some(_) => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.pos += 1; // opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let start = self.pos;
            // Copy the run of plain bytes up to the next quote, backslash or control byte.
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.extend_from_slice(self.bytes.get(start..self.pos).unwrap_or(&[]));
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    // The runs end only at ASCII bytes and escapes decode to whole
                    // characters, so this holds UTF-8; the check costs little.
                    return String::from_utf8(out).map_err(|_| self.error("not UTF-8"));
                }
                Some(b'\\') => self.escape(&mut out)?,
                Some(_) => return Err(self.error("control character in a string")),
            }
        }
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), ParseError> {
        self.pos += 1; // backslash
        let c = match self.peek() {
            None => return Err(self.error("unterminated string")),
            Some(c) => c,
        };
        self.pos += 1;
        let simple = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => return self.unicode_escape(out),
            _ => {
                self.pos -= 1;
                return Err(self.error("invalid escape"));
            }
        };
        out.push(simple);
        Ok(())
    }

    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let first = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&first) {
            // A high surrogate must be followed by an escaped low one.
            if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                return Err(self.error("lone surrogate in \\u escape"));
            }
            self.pos += 2;
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return Err(self.error("lone surrogate in \\u escape"));
            }
            0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else if (0xDC00..0xE000).contains(&first) {
            return Err(self.error("lone surrogate in \\u escape"));
        } else {
            first
        };
        match char::from_u32(code) {
            Some(c) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                Ok(())
            }
            None => Err(self.error("invalid \\u escape")),
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let mut n = 0u32;
        for _ in 0..4 {
            let digit = match self.peek() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return Err(self.error("invalid \\u escape")),
            };
            n = n * 16 + u32::from(digit);
            self.pos += 1;
        }
        Ok(n)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Number, ParseError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("invalid number")),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            integer = false;
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            integer = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        // The grammar above admits only ASCII, so the slice is valid UTF-8.
        let text = self
            .bytes
            .get(start..self.pos)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("");
        if integer {
            if negative {
                if let Ok(n) = text.parse::<i64>() {
                    return Ok(if n == 0 {
                        Number::PosInt(0)
                    } else {
                        Number::NegInt(n)
                    });
                }
            } else if let Ok(n) = text.parse::<u64>() {
                return Ok(Number::PosInt(n));
            }
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Number::Float(f)),
            _ => Err(ParseError {
                offset: start,
                reason: "number out of range",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> &'static str {
        match parse(text) {
            Ok(v) => panic!("{:?} parsed as {:?}", text, v),
            Err(e) => e.reason,
        }
    }

    #[test]
    fn round_trips_compact_json() {
        for text in [
            r#"{"a":[1,-2,0.5,true,false,null,"x"],"b":{}}"#,
            r#"{"total_bytes":25276059648,"percent":1.3}"#,
            "18446744073709551615",
            "-9223372036854775808",
            r#""quote \" backslash \\ newline \n tab \t bell \u0007""#,
            "[]",
        ] {
            assert_eq!(parse(text).unwrap().to_json(), text);
        }
    }

    #[test]
    fn keeps_integers_exact_and_floats_finite() {
        assert_eq!(
            parse("18446744073709551615").unwrap().as_u64(),
            Some(u64::MAX)
        );
        assert_eq!(parse("-1").unwrap().as_i64(), Some(-1));
        assert_eq!(parse("-1").unwrap().as_u64(), None);
        assert_eq!(parse("2.0").unwrap().as_u64(), Some(2));
        assert_eq!(parse("2.5").unwrap().as_u64(), None);
        assert_eq!(parse("3.5e2").unwrap().as_f64(), Some(350.0));
        assert_eq!(parse("-0").unwrap(), Value::Number(Number::PosInt(0)));
        // past u64: a float, rounded
        assert_eq!(
            parse("18446744073709551616").unwrap().as_f64(),
            Some(18446744073709551616.0)
        );
        assert_eq!(err("1e999"), "number out of range");
        assert_eq!(Value::from(f64::NAN).to_json(), "null");
    }

    #[test]
    fn decodes_escapes_and_surrogate_pairs() {
        let v = parse(r#""\u00e9\ud83d\ude00\/""#).unwrap();
        assert_eq!(v.as_str(), Some("é😀/"));
        assert_eq!(err(r#""\ud800""#), "lone surrogate in \\u escape");
        assert_eq!(err(r#""\udc00""#), "lone surrogate in \\u escape");
        assert_eq!(err(r#""\ud800\u0041""#), "lone surrogate in \\u escape");
        assert_eq!(err(r#""\x""#), "invalid escape");
        assert_eq!(err(r#""\u12""#), "invalid \\u escape");
        assert_eq!(err("\"tab\there\""), "control character in a string");
        assert_eq!(Value::from("a\u{1}b").to_json(), r#""a\u0001b""#);
    }

    #[test]
    fn refuses_malformed_documents_with_their_offset() {
        assert_eq!(
            parse(r#"{"a" 1}"#).unwrap_err(),
            ParseError {
                offset: 5,
                reason: "expected ':'"
            }
        );
        assert_eq!(err(""), "unexpected end of input");
        assert_eq!(err("   "), "unexpected end of input");
        assert_eq!(err(r#"{"a":1"#), "unexpected end of input");
        assert_eq!(err("[1,]"), "expected a value");
        assert_eq!(err("[1 2]"), "expected ',' or ']'");
        assert_eq!(err("{1:2}"), "expected a string key");
        assert_eq!(err("nul"), "expected a value");
        assert_eq!(err("01"), "unexpected text after the document");
        assert_eq!(err("1."), "invalid number");
        assert_eq!(err("-"), "invalid number");
        assert_eq!(err("1e+"), "invalid number");
        assert_eq!(err(r#""open"#), "unterminated string");
        assert_eq!(parse_bytes(b"\"\xff\"").unwrap_err().reason, "not UTF-8");
    }

    #[test]
    fn bounds_nesting_without_recursing_deeper() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(err(&deep), "nested too deeply");
        assert_eq!(err(&"[".repeat(1_000_000)), "nested too deeply");
        assert_eq!(err(&r#"{"a":"#.repeat(100_000)), "nested too deeply");
    }

    #[test]
    fn gets_the_first_value_of_a_key() {
        let v = parse(r#"{"k":1,"k":2}"#).unwrap();
        assert_eq!(v.get("k").and_then(Value::as_u64), Some(1));
        assert_eq!(v.get("missing"), None);
        assert_eq!(Value::Null.get("k"), None);
    }
}
