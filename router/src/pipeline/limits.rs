//! Operation limits, checked before validation and planning: the classic abuse
//! queries (deep nesting, alias and field flooding, fragment bombs, directive
//! overload, huge fan-out) are refused before they cost anything.
//!
//! The same measure is taken by every subgraph (`platform`), so these rules are the
//! contract; keep both sides equal:
//!
//! - **length** (`MAX_QUERY_LENGTH`): bytes of the query text, before anything else.
//! - **tokens** (`MAX_QUERY_TOKENS`): lexical tokens (punctuators, names, numbers,
//!   strings, block strings; comments, commas and white space are not tokens),
//!   counted by a linear scan before parsing.
//! - **depth** (`MAX_QUERY_DEPTH`): a root field is depth 1, each nested field +1;
//!   fragments and inline fragments add nothing.
//! - **fields** / **aliases** (`MAX_QUERY_FIELDS`, `MAX_ALIASES`): every field (every
//!   aliased field) counted per occurrence, through every spread and duplicate: the
//!   count of the document with its fragments expanded (saturating arithmetic).
//! - **root fields** (`MAX_ROOT_FIELDS`): fields of the operation's root selection,
//!   through fragments, per occurrence.
//! - **directives** (`MAX_DIRECTIVES_PER_FIELD`): the most on one field, inline fragment
//!   or spread.
//! - **cost** (`MAX_QUERY_COST`): each field costs the product of the page sizes of the
//!   fields above it. A field's page size is its `first`/`last` argument (the larger if
//!   both): a literal Int (below 1 counts 1), a variable counts 100; a field with a
//!   `first`/`last` argument in the schema that is not given counts that argument's
//!   schema default (an Int). Other fields have page size 1 (a connection's `edges`
//!   list is as long as the page of the field above it), and so has a page argument
//!   without a default: the schema does not say how long its list is.
//!   A root `__schema`/`__type` field costs the fields of its answer, counted over the
//!   API schema's actual types, fields, arguments and values (every selection included,
//!   duplicates counted per occurrence): an upper bound of what introspection returns.
//!
//! Each fragment definition is measured once, at unit multiplier, in the context of its
//! type condition; a spread adds that measure (cost and counts scale linearly with the
//! multiplier, depth adds), so the work is linear in the document's size however often
//! fragments spread each other. The walk stops at the first limit exceeded (every part
//! measured is used at least once and page sizes are at least 1, so a part over a limit
//! puts the whole over it). A fragment that spreads itself is refused as validation
//! would refuse it; spreads nested more than 64 deep are refused. Validation reads
//! the whole document, so every operation in it and every fragment definition (used
//! or not) is held to the limits, not only the operation to run.

use std::collections::HashMap;

use graphql_tools::static_graphql::query::{
    Definition, Document, Field, FragmentDefinition, OperationDefinition, Selection, SelectionSet, TypeCondition,
};

use super::error::RequestError;
use crate::introspection::named_type;
use crate::supergraph::Supergraph;
use crate::supergraph::pages::{PAGE_ARGUMENTS, page_size};

/// The limits themselves are the platform's, shared with the subgraphs.
pub use platform::config::QueryLimits as OperationLimits;

/// Fragment spreads nested deeper than this are refused (cycles are invalid anyway).
const MAX_SPREAD_NESTING: usize = 64;

const INTROSPECTION_FIELDS: [&str; 2] = ["__schema", "__type"];

/// Measured shape of one selection set (of the operation, for the root one).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    pub depth: usize,
    pub fields: u64,
    pub aliases: u64,
    /// Fields at the set's own level, through fragments: the root fields, for the root set.
    pub root_fields: u64,
    pub max_directives: usize,
    pub cost: u64,
}

impl Measure {
    /// Adds a part that sits at the same level (a fragment, or the next field).
    fn add(&mut self, part: &Measure) {
        self.depth = self.depth.max(part.depth);
        self.fields = self.fields.saturating_add(part.fields);
        self.aliases = self.aliases.saturating_add(part.aliases);
        self.root_fields = self.root_fields.saturating_add(part.root_fields);
        self.max_directives = self.max_directives.max(part.max_directives);
        self.cost = self.cost.saturating_add(part.cost);
    }
}

/// Refuses a query text over `MAX_QUERY_LENGTH` (before it is hashed, looked up or kept).
pub fn check_length(limits: &OperationLimits, query: &str) -> Result<(), RequestError> {
    if query.len() > limits.max_length {
        return Err(exceeded("query length", query.len() as u64, limits.max_length as u64, "MAX_QUERY_LENGTH"));
    }
    Ok(())
}

