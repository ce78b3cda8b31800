//! What a prepared operation holds on the heap, estimated by walking it, so
//! that the plan cache can be bounded in bytes (`PLAN_CACHE_MAX_BYTES`) rather
//! than in entries: one entry may be a few hundred bytes or megabytes (a
//! document of fragments the planner expands, a plan of many fetches).
//!
//! The walk counts what each owned value allocates: strings and vectors by
//! capacity, B-tree maps by the nodes they fill. A test below holds it against
//! what an allocator actually saw retained.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::mem::size_of;

use graphql_tools::static_graphql::query::{
    Definition, Directive, Field, FragmentDefinition, OperationDefinition, Selection, SelectionSet, Type,
    TypeCondition, Value as Literal, VariableDefinition,
};
use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::SelectionSet as PlanSelectionSet;
use hive_router_query_planner::ast::value::Value as PlanValue;
use hive_router_query_planner::planner::plan_nodes::{
    EntityBatchAlias, FetchNode, FetchNodePathSegment, FetchRewrite, FlattenNodePath, FlattenNodePathSegment, PlanNode,
    QueryPlan,
};

use super::Prepared;

/// Bytes a value owns on the heap, beyond its own size.
pub trait Heap {
    fn heap(&self) -> usize;
}

/// The bytes a prepared operation costs the cache: itself (in its `Arc`) and what it owns.
pub fn prepared(prepared: &Prepared) -> usize {
    let fragments = hash_map(&prepared.fragments);
    let roots = vec_heap(&prepared.root_fields);
    let plan = prepared.plan.as_ref().map_or(0, Heap::heap);
    size_of::<Prepared>()
        + 2 * size_of::<usize>()
        + prepared.operation.heap()
        + fragments
        + roots
        + plan
        + prepared.operation_name.heap()
}

impl Heap for String {
    fn heap(&self) -> usize {
        self.capacity()
    }
}

impl<T: Heap> Heap for Option<T> {
    fn heap(&self) -> usize {
        self.as_ref().map_or(0, Heap::heap)
    }
}

impl<T: Heap> Heap for Box<T> {
    fn heap(&self) -> usize {
        size_of::<T>() + (**self).heap()
    }
}

impl<T: Heap> Heap for Vec<T> {
    fn heap(&self) -> usize {
        vec_heap(self)
    }
}

impl<A: Heap, B: Heap> Heap for (A, B) {
    fn heap(&self) -> usize {
        self.0.heap() + self.1.heap()
    }
}

fn vec_heap<T: Heap>(items: &Vec<T>) -> usize {
    items.capacity() * size_of::<T>() + items.iter().map(Heap::heap).sum::<usize>()
}

/// A B-tree fills nodes of up to 11 entries; half-full on average once it grows.
fn btree_nodes<E>(len: usize) -> usize {
    const CAPACITY: usize = 11;
    let nodes = if len == 0 { 0 } else { len.div_ceil(CAPACITY / 2 + 1) };
    nodes * (CAPACITY * size_of::<E>() + 2 * size_of::<usize>())
}

impl<K: Heap, V: Heap> Heap for BTreeMap<K, V> {
    fn heap(&self) -> usize {
        btree_nodes::<(K, V)>(self.len()) + self.iter().map(|(k, v)| k.heap() + v.heap()).sum::<usize>()
    }
}

impl<K: Heap> Heap for BTreeSet<K> {
    fn heap(&self) -> usize {
        btree_nodes::<K>(self.len()) + self.iter().map(Heap::heap).sum::<usize>()
    }
}

fn hash_map<K: Heap, V: Heap>(map: &HashMap<K, V>) -> usize {
    // A slot per capacity, and a control byte each.
    map.capacity() * (size_of::<(K, V)>() + 1) + map.iter().map(|(k, v)| k.heap() + v.heap()).sum::<usize>()
}

// The client's operation and fragments, as graphql-tools parsed them.

impl Heap for OperationDefinition {
    fn heap(&self) -> usize {
        match self {
            OperationDefinition::SelectionSet(set) => set.heap(),
            OperationDefinition::Query(q) => {
                q.name.heap() + q.variable_definitions.heap() + q.directives.heap() + q.selection_set.heap()
            }
            OperationDefinition::Mutation(m) => {
                m.name.heap() + m.variable_definitions.heap() + m.directives.heap() + m.selection_set.heap()
            }
            OperationDefinition::Subscription(s) => {
                s.name.heap() + s.variable_definitions.heap() + s.directives.heap() + s.selection_set.heap()
            }
        }
    }
}

impl Heap for Definition {
    fn heap(&self) -> usize {
        match self {
            Definition::Operation(op) => op.heap(),
            Definition::Fragment(f) => f.heap(),
        }
    }
}

impl Heap for FragmentDefinition {
    fn heap(&self) -> usize {
        let TypeCondition::On(on) = &self.type_condition;
        self.name.heap() + on.heap() + self.directives.heap() + self.selection_set.heap()
    }
}

