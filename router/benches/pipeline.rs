//! Hot-path micro-benchmarks: a plan-cache hit (hash + lookup, no parse, no
//! plan), projecting a 1,000-entity response, and refusing abusive documents
//! (a fragment bomb, a flood of one repeated field) before validation.
//!
//!   cargo bench -p router --bench pipeline
//!
//! The fixture supergraph is composed from `examples/bench_subgraphs.rs`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use router::config::GraphqlSettings;
use router::pipeline::answer::Node;
use router::pipeline::prepare::{PlanCache, prepare};
use router::pipeline::project::project;
use router::pipeline::request::GraphqlRequest;
use router::supergraph::Supergraph;
use serde_json::{Map, Value, json};

// The allocator the router binary uses.
#[global_allocator]
static GLOBAL: platform::allocator::Allocator = platform::allocator::Allocator;

const QUERY: &str = "{ topProducts(first: 1000) { upc name price reviews { body author { username } } } }";

fn fixture() -> (Arc<Supergraph>, GraphqlSettings) {
    let sdl = include_str!("fixtures/supergraph.graphql");
    let settings = router::Settings::from_env(&mut platform::Env::from_pairs(Vec::<(String, String)>::new()));
    let supergraph = Supergraph::from_sdl(sdl, &settings.subgraphs, 1).expect("fixture builds");
    (Arc::new(supergraph), settings.graphql)
}

fn plan_cache_hit(c: &mut Criterion) {
    let (supergraph, settings) = fixture();
    let cache = PlanCache::new(&settings);
    let request = GraphqlRequest { query: Some(QUERY.into()), ..Default::default() };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(cache.prepare(&supergraph, &request, &settings)).expect("plans");
    c.bench_function("plan cache hit", |b| {
        b.iter(|| cache.cached(black_box(&supergraph), black_box(&request), &settings).expect("hit").expect("plan"))
    });
}

/// F1 spreads F0 twice, ..., F30 spreads F29 twice: 2^30 fields from 1.6 KB of text.
fn fragment_bomb() -> String {
    let mut query = String::from("{ topProducts { ...F30 } } fragment F0 on Product { upc }");
    for level in 1..=30 {
        let below = level - 1;
        query.push_str(&format!(" fragment F{level} on Product {{ ...F{below} ...F{below} }}"));
    }
    query
}

fn refusals(c: &mut Criterion) {
    let (supergraph, settings) = fixture();
    let repeated = format!("{{ topProducts {{ {} }} }}", "upc ".repeat(5000));
    for (name, query) in [("refuse fragment bomb", fragment_bomb()), ("refuse 5000 repeated fields", repeated)] {
        assert!(prepare(&supergraph, &query, None, &settings).is_err(), "{name}: refused");
        c.bench_function(name, |b| b.iter(|| prepare(black_box(&supergraph), black_box(&query), None, &settings)));
    }
    // Most of a refusal is the parse, which MAX_QUERY_TOKENS bounds.
    let repeated = format!("{{ topProducts {{ {} }} }}", "upc ".repeat(5000));
    c.bench_function("parse 5000 repeated fields", |b| {
        b.iter(|| hive_router_query_planner::utils::parsing::safe_parse_operation(black_box(&repeated)))
    });
    let cache = PlanCache::new(&settings);
    let request = GraphqlRequest { query: Some(fragment_bomb()), ..Default::default() };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    assert!(runtime.block_on(cache.prepare(&supergraph, &request, &settings)).is_err());
    c.bench_function("refuse fragment bomb again (cached refusal)", |b| {
        b.iter(|| cache.cached(black_box(&supergraph), black_box(&request), &settings).expect("cached"))
    });
}

fn projection(c: &mut Criterion) {
    let (supergraph, settings) = fixture();
    let prepared = prepare(&supergraph, QUERY, None, &settings).expect("plans");
    let products: Vec<Value> = (0..1000)
        .map(|i| {
            json!({
                "upc": format!("upc-{i}"), "name": format!("Product {i}"), "price": i, "__typename": "Product",
                "reviews": [
                    { "body": "good", "author": { "__typename": "User", "id": "u1", "username": "ada" } },
                    { "body": "bad", "author": { "__typename": "User", "id": "u2", "username": "bob" } }
                ]
            })
        })
        .collect();
    let data = Node::from(json!({ "topProducts": products }));
    let variables = Map::new();
    c.bench_function("project 1000 entities", |b| {
        b.iter(|| {
            let (mut errors, mut out) = (Vec::new(), Vec::new());
            project(&supergraph.schema, &prepared, black_box(&data), &variables, &mut errors, &mut out);
            out
        })
    });
}

criterion_group!(benches, plan_cache_hit, projection, refusals);
criterion_main!(benches);