/// Refuses a query text over the length, token or bracket-nesting limits
/// (the platform's check, the same as every subgraph's), before it is parsed.
pub fn check_text(limits: &OperationLimits, query: &str) -> Result<(), RequestError> {
    platform::query_text::check(limits, query).map_err(|e| RequestError::LimitExceeded(e.to_string()))
}

/// Measures the `selected` operation of `document` and refuses it over any limit,
/// stopping at the first exceeded. Validation reads the whole document, so every
/// other operation and every fragment definition (used or not, duplicates too) must
/// be within the limits as well.
pub fn check(
    limits: &OperationLimits,
    supergraph: &Supergraph,
    document: &Document,
    selected: &OperationDefinition,
    fragments: &HashMap<String, FragmentDefinition>,
) -> Result<Measure, RequestError> {
    let mut walker = Walker { limits, supergraph, fragments, measured: HashMap::new() };
    let measure = walker.operation(selected)?;
    for definition in &document.definitions {
        match definition {
            Definition::Operation(other) if !std::ptr::eq(other, selected) => {
                walker.operation(other)?;
            }
            Definition::Fragment(fragment) => {
                let on = walker.type_name(&fragment.type_condition);
                walker.selection_set(&fragment.selection_set, on, 0, 1)?;
            }
            Definition::Operation(_) => {}
        }
    }
    Ok(measure)
}

fn exceeded(what: &'static str, value: u64, limit: u64, setting: &'static str) -> RequestError {
    RequestError::LimitExceeded(platform::query_text::Exceeded { what, value, limit, setting }.to_string())
}

/// A fragment's measure, or the mark that it is being measured (a spread of it then is a cycle).
enum Measured {
    InProgress,
    Done(Measure),
}

struct Walker<'a> {
    limits: &'a OperationLimits,
    supergraph: &'a Supergraph,
    fragments: &'a HashMap<String, FragmentDefinition>,
    measured: HashMap<&'a str, Measured>,
}

impl<'a> Walker<'a> {
    fn operation(&mut self, operation: &'a OperationDefinition) -> Result<Measure, RequestError> {
        let schema = &self.supergraph.schema;
        let (root_type, set) = match operation {
            OperationDefinition::SelectionSet(set) => (Some(&schema.query_type), set),
            OperationDefinition::Query(query) => (Some(&schema.query_type), &query.selection_set),
            OperationDefinition::Mutation(mutation) => (schema.mutation_type.as_ref(), &mutation.selection_set),
            OperationDefinition::Subscription(subscription) => {
                (schema.subscription_type.as_ref(), &subscription.selection_set)
            }
        };
        let measure = self.selection_set(set, root_type.and_then(|t| schema.type_name(t)), 0, 0)?;
        let limits = self.limits;
        if measure.root_fields > limits.max_root_fields {
            return Err(exceeded("root fields", measure.root_fields, limits.max_root_fields, "MAX_ROOT_FIELDS"));
        }
        Ok(measure)
    }

    /// The measure of `set` on type `on` (`None`: unknown, validation refuses the
    /// document later), whose fields sit at depth `above + 1`, `spreads` fragments deep.
    fn selection_set(
        &mut self,
        set: &'a SelectionSet,
        on: Option<&'a str>,
        above: usize,
        spreads: usize,
    ) -> Result<Measure, RequestError> {
        let mut measure = Measure::default();
        for item in &set.items {
            let part = match item {
                Selection::Field(field) => self.field(field, on, above, spreads)?,
                Selection::InlineFragment(inline) => {
                    let on = match &inline.type_condition {
                        Some(condition) => self.type_name(condition),
                        None => on,
                    };
                    let mut part = self.selection_set(&inline.selection_set, on, above, spreads)?;
                    part.max_directives = part.max_directives.max(inline.directives.len());
                    part
                }
                Selection::FragmentSpread(spread) => {
                    let mut part = self.fragment(&spread.fragment_name, above, spreads + 1)?;
                    part.max_directives = part.max_directives.max(spread.directives.len());
                    part
                }
            };
            measure.add(&part);
            self.check_part(&measure, above)?;
        }
        Ok(measure)
    }