impl Heap for SelectionSet {
    fn heap(&self) -> usize {
        self.items.heap()
    }
}

impl Heap for Selection {
    fn heap(&self) -> usize {
        match self {
            Selection::Field(field) => field.heap(),
            Selection::FragmentSpread(spread) => spread.fragment_name.heap() + spread.directives.heap(),
            Selection::InlineFragment(inline) => {
                let on = inline.type_condition.as_ref().map_or(0, |TypeCondition::On(t)| t.heap());
                on + inline.directives.heap() + inline.selection_set.heap()
            }
        }
    }
}

impl Heap for Field {
    fn heap(&self) -> usize {
        self.alias.heap()
            + self.name.heap()
            + self.arguments.heap()
            + self.directives.heap()
            + self.selection_set.heap()
    }
}

impl Heap for Directive {
    fn heap(&self) -> usize {
        self.name.heap() + self.arguments.heap()
    }
}

impl Heap for VariableDefinition {
    fn heap(&self) -> usize {
        self.name.heap() + self.var_type.heap() + self.default_value.heap()
    }
}

impl Heap for Type {
    fn heap(&self) -> usize {
        match self {
            Type::NamedType(name) => name.heap(),
            Type::ListType(inner) | Type::NonNullType(inner) => inner.heap(),
        }
    }
}

impl Heap for Literal {
    fn heap(&self) -> usize {
        match self {
            Literal::Variable(s) | Literal::String(s) | Literal::Enum(s) => s.heap(),
            Literal::List(items) => items.heap(),
            Literal::Object(fields) => fields.heap(),
            Literal::Int(_) | Literal::Float(_) | Literal::Boolean(_) | Literal::Null => 0,
        }
    }
}

// The plan, as the planner built it: each fetch's operation is kept as text and as a tree.

impl Heap for QueryPlan {
    fn heap(&self) -> usize {
        self.node.heap()
    }
}

impl Heap for PlanNode {
    fn heap(&self) -> usize {
        match self {
            PlanNode::Fetch(fetch) => fetch_heap(fetch),
            PlanNode::BatchFetch(batch) => {
                let aliases = &batch.entity_batch.aliases;
                let per_alias = aliases.iter().map(|a| {
                    let paths = a.merge_paths.capacity() * size_of::<FlattenNodePath>()
                        + a.merge_paths.iter().map(path_heap).sum::<usize>();
                    a.alias.heap()
                        + a.representations_variable_name.heap()
                        + paths
                        + a.requires.heap()
                        + a.input_rewrites.heap()
                        + a.output_rewrites.heap()
                });
                batch.service_name.heap()
                    + batch.variable_usages.heap()
                    + operation_heap(&batch.operation.document_str, &batch.operation.document.operation.selection_set)
                    + aliases.capacity() * size_of::<EntityBatchAlias>()
                    + per_alias.sum::<usize>()
            }
            PlanNode::Sequence(seq) => seq.nodes.heap(),
            PlanNode::Parallel(par) => par.nodes.heap(),
            PlanNode::Flatten(flatten) => path_heap(&flatten.path) + flatten.node.heap(),
            PlanNode::Condition(condition) => {
                condition.condition.heap() + condition.if_clause.heap() + condition.else_clause.heap()
            }
            PlanNode::Subscription(subscription) => fetch_heap(&subscription.primary),
            // Never executed (refused at execution), so its plan is weighed by its text.
            PlanNode::Defer(defer) => serde_json::to_vec(defer).map_or(0, |json| 4 * json.len()),
        }
    }
}

fn path_heap(path: &FlattenNodePath) -> usize {
    let path = path.as_slice();
    size_of_val(path) + path.iter().map(Heap::heap).sum::<usize>()
}

fn fetch_heap(fetch: &FetchNode) -> usize {
    let operation = &fetch.operation;
    fetch.service_name.heap()
        + fetch.variable_usages.heap()
        + operation_heap(&operation.document_str, &operation.document.operation.selection_set)
        + fetch.requires.heap()
        + fetch.input_rewrites.heap()
        + fetch.output_rewrites.heap()
        + fetch.custom_scalar_paths.as_ref().map_or(0, |paths| serde_json::to_vec(paths).map_or(0, |j| 2 * j.len()))
}

/// A subgraph operation: its text, and its tree (variable definitions weighed
/// by the text they print as).
fn operation_heap(text: &str, selections: &PlanSelectionSet) -> usize {
    2 * text.len() + selections.heap()
}

impl Heap for PlanSelectionSet {
    fn heap(&self) -> usize {
        self.items.heap()
    }
}

