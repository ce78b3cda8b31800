//! Enums and input types that differ between subgraphs. Composition keeps the
//! union of an output-only enum's values, and the intersection of an
//! input-only enum's values and of an input type's (optional) fields.
//!
//! "shelf": `enum Genre { FICTION SCIENCE HISTORY }` (output), `enum Sort { ASC DESC RANDOM }`
//! (input), `input BookFilter { maxPages: Int, language: String }`; `shelf(filter, sort): [Book!]!`.
//! "warehouse": `enum Genre { FICTION POETRY }` (output), `enum Sort { ASC DESC }` (input),
//! `input BookFilter { maxPages: Int, minCopies: Int }`; `bins(filter, sort): [Bin!]!`.

use async_graphql::{EmptyMutation, EmptySubscription, Enum, InputObject, Object, Schema, SimpleObject};
use serde_json::{Value, json};

use super::fixtures::{Gateway, assert_data, error_codes, keys};
use crate::helpers::{TestSubgraph, spawn_subgraph};

mod shelf {
    use super::*;

    #[derive(Enum, Clone, Copy, PartialEq, Eq)]
    pub enum Genre {
        Fiction,
        Science,
        History,
    }

    #[derive(Enum, Clone, Copy, PartialEq, Eq)]
    pub enum Sort {
        Asc,
        Desc,
        Random,
    }

    #[derive(InputObject)]
    pub struct BookFilter {
        max_pages: Option<i32>,
        language: Option<String>,
    }

    #[derive(SimpleObject, Clone)]
    pub struct Book {
        title: &'static str,
        genre: Genre,
        pages: i32,
    }

    pub struct Query;

