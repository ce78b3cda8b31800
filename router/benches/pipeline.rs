//! Hot-path micro-benchmarks: a plan-cache hit (hash + lookup, no parse, no
//! plan) and projecting a 1,000-entity response.
//!
//!   cargo bench -p router --bench pipeline
//!
//! The fixture supergraph is composed from `examples/bench_subgraphs.rs`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use router::config::{GraphqlSettings, SubgraphSettings};
use router::pipeline::prepare::PlanCache;
use router::pipeline::project::project;
use router::pipeline::request::GraphqlRequest;
use router::supergraph::Supergraph;
use serde_json::{Map, Value, json};

// The allocator the router binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const QUERY: &str = "{ topProducts(first: 1000) { upc name price reviews { body author { username } } } }";

fn fixture() -> (Supergraph, GraphqlSettings) {
    let sdl = include_str!("fixtures/supergraph.graphql");
    let subgraphs: SubgraphSettings =
        router::Settings::from_env(&mut kit::Env::from_pairs(Vec::<(String, String)>::new())).subgraphs;
    let settings = GraphqlSettings {
        introspection: true,
        graphiql: false,
        csrf_prevention: true,
        plan_cache_size: 100,
        limits: Default::default(),
    };
    (Supergraph::from_sdl(sdl, &subgraphs, 1).expect("fixture builds"), settings)
}

fn plan_cache_hit(c: &mut Criterion) {
    let (supergraph, settings) = fixture();
    let cache = PlanCache::new(100);
    let request = GraphqlRequest { query: Some(QUERY.into()), ..Default::default() };
    cache.prepare(&supergraph, &request, &settings).expect("plans");
    c.bench_function("plan cache hit", |b| {
        b.iter(|| cache.prepare(black_box(&supergraph), black_box(&request), &settings).expect("hit"))
    });
}

fn projection(c: &mut Criterion) {
    let (supergraph, settings) = fixture();
    let cache = PlanCache::new(10);
    let request = GraphqlRequest { query: Some(QUERY.into()), ..Default::default() };
    let prepared = cache.prepare(&supergraph, &request, &settings).expect("plans");
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
    let data = json!({ "topProducts": products });
    let variables = Map::new();
    c.bench_function("project 1000 entities", |b| {
        b.iter(|| {
            let mut errors = Vec::new();
            project(&supergraph.schema, &prepared, black_box(&data), &variables, &mut errors)
        })
    });
}

criterion_group!(benches, plan_cache_hit, projection);
criterion_main!(benches);
