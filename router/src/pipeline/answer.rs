//! A subgraph's answer read in place: for a plan that is a single fetch there
//! is nothing to merge, so its `data` is read as a light tree whose strings
//! borrow the answer's bytes, rather than as a `serde_json::Value` (a hashed
//! map and an owned key per object field), which cost the router more than
//! anything else it does for such a query.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A GraphQL response as a subgraph sends it (`extensions` ignored).
#[derive(Deserialize)]
pub struct Answer<'a> {
    #[serde(borrow, default)]
    pub data: Option<Node<'a>>,
    /// Read as the general path reads it: anything but a list is ignored.
    #[serde(default)]
    pub errors: Option<Value>,
}

/// A JSON value whose strings borrow from the text they were read from,
/// unless they held escapes. An object keeps its fields in order, in a `Vec`:
/// the objects of a response are small, and a scan of a few keys beats hashing.
#[derive(Debug, PartialEq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'a, str>),
    List(Vec<Node<'a>>),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    pub fn field<'s>(fields: &'s [(Cow<'a, str>, Self)], key: &str) -> Option<&'s Self> {
        fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
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
                let _ = serde_json::to_writer(&mut *out, s.as_ref());
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
                    let _ = serde_json::to_writer(&mut *out, key.as_ref());
                    out.push(b':');
                    value.write_json(out);
                }
                out.push(b'}');
            }
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Node<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Node::deserialize(d)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Node::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Node::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Node::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        // JSON has no NaN or infinity, so the parser never hands one over.
        serde_json::Number::from_f64(n).map(Node::Number).ok_or_else(|| E::custom("not a JSON number"))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Node::String(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Node::String(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Node::String(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(4));
        while let Some(Key(key)) = map.next_key()? {
            fields.push((key, map.next_value()?));
        }
        Ok(Node::Object(fields))
    }
}

/// An object key, borrowed when it can be (serde's own `Cow<str>` always copies).
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(s)))
            }

            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }

            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reads_in_place_and_writes_back_the_same_json() {
        let text = r#"{"data":{"a":[1,-2,3.5,true,false,null],"b\"q":"x\u00e9\n","c":{"d":"plain"}},"errors":[{"message":"m"}],"extensions":{}}"#;
        let answer: Answer = serde_json::from_str(text).expect("parses");
        let data = answer.data.expect("data");
        let Node::Object(fields) = &data else { panic!("an object") };
        let Some(Node::Object(inner)) = Node::field(fields, "c") else { panic!("c") };
        assert!(matches!(Node::field(inner, "d"), Some(Node::String(Cow::Borrowed("plain")))));
        let mut out = Vec::new();
        data.write_json(&mut out);
        let written: Value = serde_json::from_slice(&out).expect("valid JSON");
        let expected: Value = serde_json::from_str(text).expect("parses");
        assert_eq!(written, expected["data"]);
        assert_eq!(answer.errors.as_ref().and_then(Value::as_array).map(Vec::len), Some(1));
    }

    #[test]
    fn data_null_or_absent_reads_as_none() {
        let answer: Answer = serde_json::from_str(r#"{"data":null,"errors":[]}"#).expect("parses");
        assert!(answer.data.is_none());
        let answer: Answer = serde_json::from_str(r#"{"errors":[{"message":"m"}]}"#).expect("parses");
        assert!(answer.data.is_none());
    }
}
