//! Operation limits, checked on the parsed operation before validation and
//! planning: the classic abuse queries (deep nesting, alias flooding, directive
//! overload, huge fan-out) are refused before they cost anything.

use std::collections::HashMap;

use graphql_tools::static_graphql::query::{FragmentDefinition, Selection, SelectionSet, Value};

use super::error::RequestError;

/// The limits themselves are kit's, shared with the subgraphs.
pub use kit::config::QueryLimits as OperationLimits;

/// A `first`/`last` given by a variable counts as the largest page allowed.
const VARIABLE_PAGE_SIZE: u64 = 100;
/// Fragment spreads nested deeper than this are refused (cycles are invalid anyway).
const MAX_SPREAD_NESTING: usize = 64;

/// Measured shape of one operation.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Measure {
    pub depth: usize,
    pub aliases: usize,
    pub root_fields: usize,
    pub max_directives: usize,
    pub cost: u64,
}

/// Refuses a query text over `MAX_QUERY_LENGTH`, before it is parsed.
pub fn check_length(limits: &OperationLimits, query: &str) -> Result<(), RequestError> {
    if query.len() > limits.max_length {
        return Err(exceeded("query length", query.len() as u64, limits.max_length as u64, "MAX_QUERY_LENGTH"));
    }
    Ok(())
}

/// Measures the operation and refuses it over any limit.
pub fn check(
    limits: &OperationLimits,
    root: &SelectionSet,
    fragments: &HashMap<String, FragmentDefinition>,
) -> Result<Measure, RequestError> {
    let mut measure = Measure::default();
    walk(root, fragments, 1, 1, 0, &mut measure)?;
    measure.root_fields = count_fields(root, fragments, 0);
    let checks = [
        ("query depth", measure.depth as u64, limits.max_depth as u64, "MAX_QUERY_DEPTH"),
        ("aliases", measure.aliases as u64, limits.max_aliases, "MAX_ALIASES"),
        ("root fields", measure.root_fields as u64, limits.max_root_fields, "MAX_ROOT_FIELDS"),
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
    Ok(measure)
}

fn exceeded(what: &str, value: u64, limit: u64, setting: &str) -> RequestError {
    RequestError::LimitExceeded(format!("The operation's {what} is {value}, over the limit of {limit} ({setting})"))
}

fn walk(
    set: &SelectionSet,
    fragments: &HashMap<String, FragmentDefinition>,
    depth: usize,
    multiplier: u64,
    spreads: usize,
    measure: &mut Measure,
) -> Result<(), RequestError> {
    if spreads > MAX_SPREAD_NESTING {
        return Err(exceeded("fragment nesting", spreads as u64, MAX_SPREAD_NESTING as u64, "fixed"));
    }
    for item in &set.items {
        match item {
            Selection::Field(field) => {
                measure.depth = measure.depth.max(depth);
                measure.aliases += usize::from(field.alias.is_some());
                measure.max_directives = measure.max_directives.max(field.directives.len());
                measure.cost = measure.cost.saturating_add(multiplier);
                let page = field
                    .arguments
                    .iter()
                    .filter(|(name, _)| name == "first" || name == "last")
                    .map(|(_, value)| match value {
                        Value::Int(n) => n.as_i64().unwrap_or(0).max(1) as u64,
                        _ => VARIABLE_PAGE_SIZE,
                    })
                    .max()
                    .unwrap_or(1);
                // Stop early on absurd multipliers: the check fails either way.
                let inner = multiplier.saturating_mul(page).min(u64::MAX / 2);
                walk(&field.selection_set, fragments, depth + 1, inner, spreads, measure)?;
            }
            Selection::InlineFragment(inline) => {
                measure.max_directives = measure.max_directives.max(inline.directives.len());
                walk(&inline.selection_set, fragments, depth, multiplier, spreads, measure)?;
            }
            Selection::FragmentSpread(spread) => {
                measure.max_directives = measure.max_directives.max(spread.directives.len());
                if let Some(fragment) = fragments.get(&spread.fragment_name) {
                    walk(&fragment.selection_set, fragments, depth, multiplier, spreads + 1, measure)?;
                }
            }
        }
    }
    Ok(())
}

/// Fields of one selection set, through fragments.
fn count_fields(set: &SelectionSet, fragments: &HashMap<String, FragmentDefinition>, spreads: usize) -> usize {
    if spreads > MAX_SPREAD_NESTING {
        return 0;
    }
    set.items
        .iter()
        .map(|item| match item {
            Selection::Field(_) => 1,
            Selection::InlineFragment(inline) => count_fields(&inline.selection_set, fragments, spreads),
            Selection::FragmentSpread(spread) => fragments
                .get(&spread.fragment_name)
                .map_or(0, |f| count_fields(&f.selection_set, fragments, spreads + 1)),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use graphql_tools::static_graphql::query::{Definition, OperationDefinition};

    use super::*;

    fn measure(query: &str) -> Result<Measure, RequestError> {
        let document = graphql_tools::parser::parse_query::<String>(query).unwrap().into_static();
        let fragments = document
            .definitions
            .iter()
            .filter_map(|d| match d {
                Definition::Fragment(f) => Some((f.name.clone(), f.clone())),
                _ => None,
            })
            .collect();
        let root = document
            .definitions
            .iter()
            .find_map(|d| match d {
                Definition::Operation(OperationDefinition::SelectionSet(s)) => Some(s.clone()),
                Definition::Operation(OperationDefinition::Query(q)) => Some(q.selection_set.clone()),
                _ => None,
            })
            .unwrap();
        check(&OperationLimits::default(), &root, &fragments)
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
        // me 1, tasks 1, edges 10, node 10, id/title/owner 30, email 10; a 1, totalCount 100.
        assert_eq!(m.cost, 1 + 1 + 10 + 10 + 30 + 10 + 1 + 100);
    }

    #[test]
    fn the_classic_abuse_queries_are_refused() {
        let deep = format!("{{ {}x{} }}", "a { ".repeat(25), " }".repeat(25));
        let aliases = format!("{{ {} }}", (0..40).map(|i| format!("a{i}: me {{ id }}")).collect::<Vec<_>>().join(" "));
        let directives =
            "{ me @skip(if: false) @skip(if: false) @skip(if: false) @skip(if: false) @skip(if: false) { id } }";
        let fan_out =
            "{ tasks(first: 100) { edges { node { owner { tasks(first: 100) { edges { node { id } } } } } } } }";
        for query in [deep.as_str(), aliases.as_str(), directives, fan_out] {
            let refused = measure(query).unwrap_err();
            assert_eq!(refused.code(), "BAD_USER_INPUT", "{query}");
        }
    }

    #[test]
    fn long_queries_are_refused_before_parsing() {
        let limits = OperationLimits::default();
        assert!(check_length(&limits, &"a".repeat(32 * 1024)).is_ok());
        assert!(check_length(&limits, &"a".repeat(32 * 1024 + 1)).is_err());
    }
}