    #[Object]
    impl Query {
        /// By title, ascending unless sorted DESC.
        async fn shelf(&self, filter: Option<BookFilter>, sort: Option<Sort>) -> Vec<Book> {
            let mut books: Vec<Book> = [
                Book { title: "Cosmos", genre: Genre::Science, pages: 365 },
                Book { title: "Dune", genre: Genre::Fiction, pages: 412 },
                Book { title: "SPQR", genre: Genre::History, pages: 608 },
            ]
            .into_iter()
            .filter(|b| filter.as_ref().and_then(|f| f.max_pages).is_none_or(|max| b.pages <= max))
            .filter(|_| filter.as_ref().and_then(|f| f.language.as_deref()).is_none_or(|l| l == "en"))
            .collect();
            if sort == Some(Sort::Desc) {
                books.reverse();
            }
            books
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

mod warehouse {
    use super::*;

    #[derive(Enum, Clone, Copy, PartialEq, Eq)]
    pub enum Genre {
        Fiction,
        Poetry,
    }

    #[derive(Enum, Clone, Copy, PartialEq, Eq)]
    pub enum Sort {
        Asc,
        Desc,
    }

    #[derive(InputObject)]
    pub struct BookFilter {
        max_pages: Option<i32>,
        min_copies: Option<i32>,
    }

    #[derive(SimpleObject, Clone)]
    pub struct Bin {
        label: &'static str,
        genre: Genre,
        copies: i32,
        pages: i32,
    }

    pub struct Query;

    #[Object]
    impl Query {
        /// By label, ascending unless sorted DESC.
        async fn bins(&self, filter: Option<BookFilter>, sort: Option<Sort>) -> Vec<Bin> {
            let mut bins: Vec<Bin> = [
                Bin { label: "A", genre: Genre::Fiction, copies: 3, pages: 412 },
                Bin { label: "B", genre: Genre::Poetry, copies: 7, pages: 96 },
                Bin { label: "C", genre: Genre::Fiction, copies: 1, pages: 1200 },
            ]
            .into_iter()
            .filter(|b| filter.as_ref().and_then(|f| f.max_pages).is_none_or(|max| b.pages <= max))
            .filter(|b| filter.as_ref().and_then(|f| f.min_copies).is_none_or(|min| b.copies >= min))
            .collect();
            if sort == Some(Sort::Desc) {
                bins.reverse();
            }
            bins
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

struct Books {
    shelf: TestSubgraph,
    warehouse: TestSubgraph,
    gateway: Gateway,
}

impl Books {
    async fn start() -> Self {
        let shelf = shelf::spawn().await;
        let warehouse = warehouse::spawn().await;
        let gateway = Gateway::start(&[("shelf", &shelf), ("warehouse", &warehouse)]).await;
        Self { shelf, warehouse, gateway }
    }

    async fn query(&self, query: &str, variables: Value) -> Value {
        self.gateway.query(query, variables).await
    }
}

#[tokio::test]
async fn output_enum_values_from_either_subgraph_come_back() {
    let books = Books::start().await;

    let response = books.query("{ shelf { title genre } bins { genre label } }", json!({})).await;

    assert_data(
        &response,
        json!({
            "shelf": [
                { "title": "Cosmos", "genre": "SCIENCE" },
                { "title": "Dune", "genre": "FICTION" },
                { "title": "SPQR", "genre": "HISTORY" }
            ],
            "bins": [
                { "genre": "FICTION", "label": "A" },
                { "genre": "POETRY", "label": "B" },
                { "genre": "FICTION", "label": "C" }
            ]
        }),
    );
    assert_eq!(keys(&response["data"]), ["shelf", "bins"]);
    assert_eq!(keys(&response["data"]["bins"][0]), ["genre", "label"]);
}

#[tokio::test]
async fn shared_input_fields_and_enum_values_reach_both_subgraphs() {
    let books = Books::start().await;

    let response = books
        .query(
            "query($filter: BookFilter, $sort: Sort) {
               shelf(filter: $filter, sort: $sort) { title }
               bins(filter: { maxPages: 500 }, sort: DESC) { label }
             }",
            json!({ "filter": { "maxPages": 500 }, "sort": "DESC" }),
        )
        .await;

    assert_data(
        &response,
        json!({ "shelf": [{ "title": "Dune" }, { "title": "Cosmos" }], "bins": [{ "label": "B" }, { "label": "A" }] }),
    );
    assert_eq!(books.shelf.requests().len(), 1);
    assert_eq!(books.warehouse.requests().len(), 1);
}

#[tokio::test]
async fn input_fields_and_enum_values_of_only_one_subgraph_are_not_in_the_supergraph() {
    let books = Books::start().await;

    let language = books.query("{ shelf(filter: { language: \"en\" }) { title } }", json!({})).await;
    let copies = books.query("{ bins(filter: { minCopies: 2 }) { label } }", json!({})).await;
    let random = books.query("{ shelf(sort: RANDOM) { title } }", json!({})).await;

    for response in [&language, &copies, &random] {
        assert_eq!(error_codes(response), [json!("GRAPHQL_VALIDATION_FAILED")], "{response}");
        assert!(response.get("data").is_none(), "{response}");
    }
    assert!(books.shelf.requests().is_empty());
    assert!(books.warehouse.requests().is_empty());
}

#[tokio::test]
async fn introspection_shows_the_composed_enums_and_input_type() {
    let books = Books::start().await;

    let response = books
        .query(
            "{ genre: __type(name: \"Genre\") { enumValues { name } }
               sort: __type(name: \"Sort\") { enumValues { name } }
               filter: __type(name: \"BookFilter\") { inputFields { name } } }",
            json!({}),
        )
        .await;

    let names = |value: &Value| -> Vec<String> {
        let mut names: Vec<String> =
            value.as_array().into_iter().flatten().filter_map(|v| v["name"].as_str().map(str::to_owned)).collect();
        names.sort();
        names
    };
    assert_eq!(response.get("errors"), None, "{response}");
    assert_eq!(names(&response["data"]["genre"]["enumValues"]), ["FICTION", "HISTORY", "POETRY", "SCIENCE"], "union");
    assert_eq!(names(&response["data"]["sort"]["enumValues"]), ["ASC", "DESC"], "intersection");
    assert_eq!(names(&response["data"]["filter"]["inputFields"]), ["maxPages"], "intersection");
}
