//! Default values printed as GraphQL literals, as graphql-js' printer prints them.

use graphql_tools::static_graphql::schema;

/// Prints a literal as GraphQL: `"abc"`, `10`, `1.5`, `[1, 2]`, `{a: 1}`, `ENUM_VALUE`, `null`.
pub(super) fn print_literal(value: &schema::Value) -> String {
    match value {
        schema::Value::Variable(name) => format!("${name}"),
        schema::Value::Int(number) => number.as_i64().map(|n| n.to_string()).unwrap_or_default(),
        schema::Value::Float(number) => number.to_string(),
        schema::Value::String(text) => quote(text),
        schema::Value::Boolean(flag) => flag.to_string(),
        schema::Value::Null => "null".to_owned(),
        schema::Value::Enum(name) => name.clone(),
        schema::Value::List(items) => format!("[{}]", items.iter().map(print_literal).collect::<Vec<_>>().join(", ")),
        schema::Value::Object(fields) => {
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {}", print_literal(v))).collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// A GraphQL string literal, escaped as graphql-js' printer does.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c <= '\u{1f}' || ('\u{7f}'..='\u{9f}').contains(&c) => {
                out.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