impl Heap for SelectionItem {
    fn heap(&self) -> usize {
        match self {
            SelectionItem::Field(field) => {
                let arguments = field.arguments.as_ref().map_or(0, |arguments| {
                    let entries: Vec<(&String, &PlanValue)> = arguments.into_iter().collect();
                    btree_nodes::<(String, PlanValue)>(entries.len())
                        + entries.iter().map(|(k, v)| k.heap() + v.heap()).sum::<usize>()
                });
                field.name.heap()
                    + field.alias.heap()
                    + field.skip_if.heap()
                    + field.include_if.heap()
                    + arguments
                    + field.selections.heap()
            }
            SelectionItem::InlineFragment(inline) => {
                inline.type_condition.heap()
                    + inline.skip_if.heap()
                    + inline.include_if.heap()
                    + inline.selections.heap()
            }
            SelectionItem::FragmentSpread(name) => name.heap(),
        }
    }
}

impl Heap for PlanValue {
    fn heap(&self) -> usize {
        match self {
            PlanValue::Variable(s) | PlanValue::String(s) | PlanValue::Enum(s) => s.heap(),
            PlanValue::List(items) => items.heap(),
            PlanValue::Object(fields) => fields.heap(),
            PlanValue::Int(_) | PlanValue::Float(_) | PlanValue::Boolean(_) | PlanValue::Null => 0,
        }
    }
}

impl Heap for FlattenNodePathSegment {
    fn heap(&self) -> usize {
        match self {
            FlattenNodePathSegment::Field(name) => name.heap(),
            FlattenNodePathSegment::TypeCondition(types) => types.heap(),
            FlattenNodePathSegment::List => 0,
        }
    }
}

impl Heap for FetchNodePathSegment {
    fn heap(&self) -> usize {
        match self {
            FetchNodePathSegment::Key(key) => key.heap(),
            FetchNodePathSegment::TypenameEquals(types) => types.heap(),
        }
    }
}

impl Heap for FetchRewrite {
    fn heap(&self) -> usize {
        match self {
            FetchRewrite::ValueSetter(setter) => setter.path.heap() + setter.set_value_to.heap(),
            FetchRewrite::KeyRenamer(renamer) => renamer.path.heap() + renamer.rename_key_to.heap(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::sync::Arc;

    use super::*;
    use crate::supergraph::Supergraph;

    /// The system allocator, counting on each thread the bytes allocated and
    /// not yet freed there (tests run on threads of their own).
    struct Counting;

    thread_local! {
        static LIVE: Cell<isize> = const { Cell::new(0) };
    }

    fn count(delta: isize) {
        let _ = LIVE.try_with(|live| live.set(live.get() + delta));
    }

    // SAFETY: every call is passed on to `System` unchanged; only a thread-local counter is added.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count(layout.size() as isize);
            // SAFETY: the caller's contract is `System`'s.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            count(-(layout.size() as isize));
            // SAFETY: the caller's contract is `System`'s.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count(new_size as isize - layout.size() as isize);
            // SAFETY: the caller's contract is `System`'s.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    /// The bytes `make` leaves allocated, with what it returns.
    fn retained<T>(make: impl FnOnce() -> T) -> (T, isize) {
        let before = LIVE.with(Cell::get);
        let made = make();
        (made, LIVE.with(Cell::get) - before)
    }

    fn fixture() -> (Arc<Supergraph>, crate::config::GraphqlSettings) {
        let sdl = include_str!("../../../benches/fixtures/supergraph.graphql");
        let env = &mut platform::Env::from_pairs(Vec::<(String, String)>::new());
        let subgraphs = crate::Settings::from_env(env).subgraphs;
        let settings = crate::Settings::from_env(env).graphql;
        (Arc::new(Supergraph::from_sdl(sdl, &subgraphs, 1).expect("fixture builds")), settings)
    }

    #[test]
    fn the_weight_of_a_prepared_operation_is_close_to_what_it_holds() {
        let (supergraph, settings) = fixture();
        let operations = [
            "{ topProducts { upc } }".to_owned(),
            "query Named($n: Int! = 3) { topProducts(first: $n) { ...P reviews { body author { username } } } } \
             fragment P on Product { upc name price }"
                .to_owned(),
            format!(
                "{{ me {{ id }} {} }}",
                (1..15)
                    .map(|k| format!("p{k}: topProducts(first: {k}) {{ name reviews {{ id author {{ username }} }} }}"))
                    .collect::<String>()
            ),
        ];
        for operation in &operations {
            // The planner and the metrics registry (a series per operation name) keep a little on first use.
            let _ = super::super::prepare(&supergraph, operation, None, &settings);
            let (made, held) = retained(|| super::super::prepare(&supergraph, operation, None, &settings));
            let weight = prepared(&made.expect("prepares")) as isize;
            // Within 5% below (allocations the walk cannot see, such as a
            // hash map's growth slack) and a kilobyte or twice above.
            assert!(
                weight * 20 >= held * 19 && weight <= 2 * held + 1024,
                "weighed {weight} bytes, holds {held}: {operation}"
            );
        }
    }
}
