//! Counting a GraphQL document's lexical tokens without parsing it: one linear
//! pass, so a flood of tokens is refused before the parser (and its
//! allocations) ever sees it. The same pass finds how deeply brackets nest:
//! parsers recurse once per bracket, and a few thousand nested list brackets in
//! an argument overflow a thread's stack (aborting the process) well within the
//! token limit. Shared by the router and the subgraphs, which must refuse the
//! same texts.

use std::fmt;

use crate::config::QueryLimits;

/// Brackets (`{`, `[`, `(`) nested deeper than this are refused before
/// parsing: parsers recurse on each, and a few thousand nested list brackets
/// overflow a 2 MiB stack. Selection sets nest at most 64 deep anyway (the
/// subgraphs' parser limit), values far less in any real document.
pub const MAX_BRACKET_NESTING: usize = 128;

/// A limit a document is over, worded the same by the router and every
/// subgraph: "The operation's query depth is 17, over the limit of 16 (MAX_QUERY_DEPTH)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    pub what: &'static str,
    pub value: u64,
    pub limit: u64,
    /// The variable that sets the limit, or `fixed`.
    pub setting: &'static str,
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { what, value, limit, setting } = self;
        write!(f, "The operation's {what} is {value}, over the limit of {limit} ({setting})")
    }
}

/// Refuses a text over `MAX_QUERY_LENGTH` bytes, `MAX_QUERY_TOKENS` tokens or
/// [`MAX_BRACKET_NESTING`] nested brackets, before anything parses it.
pub fn check(limits: &QueryLimits, query: &str) -> Result<(), Exceeded> {
    let over = |what, value: usize, limit: usize, setting| Exceeded {
        what,
        value: value as u64,
        limit: limit as u64,
        setting,
    };
    if query.len() > limits.max_length {
        return Err(over("query length", query.len(), limits.max_length, "MAX_QUERY_LENGTH"));
    }
    let scan = scan(query, limits.max_tokens, MAX_BRACKET_NESTING);
    if scan.tokens > limits.max_tokens {
        return Err(over("token count", scan.tokens, limits.max_tokens, "MAX_QUERY_TOKENS"));
    }
    if scan.nesting > MAX_BRACKET_NESTING {
        return Err(over("bracket nesting", scan.nesting, MAX_BRACKET_NESTING, "fixed"));
    }
    Ok(())
}

/// What a scan of a document's text found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Lexical tokens as the GraphQL spec defines them (punctuators, names,
    /// numbers, strings and block strings; whitespace, commas and comments are
    /// ignored). Anything the lexer would reject counts one token per character:
    /// the parser refuses it later.
    pub tokens: usize,
    /// The deepest nesting of `{`, `[` and `(`.
    pub nesting: usize,
}

/// Scans `text`, stopping once past `max_tokens` tokens or `max_nesting` nested brackets.
pub fn scan(text: &str, max_tokens: usize, max_nesting: usize) -> Scan {
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut found = Scan { tokens: 0, nesting: 0 };
    let mut open: usize = 0;
    while at < bytes.len() && found.tokens <= max_tokens && found.nesting <= max_nesting {
        let (next, is_token) = step(bytes, at);
        match bytes[at] {
            b'{' | b'[' | b'(' => open += 1,
            b'}' | b']' | b')' => open = open.saturating_sub(1),
            _ => {}
        }
        found.nesting = found.nesting.max(open);
        found.tokens += usize::from(is_token);
        at = next;
    }
    found
}