    fn field(
        &mut self,
        field: &'a Field,
        on: Option<&'a str>,
        above: usize,
        spreads: usize,
    ) -> Result<Measure, RequestError> {
        let depth = above + 1;
        if depth > self.limits.max_depth {
            return Err(exceeded("query depth", depth as u64, self.limits.max_depth as u64, "MAX_QUERY_DEPTH"));
        }
        let schema = &self.supergraph.schema;
        let returns =
            on.and_then(|t| schema.field_type(t, &field.name)).map(named_type).and_then(|n| schema.type_name(n));
        let inner = self.selection_set(&field.selection_set, returns, depth, spreads)?;
        let is_introspection =
            on == Some(schema.query_type.as_str()) && INTROSPECTION_FIELDS.contains(&field.name.as_str());
        let cost = if is_introspection {
            self.supergraph.introspection.answer_size(field, self.fragments, self.limits.max_cost)
        } else {
            self.page(field, on).saturating_mul(inner.cost).saturating_add(1)
        };
        Ok(Measure {
            depth: inner.depth + 1,
            fields: inner.fields.saturating_add(1),
            aliases: inner.aliases.saturating_add(u64::from(field.alias.is_some())),
            root_fields: 1,
            max_directives: inner.max_directives.max(field.directives.len()),
            cost,
        })
    }

    /// A field's page size: its `first`/`last`, else its schema default, else 1.
    fn page(&self, field: &Field, on: Option<&str>) -> u64 {
        let given = field
            .arguments
            .iter()
            .filter(|(name, _)| PAGE_ARGUMENTS.contains(&name.as_str()))
            .filter_map(|(_, value)| page_size(value))
            .max();
        let default = || on.and_then(|t| self.supergraph.page_defaults.get(t, &field.name));
        given.or_else(default).unwrap_or(1)
    }

    /// A fragment's measure, taken the first time it is spread.
    fn fragment(&mut self, name: &'a str, above: usize, spreads: usize) -> Result<Measure, RequestError> {
        if spreads > MAX_SPREAD_NESTING {
            return Err(exceeded("fragment nesting", spreads as u64, MAX_SPREAD_NESTING as u64, "fixed"));
        }
        match self.measured.get(name) {
            Some(Measured::Done(measure)) => return Ok(*measure),
            Some(Measured::InProgress) => {
                return Err(RequestError::Validation {
                    message: format!("Cannot spread fragment \"{name}\" within itself."),
                    locations: Vec::new(),
                });
            }
            None => {}
        }
        // Unknown fragments are left to validation.
        let Some(fragment) = self.fragments.get(name) else { return Ok(Measure::default()) };
        self.measured.insert(name, Measured::InProgress);
        let on = self.type_name(&fragment.type_condition);
        let mut measure = self.selection_set(&fragment.selection_set, on, above, spreads)?;
        measure.max_directives = measure.max_directives.max(fragment.directives.len());
        self.measured.insert(name, Measured::Done(measure));
        Ok(measure)
    }

