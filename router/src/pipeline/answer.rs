//! A subgraph's answer read for projection alone: for a plan that is a single
//! fetch there is nothing to merge, so its `data` is read as a light tree
//! rather than as a `serde_json::Value` (a hashed map and an owned key per
//! object field), which cost the router more than anything else it does for
//! such a query. It is read once, within the exchange, so that an answer
//! that is not GraphQL counts against the subgraph's circuit breaker.

use std::fmt;

use axum::body::Bytes;
use axum::http::StatusCode;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::subgraphs::{SubgraphError, not_graphql};

/// A GraphQL response as a subgraph sends it (`extensions` ignored). A key
/// that is there is `Some`, even when its value is `null`.
#[derive(Deserialize)]
pub struct Answer {
    #[serde(default, deserialize_with = "present")]
    pub data: Option<Node>,
    /// Read as the general path reads it: anything but a list is ignored.
    #[serde(default, deserialize_with = "present")]
    pub errors: Option<Value>,
    /// The answer's length in bytes: what the response built from it may take.
    #[serde(skip)]
    pub size: usize,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Reads a subgraph's answer (see [`crate::subgraphs::Decode`]).
pub fn read_answer(status: StatusCode, bytes: Bytes) -> Result<Answer, SubgraphError> {
    // A struct also reads from a JSON array; a GraphQL response is an object.
    let is_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    // Checked as UTF-8 once, whole: a `&[u8]` reader checks each string on its own.
    let Ok(text) = std::str::from_utf8(&bytes) else { return Err(not_graphql(status)) };
    match serde_json::from_str::<Answer>(text) {
        Ok(answer) if is_object && (answer.data.is_some() || answer.errors.is_some()) => {
            Ok(Answer { size: bytes.len(), ..answer })
        }
        _ => Err(not_graphql(status)),
    }
}

/// A JSON value. An object keeps its fields in order, in a `Vec`: the objects
/// of a response are small, and a scan of a few keys beats hashing them. Plans
/// of several fetches merge their answers into one such tree too.
#[derive(Debug, PartialEq, Clone, Default)]
pub enum Node {
    #[default]
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Text),
    List(Vec<Node>),
    Object(Vec<(Key, Node)>),
}

/// A string, and whether JSON needs it escaped. One an answer held without
/// escapes needs none, and is written back as it came, without a second look.
#[derive(Debug, Clone)]
pub struct Text {
    text: Box<str>,
    plain: bool,
}

impl Text {
    /// A string that was read without escapes from JSON, which holds no
    /// control characters, quotes or backslashes unescaped.
    fn unescaped(text: &str) -> Self {
        Self { text: text.into(), plain: true }
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Self { text: text.into(), plain: !needs_escaping(text.as_bytes()) }
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// An object's fields, in the order they came.
pub type Fields = [(Key, Node)];

/// An object's key.
pub type Key = Box<str>;

/// A value as a scalar or enum type sees it.
pub enum Leaf<'s> {
    Bool(bool),
    Number(&'s serde_json::Number),
    String(&'s str),
    /// A list or an object: no built-in scalar or enum is one.
    Composite,
    Null,
}

impl Node {
    pub fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }

    pub fn items(&self) -> Option<&[Node]> {
        match self {
            Node::List(items) => Some(items),
            _ => None,
        }
    }

    pub fn fields(&self) -> Option<&Fields> {
        match self {
            Node::Object(fields) => Some(fields),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::String(s) => Some(s),
            _ => None,
        }
    }

    /// What a leaf value is, to check it against its scalar or enum type.
    pub fn leaf(&self) -> Leaf<'_> {
        match self {
            Node::Null => Leaf::Null,
            Node::Bool(b) => Leaf::Bool(*b),
            Node::Number(n) => Leaf::Number(n),
            Node::String(s) => Leaf::String(s),
            Node::List(_) | Node::Object(_) => Leaf::Composite,
        }
    }

    pub fn field<'s>(fields: &'s Fields, key: &str) -> Option<&'s Node> {
        fields.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Node::Object(_))
    }

    /// The object's field `key`, taken out (left `null`); `None` when there is none.
    pub fn take_field(&mut self, key: &str) -> Option<Node> {
        match self {
            Node::Object(fields) => fields.iter_mut().find(|(k, _)| &**k == key).map(|(_, v)| std::mem::take(v)),
            _ => None,
        }
    }

    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Writing into memory cannot fail.
        match self {
            Node::Null => out.extend_from_slice(b"null"),
            Node::Bool(true) => out.extend_from_slice(b"true"),
            Node::Bool(false) => out.extend_from_slice(b"false"),
            Node::Number(n) => {
                let _ = serde_json::to_writer(&mut *out, n);
            }
            Node::String(s) if s.plain => write_unescaped(out, s),
            Node::String(s) => write_str(out, s),
            Node::List(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out);
                }
                out.push(b']');
            }
            Node::Object(fields) => {
                out.push(b'{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_str(out, key);
                    out.push(b':');
                    value.write_json(out);
                }
                out.push(b'}');
            }
        }
    }
}

/// Writes `text` as a JSON string. Most strings need no escaping: those are
/// recognised eight bytes at a time and copied whole, which is several times
/// faster than escaping them byte by byte.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    if needs_escaping(text.as_bytes()) {
        // Writing into memory cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    } else {
        write_unescaped(out, text);
    }
}

