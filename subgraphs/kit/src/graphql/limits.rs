//! The document limits every subgraph enforces before async-graphql parses or
//! validates a request, with the router's rules (`kit::config::QueryLimits`,
//! the same variables and defaults), so a subgraph called directly on its own
//! port refuses what the router refuses:
//!
//! - length (bytes), then lexical tokens and the nesting of brackets, before parsing;
//! - depth: a root field is depth 1, each nested field one more; fragments and
//!   inline fragments add nothing;
//! - fields and aliases: every (aliased) field counted per occurrence, through
//!   every spread and duplicate, over all the document's operations (validation
//!   visits them all);
//! - root fields: the fields of an operation's root selection, through fragments;
//! - directives: the most on one field, inline fragment or spread;
//! - cost: each field costs the product of the page sizes of the list fields
//!   above it. A page size is the field's `first`/`last` (a literal Int, or a
//!   variable's Int value; anything else counts 100); without one, the
//!   argument's default in the schema; `_entities` pages by the number of
//!   representations, and costs that much itself;
//! - nesting of selection sets through fields, inline fragments and spreads
//!   (as async-graphql counts its recursion depth), at most [`MAX_NESTING`].
//!
//! Each fragment is measured once, at a multiplier of one (its cost scales
//! with the multiplier where it is spread, its depth adds), and the walk stops
//! at the first limit exceeded: a document whose fragments each spread the
//! previous one twice costs time linear in its text, and cycles end the walk.

use std::collections::HashMap;
use std::sync::OnceLock;

use async_graphql::parser::types::{ExecutableDocument, Field, OperationType, Selection, SelectionSet};
use async_graphql::{Name, Variables};
use async_graphql_value::{ConstValue, Value};

use super::shape::Shape;
use crate::config::QueryLimits;

/// A `first`/`last` that is neither a literal Int nor a variable holding one counts this.
const UNKNOWN_PAGE_SIZE: u64 = 100;
/// Selection sets nested deeper than this are refused (async-graphql's own
/// recursion limit is set to the same, counted the same way).
pub const MAX_NESTING: usize = 64;

/// The limits of one schema, kept in the schema's data (see [`super::limited`]).
pub struct DocumentLimits {
    limits: QueryLimits,
    /// Read from the schema's SDL at the first request.
    shape: OnceLock<Shape>,
}

/// Why a document is refused: a message naming the limit and its variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

fn exceeded(what: &'static str, value: u64, limit: u64, setting: &'static str) -> Refused {
    Refused(crate::query_text::Exceeded { what, value, limit, setting }.to_string())
}

impl DocumentLimits {
    pub fn new(limits: QueryLimits) -> Self {
        Self { limits, shape: OnceLock::new() }
    }

    /// Refuses a batch of more than `MAX_BATCH` operations.
    pub fn check_batch(&self, operations: usize) -> Result<(), Refused> {
        let max = self.limits.max_batch;
        if operations > max {
            return Err(Refused(format!(
                "A batch holds 1 to {max} operations (MAX_BATCH); this one holds {operations}"
            )));
        }
        Ok(())
    }

    /// Refuses a text over the length, token or bracket-nesting limits, before it is parsed.
    pub fn check_text(&self, query: &str) -> Result<(), Refused> {
        crate::query_text::check(&self.limits, query).map_err(|e| Refused(e.to_string()))
    }

    /// Measures every operation of `document` and refuses it over any limit.
    /// `sdl` gives the schema's SDL the first time it is needed.
    pub fn check_document(
        &self,
        document: &ExecutableDocument,
        variables: &Variables,
        sdl: impl FnOnce() -> String,
    ) -> Result<(), Refused> {
        let shape = self.shape.get_or_init(|| Shape::from_sdl(&sdl()));
        let mut walk = Walk { limits: &self.limits, shape, document, variables, fragments: HashMap::new(), open: 0 };
        let mut total = Measure::default();
        for (_, operation) in document.operations.iter() {
            let root = match operation.node.ty {
                OperationType::Query => &shape.query,
                OperationType::Mutation => &shape.mutation,
                OperationType::Subscription => &shape.subscription,
            };
            let measure = walk.selection_set(&operation.node.selection_set.node, Some(root))?;
            measure.check_root_fields(&self.limits)?;
            total.fields = total.fields.saturating_add(measure.fields);
            total.aliases = total.aliases.saturating_add(measure.aliases);
            total.check(&self.limits)?;
        }
        Ok(())
    }
}