    fn type_name(&self, condition: &TypeCondition) -> Option<&'a str> {
        let TypeCondition::On(name) = condition;
        self.supergraph.schema.type_name(name)
    }

    /// Refuses as soon as a part (a lower bound of the whole) is over a limit.
    fn check_part(&self, measure: &Measure, above: usize) -> Result<(), RequestError> {
        let limits = self.limits;
        let depth = (above + measure.depth) as u64;
        let checks = [
            ("query depth", depth, limits.max_depth as u64, "MAX_QUERY_DEPTH"),
            ("field count", measure.fields, limits.max_fields, "MAX_QUERY_FIELDS"),
            ("aliases", measure.aliases, limits.max_aliases, "MAX_ALIASES"),
            (
                "directives on one field",
                measure.max_directives as u64,
                limits.max_directives_per_field as u64,
                "MAX_DIRECTIVES_PER_FIELD",
            ),
            ("estimated cost", measure.cost, limits.max_cost, "MAX_QUERY_COST"),
        ];
        for (what, value, limit, setting) in checks {
            if value > limit {
                return Err(exceeded(what, value, limit, setting));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;

    /// Our own API: paged fields with `first: Int = 20`, introspection of its real types.
    static SUPERGRAPH: LazyLock<Supergraph> = LazyLock::new(|| {
        let sdl = include_str!("../../../schema/supergraph.graphql");
        let env = &mut platform::Env::from_pairs(Vec::<(String, String)>::new());
        Supergraph::from_sdl(sdl, &crate::Settings::from_env(env).subgraphs, 1).expect("the supergraph builds")
    });

    fn measure_with(limits: &OperationLimits, query: &str) -> Result<Measure, RequestError> {
        let document = graphql_tools::parser::parse_query::<String>(query).expect("parses").into_static();
        let fragments = document
            .definitions
            .iter()
            .filter_map(|d| match d {
                Definition::Fragment(f) => Some((f.name.clone(), f.clone())),
                _ => None,
            })
            .collect();
        let selected = document
            .definitions
            .iter()
            .find_map(|d| match d {
                Definition::Operation(operation) => Some(operation),
                _ => None,
            })
            .expect("an operation");
        check(limits, &SUPERGRAPH, &document, selected, &fragments)
    }

    fn measure(query: &str) -> Result<Measure, RequestError> {
        measure_with(&OperationLimits::default(), query)
    }

    fn refusal(query: &str) -> String {
        let refused = measure(query).expect_err("refused");
        assert_eq!(refused.code(), "BAD_USER_INPUT", "{query}");
        refused.to_string()
    }

    /// F1 spreads F0 twice, ..., F30 spreads F29 twice: 2^30 `id`s from about 1.5 KB.
    fn fragment_bomb() -> String {
        let mut query = String::from("{ me { ...F30 } } fragment F0 on User { id }");
        for level in 1..=30 {
            let below = level - 1;
            query.push_str(&format!(" fragment F{level} on User {{ ...F{below} ...F{below} }}"));
        }
        query
    }

    #[test]
    fn depth_aliases_root_fields_and_cost_are_measured_through_fragments() {
        let m = measure(
            "query($n: Int) { me { tasks(first: 10) { edges { node { ...T } } } } a: tasks(first: $n) { totalCount } }
             fragment T on Task { id title owner { email } }",
        )
        .unwrap();
        assert_eq!(m.depth, 6, "me > tasks > edges > node > owner > email");
        assert_eq!(m.aliases, 1);
        assert_eq!(m.root_fields, 2);
        assert_eq!(m.fields, 10);
        // me 1, tasks 1, edges 10, node 10, id/title/owner 30, email 10; a 1, totalCount 100.
        assert_eq!(m.cost, 1 + 1 + 10 + 10 + 30 + 10 + 1 + 100);
    }

    #[test]
    fn fields_and_aliases_count_every_occurrence_through_every_spread() {
        let m = measure("{ me { ...A ...A x: id } } fragment A on User { id y: email ... on User { id } }").unwrap();
        assert_eq!(m.fields, 1 + 3 + 3 + 1);
        assert_eq!(m.aliases, 1 + 1 + 1);
        assert_eq!(m.root_fields, 1);
        assert_eq!(m.depth, 2);
    }

    #[test]
    fn a_paged_field_without_first_costs_its_schema_default() {
        let m = measure("{ me { tasks { totalCount } files { totalCount } } }").unwrap();
        // me 1; tasks 1 + 20 × totalCount; files the same.
        assert_eq!(m.cost, 1 + (1 + 20) + (1 + 20));
        // Three levels of default pages: 20³ tasks.
        let nested = "{ me { tasks { edges { node { owner { tasks { edges { node { owner { tasks { edges { node { id } } } } } } } } } } } } }";
        assert!(refusal(nested).contains("MAX_QUERY_COST"));
    }

    #[test]
    fn the_classic_abuse_queries_are_refused() {
        let deep = format!("{{ {}id{} }}", "me { ".repeat(16), " }".repeat(16));
        assert!(refusal(&deep).contains("The operation's query depth is 17, over the limit of 16 (MAX_QUERY_DEPTH)"));
        let aliases = format!("{{ {} }}", (0..31).map(|i| format!("a{i}: __typename")).collect::<Vec<_>>().join(" "));
        assert!(refusal(&aliases).contains("MAX_ALIASES"));
        let roots = format!("{{ {} }}", "__typename ".repeat(21));
        assert!(refusal(&roots).contains("MAX_ROOT_FIELDS"));
        let directives =
            "{ me @skip(if: false) @skip(if: false) @skip(if: false) @skip(if: false) @skip(if: false) { id } }";
        assert!(refusal(directives).contains("MAX_DIRECTIVES_PER_FIELD"));
        let fan_out =
            "{ tasks(first: 100) { edges { node { owner { tasks(first: 100) { edges { node { id } } } } } } } }";
        assert!(refusal(fan_out).contains("MAX_QUERY_COST"));
    }

    #[test]
    fn a_flood_of_one_repeated_field_is_refused() {
        let flood = format!("{{ me {{ {} }} }}", "id ".repeat(5000));
        assert!(
            refusal(&flood).contains("The operation's field count is 1001, over the limit of 1000 (MAX_QUERY_FIELDS)")
        );
    }

    #[test]
    fn every_operation_and_fragment_of_the_document_is_bounded_as_validation_reads_them_all() {
        let ids = "id ".repeat(1001);
        for query in [
            format!("query A {{ me {{ id }} }} query B {{ me {{ {ids} }} }}"),
            format!("{{ me {{ id }} }} fragment Unused on User {{ {ids} }}"),
            format!("{{ me {{ ...A }} }} fragment A on User {{ {ids} }} fragment A on User {{ id }}"),
        ] {
            assert!(refusal(&query).contains("MAX_QUERY_FIELDS"), "{query}");
        }
    }

    #[test]
    fn a_fragment_bomb_is_refused_and_measured_without_being_expanded() {
        let query = fragment_bomb();
        assert!(query.len() < 2048, "{}", query.len());
        assert!(refusal(&query).contains("MAX_QUERY_FIELDS"));

        // With no limits to stop at, the whole 2^30-field measure comes back
        // exactly: each fragment was measured once, never expanded.
        let unlimited = OperationLimits {
            max_fields: u64::MAX,
            max_aliases: u64::MAX,
            max_cost: u64::MAX,
            ..OperationLimits::default()
        };
        let m = measure_with(&unlimited, &query).unwrap();
        assert_eq!(m.fields, 1 + (1 << 30));
        assert_eq!(m.cost, 1 + (1 << 30));
        assert_eq!(m.depth, 2);
    }

    #[test]
    fn a_fragment_that_spreads_itself_is_refused_without_looping() {
        let refused =
            measure("{ me { ...A } } fragment A on User { id ...B } fragment B on User { ...A }").unwrap_err();
        assert_eq!(refused.code(), "GRAPHQL_VALIDATION_FAILED");
        assert!(refused.to_string().contains("Cannot spread fragment \"A\" within itself"), "{refused}");
    }

    #[test]
    fn introspection_costs_what_it_answers() {
        // `__Type` has 11 fields; `__type(name:)` answers one type.
        let m = measure("{ __type(name: \"__Type\") { fields { name } } }").unwrap();
        assert_eq!(m.cost, 1 + 1 + 11);
        let unknown = measure("{ __type(name: \"Nope\") { fields { name } } }").unwrap();
        assert_eq!(unknown.cost, 1);
        // The types of GraphiQL's schema answer cost about 2,000: asking for them five times over is
        // refused, though the document's 900 fields are within MAX_QUERY_FIELDS.
        let fragments = &GRAPHIQL_INTROSPECTION[GRAPHIQL_INTROSPECTION.find("fragment FullType").unwrap()..];
        let copies: String = (0..5).map(|i| format!("s{i}: __schema {{ types {{ ...FullType }} }} ")).collect();
        let amplified = format!("{{ {copies} }} {fragments}");
        assert!(refusal(&amplified).contains("MAX_QUERY_COST"), "{amplified}");
    }

    #[test]
    fn graphiqls_introspection_query_passes_every_default_limit() {
        let m = measure(GRAPHIQL_INTROSPECTION).unwrap();
        let limits = OperationLimits::default();
        assert!(check_text(&limits, GRAPHIQL_INTROSPECTION).is_ok());
        assert!(m.depth <= limits.max_depth && m.fields <= limits.max_fields && m.cost <= limits.max_cost, "{m:?}");
    }

    /// graphql-js 16 `getIntrospectionQuery({ descriptions, specifiedByUrl, directiveIsRepeatable,
    /// schemaDescription, inputValueDeprecation })`, as GraphiQL sends it.
    const GRAPHIQL_INTROSPECTION: &str = include_str!("../../tests/api/graphiql_introspection.graphql");

    #[test]
    fn texts_are_refused_by_length_tokens_and_bracket_nesting_before_parsing() {
        let limits = OperationLimits::default();
        assert!(check_text(&limits, &"a,".repeat(10_000)).is_ok());
        let refused = check_text(&limits, &"a,".repeat(10_001)).unwrap_err();
        assert!(refused.to_string().contains("MAX_QUERY_TOKENS"), "{refused}");
        assert!(check_text(&limits, &"a".repeat(32 * 1024)).is_ok());
        assert!(check_text(&limits, &"a".repeat(32 * 1024 + 1)).unwrap_err().to_string().contains("MAX_QUERY_LENGTH"));
        let lists = format!("{{ me(l: {}1{}) {{ id }} }}", "[".repeat(3_000), "]".repeat(3_000));
        assert!(check_text(&limits, &lists).unwrap_err().to_string().contains("bracket nesting"));
    }
}
