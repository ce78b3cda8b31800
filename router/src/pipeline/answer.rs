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
        Ok(answer) if is_object && (answer.data.is_some() || answer.errors.is_some()) => Ok(answer),
        _ => Err(not_graphql(status)),
    }
}

/// A JSON value. An object keeps its fields in order, in a `Vec`: the objects
/// of a response are small, and a scan of a few keys beats hashing them.
#[derive(Debug, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Box<str>),
    List(Vec<Node>),
    Object(Vec<(Box<str>, Node)>),
}

impl Node {
    pub fn field<'s>(fields: &'s [(Box<str>, Node)], key: &str) -> Option<&'s Node> {
        fields.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
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
            Node::String(s) => {
                let _ = serde_json::to_writer(&mut *out, &**s);
            }
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
                    let _ = serde_json::to_writer(&mut *out, &**key);
                    out.push(b':');
                    value.write_json(out);
                }
                out.push(b'}');
            }
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

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(4));
        while let Some(key) = map.next_key::<Box<str>>()? {
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