/// The measure of one selection set, at a multiplier of one, its own fields at depth 1.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Measure {
    depth: u64,
    nesting: u64,
    fields: u64,
    aliases: u64,
    /// Fields at this set's own level (the root fields, for an operation's set).
    level_fields: u64,
    directives: u64,
    cost: u64,
}

impl Measure {
    /// Every limit that a part can already exceed on its own: a part's measure
    /// is never more than the whole's.
    fn check(&self, limits: &QueryLimits) -> Result<(), Refused> {
        let checks = [
            ("query depth", self.depth, limits.max_depth as u64, "MAX_QUERY_DEPTH"),
            ("selection nesting", self.nesting, MAX_NESTING as u64, "fixed"),
            ("field count", self.fields, limits.max_fields, "MAX_QUERY_FIELDS"),
            ("aliases", self.aliases, limits.max_aliases, "MAX_ALIASES"),
            (
                "directives on one field",
                self.directives,
                limits.max_directives_per_field as u64,
                "MAX_DIRECTIVES_PER_FIELD",
            ),
            ("estimated cost", self.cost, limits.max_cost, "MAX_QUERY_COST"),
        ];
        match checks.into_iter().find(|(_, value, limit, _)| value > limit) {
            Some((what, value, limit, setting)) => Err(exceeded(what, value, limit, setting)),
            None => Ok(()),
        }
    }

    fn check_root_fields(&self, limits: &QueryLimits) -> Result<(), Refused> {
        if self.level_fields > limits.max_root_fields {
            return Err(exceeded("root fields", self.level_fields, limits.max_root_fields, "MAX_ROOT_FIELDS"));
        }
        Ok(())
    }

    /// Adds a fragment's selections, spread (or inlined) at this set's level.
    fn add_fragment(&mut self, fragment: &Measure, directives: usize) {
        self.depth = self.depth.max(fragment.depth);
        self.nesting = self.nesting.max(fragment.nesting + 1);
        self.fields = self.fields.saturating_add(fragment.fields);
        self.aliases = self.aliases.saturating_add(fragment.aliases);
        self.level_fields = self.level_fields.saturating_add(fragment.level_fields);
        self.directives = self.directives.max(fragment.directives).max(directives as u64);
        self.cost = self.cost.saturating_add(fragment.cost);
    }
}

struct Walk<'a> {
    limits: &'a QueryLimits,
    shape: &'a Shape,
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    /// Fragments measured so far; `None` while one is being measured (a spread of it then is a cycle).
    fragments: HashMap<&'a str, Option<Measure>>,
    /// Selection sets open on the walk's stack.
    open: usize,
}