/// The lexeme starting at `at`: where the next one starts, and whether this one is a token.
fn step(bytes: &[u8], at: usize) -> (usize, bool) {
    match bytes[at] {
        b' ' | b'\t' | b'\n' | b'\r' | b',' => (at + 1, false),
        b'#' => (skip_while(bytes, at + 1, |b| b != b'\n' && b != b'\r'), false),
        // The byte-order mark, U+FEFF.
        0xEF if bytes[at..].starts_with(&[0xEF, 0xBB, 0xBF]) => (at + 3, false),
        b'.' if bytes[at..].starts_with(b"...") => (at + 3, true),
        b'"' if bytes[at..].starts_with(b"\"\"\"") => (block_string_end(bytes, at + 3), true),
        b'"' => (string_end(bytes, at + 1), true),
        b'_' | b'a'..=b'z' | b'A'..=b'Z' => (skip_while(bytes, at + 1, is_name_byte), true),
        b'-' | b'0'..=b'9' => (number_end(bytes, at + 1), true),
        // A multi-byte character outside a string: one token, the parser refuses it.
        byte if byte >= 0x80 => (skip_while(bytes, at + 1, |b| (0x80..0xC0).contains(&b)), true),
        // Punctuators, and any other single character.
        _ => (at + 1, true),
    }
}

fn skip_while(bytes: &[u8], mut at: usize, keep: impl Fn(u8) -> bool) -> usize {
    while at < bytes.len() && keep(bytes[at]) {
        at += 1;
    }
    at
}

fn is_name_byte(byte: u8) -> bool {
    byte == b'_' || byte.is_ascii_alphanumeric()
}

/// After the digits, fraction and exponent of a number (and any letters run
/// into it, which the parser refuses).
fn number_end(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() {
        let byte = bytes[at];
        let exponent_sign = (byte == b'+' || byte == b'-') && matches!(bytes[at - 1], b'e' | b'E');
        if !(is_name_byte(byte) || byte == b'.' || exponent_sign) {
            break;
        }
        at += 1;
    }
    at
}

/// After the closing quote of a string (or at the line end of an unterminated one).
fn string_end(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() {
        match bytes[at] {
            b'"' => return at + 1,
            b'\\' => at += 2,
            b'\n' | b'\r' => return at,
            _ => at += 1,
        }
    }
    bytes.len()
}

/// After the closing `"""` of a block string (`\"""` does not close it).
fn block_string_end(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() {
        if bytes[at..].starts_with(b"\\\"\"\"") {
            at += 4;
        } else if bytes[at..].starts_with(b"\"\"\"") {
            return at + 3;
        } else {
            at += 1;
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(text: &str) -> usize {
        scan(text, usize::MAX, usize::MAX).tokens
    }

    #[test]
    fn counts_punctuators_names_numbers_and_strings_but_not_ignored_text() {
        assert_eq!(count("{ me { id } }"), 6);
        // query ( $ n : Int = 20 ) { tasks ( first : $ n ) { totalCount } }
        assert_eq!(count("query($n: Int = 20) { tasks(first: $n) { totalCount } }"), 21);
        assert_eq!(count("# a comment { { {\n{ a, b,,, c }"), 5);
        assert_eq!(count(r#"{ a(s: "x \" } { y", t: """ block \""" "" " """, n: -1.5e+10) }"#), 14);
        assert_eq!(count("{ ...F } fragment F on Q { x }"), 11);
        assert_eq!(count("\u{feff}{ a }"), 3);
    }

    #[test]
    fn stops_past_either_limit() {
        let flood = "{ a }".repeat(1_000_000);
        assert_eq!(scan(&flood, 10, usize::MAX).tokens, 11);
        let deep = format!("{{ a(l: {}1{}) }}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(scan(&deep, usize::MAX, 128), Scan { tokens: 132, nesting: 129 });
    }

    #[test]
    fn measures_the_deepest_nesting_of_brackets_outside_strings() {
        assert_eq!(scan("{ a { b(c: [[1]]) } d }", usize::MAX, usize::MAX).nesting, 5);
        assert_eq!(scan(r#"{ a(s: "{{{{[[[[") }"#, usize::MAX, usize::MAX).nesting, 2);
    }

    #[test]
    fn unterminated_strings_and_stray_characters_end_and_count() {
        assert_eq!(count("{ a(s: \"open\n) }"), 8);
        assert_eq!(count("{ é ? }"), 4);
        assert_eq!(count("\"\"\" never closed"), 1);
    }
}