/// Writes a string known to need no escaping (a GraphQL name, or one read
/// without escapes) as a JSON string.
pub fn write_unescaped(out: &mut Vec<u8>, text: &str) {
    out.reserve(text.len() + 2);
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

/// Whether `bytes` hold what a JSON string escapes: a control character, `"` or `\`.
fn needs_escaping(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    // Whether any byte of `word` is below `n` (n ≤ 128): exact for "any".
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH != 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        if below(word, 0x20) || below(word ^ (ONES * u64::from(b'"')), 1) || below(word ^ (ONES * u64::from(b'\\')), 1)
        {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

impl From<Value> for Node {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(b),
            Value::Number(n) => Node::Number(n),
            Value::String(s) => Node::String(s.as_str().into()),
            Value::Array(items) => Node::List(items.into_iter().map(Node::from).collect()),
            Value::Object(fields) => Node::Object(fields.into_iter().map(|(k, v)| (k.into(), Node::from(v))).collect()),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
        Ok(Node::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Node, E> {
        Ok(Node::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Node, E> {
        Ok(Node::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Node, E> {
        // JSON has no NaN or infinity, so the parser never hands one over.
        serde_json::Number::from_f64(n).map(Node::Number).ok_or_else(|| E::custom("not a JSON number"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Node, E> {
        Ok(Node::String(s.into()))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Node, E> {
        Ok(Node::String(Text::unescaped(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(4));
        while let Some(key) = map.next_key::<Key>()? {
            fields.push((key, map.next_value()?));
        }
        Ok(Node::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reads_in_place_and_writes_back_the_same_json() {
        let text = r#"{"data":{"a":[1,-2,3.5,true,false,null],"b\"q":"x\u00e9\n","c":{"d":"plain"}},"errors":[{"message":"m"}],"extensions":{}}"#;
        let answer = read_answer(StatusCode::OK, Bytes::from(text)).expect("a GraphQL answer");
        let data = answer.data.expect("data");
        let Node::Object(fields) = &data else { panic!("an object") };
        let Some(Node::Object(inner)) = Node::field(fields, "c") else { panic!("c") };
        assert_eq!(Node::field(inner, "d"), Some(&Node::String("plain".into())));
        let mut out = Vec::new();
        data.write_json(&mut out);
        let written: Value = serde_json::from_slice(&out).expect("valid JSON");
        let expected: Value = serde_json::from_str(text).expect("parses");
        assert_eq!(written, expected["data"]);
        assert_eq!(answer.errors.as_ref().and_then(Value::as_array).map(Vec::len), Some(1));
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let mut cases: Vec<String> = ["", "plain", "exactly8", "sixteen chars ok", "naïve café ✓ 😀", "tab\there"]
            .into_iter()
            .map(String::from)
            .collect();
        // Every escaped byte, at every offset of a word and in the tail.
        for special in ['"', '\\', '\n', '\u{0}', '\u{1f}'] {
            for at in 0..17 {
                let mut text: String = "abcdefghijklmnopq".into();
                text.insert(at, special);
                cases.push(text);
            }
        }
        // The bytes just outside the escaped ranges need no escaping.
        cases.push(" !#[]^\u{7f}\u{80}0123456789".into());
        for case in cases {
            let mut ours = Vec::new();
            write_str(&mut ours, &case);
            assert_eq!(
                String::from_utf8(ours).expect("UTF-8"),
                serde_json::to_string(&case).expect("JSON"),
                "{case:?}"
            );
        }
    }

    #[test]
    fn data_null_is_there_and_absent_is_not() {
        let answer = read_answer(StatusCode::OK, Bytes::from(r#"{"data":null}"#)).expect("a GraphQL answer");
        assert_eq!(answer.data, Some(Node::Null));
        let answer = read_answer(StatusCode::OK, Bytes::from(r#"{"errors":[{"message":"m"}]}"#)).expect("answer");
        assert!(answer.data.is_none());
    }

    #[test]
    fn what_is_not_a_graphql_response_is_refused_by_status() {
        let refused = |status: u16, body: &'static str| {
            read_answer(StatusCode::from_u16(status).expect("status"), Bytes::from(body)).err().map(|e| e.to_string())
        };
        assert_eq!(
            refused(200, r#"{"extensions":{}}"#).as_deref(),
            Some("answered something that is not a GraphQL response")
        );
        assert_eq!(
            refused(200, r#"[{"data":{}}]"#).as_deref(),
            Some("answered something that is not a GraphQL response")
        );
        assert_eq!(refused(200, r#"{"data":{}"#).as_deref(), Some("answered something that is not a GraphQL response"));
        assert_eq!(
            refused(200, r#"{"data":{},"data":null}"#).as_deref(),
            Some("answered something that is not a GraphQL response")
        );
        assert_eq!(
            refused(200, r#"{"data":{}} {}"#).as_deref(),
            Some("answered something that is not a GraphQL response")
        );
        assert_eq!(refused(502, "Bad Gateway").as_deref(), Some("answered HTTP 502 without a GraphQL response"));
        assert_eq!(refused(500, r#"{"errors":[]}"#), None);
    }
}