impl<'a> Walk<'a> {
    /// Measures `set`, whose fields belong to the type `parent` (`None`: unknown to the schema).
    fn selection_set(&mut self, set: &'a SelectionSet, parent: Option<&'a str>) -> Result<Measure, Refused> {
        self.open += 1;
        if self.open > MAX_NESTING + 1 {
            return Err(exceeded("selection nesting", self.open as u64 - 1, MAX_NESTING as u64, "fixed"));
        }
        let mut measure = Measure::default();
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => self.field(&field.node, parent, &mut measure)?,
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    let on = inline.type_condition.as_ref().map(|c| c.node.on.node.as_str()).or(parent);
                    let inner = self.selection_set(&inline.selection_set.node, on)?;
                    measure.add_fragment(&inner, inline.directives.len());
                }
                Selection::FragmentSpread(spread) => {
                    let fragment = self.fragment(&spread.node.fragment_name.node)?;
                    measure.add_fragment(&fragment, spread.node.directives.len());
                }
            }
            measure.check(self.limits)?;
        }
        self.open -= 1;
        Ok(measure)
    }

    fn field(&mut self, field: &'a Field, parent: Option<&'a str>, measure: &mut Measure) -> Result<(), Refused> {
        let name = field.name.node.as_str();
        let returns = parent.and_then(|parent| self.shape.returns(parent, name));
        let inner = self.selection_set(&field.selection_set.node, returns)?;
        let (own_cost, page) = match self.representations(field) {
            Some(representations) => (representations, representations),
            None => (1, self.page_size(field, parent)),
        };
        let has_selections = !field.selection_set.node.items.is_empty();
        measure.depth = measure.depth.max(inner.depth + 1);
        measure.nesting = measure.nesting.max(if has_selections { inner.nesting + 1 } else { 0 });
        measure.fields = measure.fields.saturating_add(inner.fields).saturating_add(1);
        measure.aliases =
            measure.aliases.saturating_add(inner.aliases).saturating_add(u64::from(field.alias.is_some()));
        measure.level_fields = measure.level_fields.saturating_add(1);
        measure.directives = measure.directives.max(inner.directives).max(field.directives.len() as u64);
        measure.cost = measure.cost.saturating_add(own_cost).saturating_add(page.saturating_mul(inner.cost));
        Ok(())
    }

    /// The measure of the fragment `name`, walked the first time only.
    fn fragment(&mut self, name: &'a Name) -> Result<Measure, Refused> {
        match self.fragments.get(name.as_str()) {
            Some(Some(measure)) => return Ok(*measure),
            Some(None) => {
                return Err(Refused(format!("The fragment {name} spreads itself (directly or through others)")));
            }
            None => {}
        }
        // An unknown fragment is left for validation to report.
        let Some(definition) = self.document.fragments.get(name) else { return Ok(Measure::default()) };
        self.fragments.insert(name.as_str(), None);
        let on = definition.node.type_condition.node.on.node.as_str();
        let measure = self.selection_set(&definition.node.selection_set.node, Some(on))?;
        self.fragments.insert(name.as_str(), Some(measure));
        Ok(measure)
    }

    /// The page size of a list field: its `first`/`last`, else their default in the schema, else 1.
    fn page_size(&self, field: &Field, parent: Option<&str>) -> u64 {
        let given = field
            .arguments
            .iter()
            .filter(|(name, _)| matches!(name.node.as_str(), "first" | "last"))
            .map(|(_, value)| self.page_value(&value.node))
            .max();
        given.or_else(|| self.shape.default_page(parent?, &field.name.node)).unwrap_or(1)
    }

    /// A given `first`/`last`: a literal Int or a variable's Int value (at least 1), else [`UNKNOWN_PAGE_SIZE`].
    fn page_value(&self, value: &Value) -> u64 {
        let number = match value {
            Value::Number(n) => Some(n),
            Value::Variable(name) => match self.variables.get(name) {
                Some(ConstValue::Number(n)) => Some(n),
                _ => None,
            },
            _ => None,
        };
        number.and_then(|n| n.as_i64()).map_or(UNKNOWN_PAGE_SIZE, |n| n.max(1) as u64)
    }

    /// For `_entities`, the number of representations given (at least 1).
    fn representations(&self, field: &Field) -> Option<u64> {
        if field.name.node != "_entities" {
            return None;
        }
        let count = match field.get_argument("representations").map(|v| &v.node) {
            Some(Value::List(items)) => items.len(),
            Some(Value::Variable(name)) => match self.variables.get(name) {
                Some(ConstValue::List(items)) => items.len(),
                _ => 1,
            },
            _ => 1,
        };
        Some((count as u64).max(1))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    const SDL: &str = "
        type Query { me: User tasks(first: Int = 20, after: String): TaskConnection! _entities(representations: [_Any!]!): [_Entity]! }
        type User { id: ID! email: String! tasks(first: Int = 20): TaskConnection! }
        type TaskConnection { totalCount: Int! edges: [TaskEdge!]! }
        type TaskEdge { node: Task! }
        type Task { id: ID! title: String! owner: User! }
        union _Entity = User | Task
        scalar _Any";

    fn check_with(limits: QueryLimits, query: &str, variables: serde_json::Value) -> Result<(), Refused> {
        let limits = DocumentLimits::new(limits);
        limits.check_text(query)?;
        let document = async_graphql::parser::parse_query(query).expect("the test document parses");
        limits.check_document(&document, &Variables::from_json(variables), || SDL.to_owned())
    }

    fn check(query: &str) -> Result<(), Refused> {
        check_with(QueryLimits::default(), query, serde_json::json!({}))
    }

    /// The message `query` is refused with under `limits`.
    fn refused_message(limits: QueryLimits, query: &str) -> String {
        check_with(limits, query, serde_json::json!({})).expect_err("refused").0
    }

    /// F0 is one field; each F(n) spreads F(n-1) twice: 2^levels fields from ~40 bytes a level.
    fn doubling_fragments(levels: usize) -> String {
        let fragments: String =
            (1..=levels).map(|n| format!(" fragment F{n} on User {{ ...F{m} ...F{m} }}", m = n - 1)).collect();
        format!("{{ me {{ ...F{levels} }} }} fragment F0 on User {{ id }}{fragments}")
    }

    #[test]
    fn depth_fields_aliases_and_cost_are_measured_through_fragments_and_defaults() {
        let query = "query($n: Int) {
            me { tasks(first: 10) { edges { node { ...T } } } }
            a: tasks(first: $n) { totalCount }
            tasks { totalCount }
        }
        fragment T on Task { id title owner { email } }";
        let limits = |f: fn(&mut QueryLimits)| {
            let mut limits = QueryLimits::default();
            f(&mut limits);
            limits
        };
        // me > tasks > edges > node > owner > email
        let depth = refused_message(limits(|l| l.max_depth = 5), query);
        assert_eq!(depth, "The operation's query depth is 6, over the limit of 5 (MAX_QUERY_DEPTH)");
        assert!(check_with(limits(|l| l.max_depth = 6), query, serde_json::json!({ "n": 7 })).is_ok());
        // me tasks edges node id title owner email; a totalCount; tasks totalCount
        let fields = refused_message(limits(|l| l.max_fields = 11), query);
        assert_eq!(fields, "The operation's field count is 12, over the limit of 11 (MAX_QUERY_FIELDS)");
        let aliases = refused_message(limits(|l| l.max_aliases = 0), query);
        assert_eq!(aliases, "The operation's aliases is 1, over the limit of 0 (MAX_ALIASES)");
        let roots = refused_message(limits(|l| l.max_root_fields = 2), query);
        assert_eq!(roots, "The operation's root fields is 3, over the limit of 2 (MAX_ROOT_FIELDS)");
        // me 1, tasks 1, edges 10, node 10, id/title/owner 30, email 10 = 62; a 1, totalCount 7;
        // tasks 1, totalCount 20 (the schema's default page).
        let cost = |max_cost: u64, n: serde_json::Value| {
            let limits = QueryLimits { max_cost, ..QueryLimits::default() };
            check_with(limits, query, serde_json::json!({ "n": n }))
        };
        assert!(cost(91, serde_json::json!(7)).is_ok());
        let refused = cost(90, serde_json::json!(7)).expect_err("refused").0;
        assert_eq!(refused, "The operation's estimated cost is 91, over the limit of 90 (MAX_QUERY_COST)");
        // A variable that is not an Int counts 100: 62 + 101 + 21.
        assert!(cost(184, serde_json::json!("seven")).is_ok());
        assert!(cost(183, serde_json::json!("seven")).is_err());
    }

    #[test]
    fn directives_count_on_fields_inline_fragments_and_spreads() {
        let on = |place: &str| {
            let query = format!(
                "{{ me {{ {place} }} }} fragment U on User {{ id }}",
                place = place.replace("@d", "@skip(if: false) @skip(if: false)")
            );
            let limits = QueryLimits { max_directives_per_field: 1, ..QueryLimits::default() };
            check_with(limits, &query, serde_json::json!({}))
        };
        for place in ["id @d", "... on User @d { id }", "...U @d"] {
            let refused = on(place).expect_err(place).0;
            assert!(refused.contains("directives on one field is 2,"), "{place}: {refused}");
        }
    }

    #[test]
    fn entities_cost_what_their_representations_ask_for() {
        let query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id email } } }";
        let representations =
            |n: usize| serde_json::json!({ "r": vec![serde_json::json!({"__typename": "User", "id": "1"}); n] });
        let limits = QueryLimits { max_cost: 300, ..QueryLimits::default() };
        // 100 representations: _entities 100, id 100, email 100.
        assert!(check_with(limits, query, representations(100)).is_ok());
        let refused = check_with(limits, query, representations(101)).expect_err("refused").0;
        assert_eq!(refused, "The operation's estimated cost is 303, over the limit of 300 (MAX_QUERY_COST)");
        // However few fields it selects, every representation costs one.
        let bare = "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }";
        assert!(check_with(QueryLimits::default(), bare, representations(10_001)).is_err());
    }

    #[test]
    fn doubling_fragments_are_refused_in_linear_time() {
        let query = doubling_fragments(30);
        assert!(query.len() < 2_500, "{} bytes", query.len());
        let started = Instant::now();
        let refused = check(&query).expect_err("refused").0;
        // Generous: the expansion is 2^30 fields; walking it would take minutes.
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        assert!(refused.contains("(MAX_QUERY_FIELDS)"), "{refused}");
        assert!(check(&doubling_fragments(9)).is_ok(), "512 fields are allowed");
    }

    #[test]
    fn repeated_fields_cycles_and_deep_nesting_are_refused() {
        let ids = format!("{{ me {{ {} }} }}", "id ".repeat(5_000));
        assert!(check(&ids).expect_err("refused").0.contains("field count is 1001,"));
        let cycle = "{ me { ...A } } fragment A on User { ...B } fragment B on User { id ...A }";
        assert_eq!(check(cycle).expect_err("refused").0, "The fragment A spreads itself (directly or through others)");
        let nested = format!("{{ me {{ {} id {} }} }}", "... on User { ".repeat(40), "} ".repeat(40));
        assert!(check(&nested).is_ok(), "inline fragments add no depth");
        let mut chain = String::from("{ me { ...F70 } } fragment F0 on User { id }");
        for n in 1..=70 {
            chain.push_str(&format!(" fragment F{n} on User {{ ...F{} }}", n - 1));
        }
        let refused = check(&chain).expect_err("refused").0;
        assert_eq!(refused, "The operation's selection nesting is 65, over the limit of 64 (fixed)");
    }

    #[test]
    fn text_is_refused_by_length_and_tokens_before_parsing() {
        let limits = DocumentLimits::new(QueryLimits::default());
        assert!(limits.check_text(&"a".repeat(32 * 1024)).is_ok());
        let long = limits.check_text(&"a".repeat(32 * 1024 + 1)).expect_err("refused").0;
        assert_eq!(long, "The operation's query length is 32769, over the limit of 32768 (MAX_QUERY_LENGTH)");
        let flood = limits.check_text(&"{}".repeat(6_000)).expect_err("refused").0;
        assert_eq!(flood, "The operation's token count is 10001, over the limit of 10000 (MAX_QUERY_TOKENS)");
        let lists = format!("{{ me(l: {}1{}) {{ id }} }}", "[".repeat(3_000), "]".repeat(3_000));
        let deep = limits.check_text(&lists).expect_err("refused").0;
        assert_eq!(deep, "The operation's bracket nesting is 129, over the limit of 128 (fixed)");
        let batch = limits.check_batch(33).expect_err("refused").0;
        assert_eq!(batch, "A batch holds 1 to 32 operations (MAX_BATCH); this one holds 33");
    }

    #[test]
    fn every_operation_of_a_document_counts() {
        // Validation visits every operation, so their fields add up: 501 each.
        let query = format!("query A {{ me {{ {ids} }} }} query B {{ me {{ {ids} }} }}", ids = "id ".repeat(500));
        let refused = check(&query).expect_err("refused").0;
        assert_eq!(refused, "The operation's field count is 1002, over the limit of 1000 (MAX_QUERY_FIELDS)");
    }
}
