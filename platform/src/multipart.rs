//! The GraphQL multipart request rules (the graphql-multipart-request-spec) the
//! router and the files service share: a multipart body is known by its
//! boundary; `operations`, then `map`, come first, each read whole within a
//! byte limit; `map` is a JSON object of arrays of paths, with at most so many
//! files; each path puts a value into `operations`; the file parts follow, each
//! named in `map`, each once. What becomes of the files as they stream (passed
//! on to a subgraph, or into storage) is each side's own.
//!
//! Messages are for the client, in our words: multer's own text never reaches one.

use std::collections::HashMap;

use serde_json::Value;

/// Why a multipart request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    /// Over a limit: a part, or the number of files.
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Invalid(String),
}

/// Is this a multipart request, and with which boundary?
pub fn boundary(content_type: Option<&str>) -> Option<String> {
    let content_type = content_type?;
    if !content_type.trim().to_ascii_lowercase().starts_with("multipart/form-data") {
        return None;
    }
    multer::parse_boundary(content_type).ok()
}

/// Reads the next part, which must be `name` (`operations`, then `map`), whole,
/// within `limit` bytes; `malformed` words what multer could not read.
pub async fn small_part<E: From<MultipartError>>(
    multipart: &mut multer::Multipart<'_>,
    name: &str,
    limit: usize,
    malformed: fn(multer::Error) -> E,
) -> Result<Vec<u8>, E> {
    let Some(mut field) = multipart.next_field().await.map_err(malformed)? else {
        return Err(MultipartError::Invalid(format!("The `{name}` part is missing")).into());
    };
    if field.name() != Some(name) {
        let message = format!("Expected the `{name}` part here (operations, map, then the files)");
        return Err(MultipartError::Invalid(message).into());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(malformed)? {
        if bytes.len() + chunk.len() > limit {
            return Err(MultipartError::TooLarge(format!("The `{name}` part is larger than {limit} bytes")).into());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The `operations` part as JSON.
pub fn operations(bytes: &[u8]) -> Result<Value, MultipartError> {
    serde_json::from_slice(bytes).map_err(|_| MultipartError::Invalid("`operations` is not JSON".into()))
}

/// The `map` part: each file part's name and the paths its file goes to, at most `max_files` of them.
pub fn map(bytes: &[u8], max_files: usize) -> Result<HashMap<String, Vec<String>>, MultipartError> {
    let map: HashMap<String, Vec<String>> = serde_json::from_slice(bytes)
        .map_err(|_| MultipartError::Invalid("`map` must be a JSON object of arrays of paths".into()))?;
    if map.len() > max_files {
        return Err(MultipartError::TooLarge(format!("At most {max_files} files per request")));
    }
    Ok(map)
}

/// Puts `value` at `path` in `operations` (`variables.file`, `variables.files.1`,
/// `0.variables.file` in a batch): object members by name, list items by index.
/// `None` when the path leads nowhere.
pub fn put(operations: &mut Value, path: &str, value: Value) -> Option<()> {
    let mut target = operations;
    for segment in path.split('.') {
        target = match target {
            Value::Object(map) => map.get_mut(segment),
            Value::Array(list) => segment.parse::<usize>().ok().and_then(|i| list.get_mut(i)),
            _ => None,
        }?;
    }
    *target = value;
    Some(())
}

/// The file parts `map` names, as they arrive: each known, each once, none missing.
#[derive(Debug)]
pub struct Parts {
    /// The names, sorted: a file's index is its name's place here.
    names: Vec<String>,
    seen: Vec<bool>,
}

impl Parts {
    pub fn new(map: &HashMap<String, Vec<String>>) -> Self {
        let mut names: Vec<String> = map.keys().cloned().collect();
        names.sort();
        let seen = vec![false; names.len()];
        Self { names, seen }
    }

    /// How many files `map` names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The index of the file part `name`, if `map` names it.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.binary_search_by(|n| n.as_str().cmp(name)).ok()
    }

    /// A file part has arrived: its index, unless `map` does not name it or it came before.
    pub fn arrive(&mut self, name: &str) -> Result<usize, MultipartError> {
        let Some(index) = self.index(name) else {
            return Err(MultipartError::Invalid(format!("The part {name:?} is not in `map`")));
        };
        if std::mem::replace(&mut self.seen[index], true) {
            return Err(MultipartError::Invalid(format!("The part {name:?} was sent twice")));
        }
        Ok(index)
    }

    /// The body has ended: every file `map` names must have come.
    pub fn finish(&self) -> Result<(), MultipartError> {
        match self.seen.iter().position(|seen| !seen) {
            Some(missing) => {
                Err(MultipartError::Invalid(format!("No part was sent for the file {:?}", self.names[missing])))
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_multipart_form_data_has_a_boundary() {
        assert_eq!(boundary(Some("multipart/form-data; boundary=abc")).as_deref(), Some("abc"));
        assert_eq!(boundary(Some("application/json")), None);
        assert_eq!(boundary(None), None);
    }

    #[test]
    fn values_go_where_the_path_says() {
        let mut ops = json!({ "query": "q", "variables": { "file": null, "files": [null, null] } });
        assert_eq!(put(&mut ops, "variables.file", json!(0)), Some(()));
        assert_eq!(put(&mut ops, "variables.files.1", json!(2)), Some(()));
        assert_eq!(ops["variables"], json!({ "file": 0, "files": [null, 2] }));
        for nowhere in ["variables.nope", "variables.files.7", "variables.file.x", "0.variables"] {
            assert_eq!(put(&mut ops, nowhere, json!(1)), None, "{nowhere}");
        }
        let mut batch = json!([{ "query": "q", "variables": { "f": null } }]);
        assert_eq!(put(&mut batch, "0.variables.f", json!("x")), Some(()));
        assert_eq!(batch[0]["variables"]["f"], "x");
    }

    #[test]
    fn the_map_is_an_object_of_path_lists_within_the_file_limit() {
        assert_eq!(map(br#"{"0":["variables.file"]}"#, 1).unwrap().len(), 1);
        assert!(matches!(map(br#"{"0":["a"],"1":["b"]}"#, 1), Err(MultipartError::TooLarge(_))));
        for bad in [&br#"["variables.file"]"#[..], br#"{"0":"variables.file"}"#, b"nope"] {
            assert!(matches!(map(bad, 10), Err(MultipartError::Invalid(_))));
        }
    }

    #[test]
    fn each_file_part_named_in_the_map_comes_once() {
        let named = HashMap::from([("b".to_owned(), vec![]), ("a".to_owned(), vec![])]);
        let mut parts = Parts::new(&named);
        assert_eq!((parts.len(), parts.index("a"), parts.index("b")), (2, Some(0), Some(1)));
        assert_eq!(parts.arrive("b"), Ok(1));
        assert_eq!(parts.finish(), Err(MultipartError::Invalid("No part was sent for the file \"a\"".into())));
        assert!(parts.arrive("b").is_err(), "twice");
        assert!(parts.arrive("c").is_err(), "not in the map");
        assert_eq!(parts.arrive("a"), Ok(0));
        assert_eq!(parts.finish(), Ok(()));
    }
}
