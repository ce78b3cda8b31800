//! @override moves a field to another subgraph; @inaccessible hides fields and
//! types from clients but not from the query planner.
//!
//! "catalog": `Product @key(upc) { upc name cost @inaccessible deliveryDays }`, `catalog`,
//! `audit: Audit @inaccessible`. Its `deliveryDays` is stale (always 99).
//! "shipping": `deliveryDays @override(from: "catalog")` (p1 → 2, p2 → 5) and
//! `insurance @requires(fields: "cost")` (cost / 10).
//! Products: p1 Table cost 400, p2 Couch cost 900.

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};
use serde_json::{Value, json};

use super::fixtures::{Gateway, assert_data, entity_requests, error_codes, keys, representations};
use crate::helpers::{TestSubgraph, spawn_subgraph};

mod catalog {
    use super::*;

    #[derive(SimpleObject, Clone)]
    pub struct Product {
        upc: String,
        name: String,
        #[graphql(inaccessible)]
        cost: i32,
        delivery_days: i32,
    }

    #[derive(SimpleObject)]
    #[graphql(inaccessible)]
    pub struct Audit {
        id: String,
    }

    fn products() -> Vec<Product> {
        [("p1", "Table", 400), ("p2", "Couch", 900)]
            .into_iter()
            .map(|(upc, name, cost)| Product { upc: upc.into(), name: name.into(), cost, delivery_days: 99 })
            .collect()
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn catalog(&self) -> Vec<Product> {
            products()
        }

        #[graphql(inaccessible)]
        async fn audit(&self) -> Audit {
            Audit { id: "secret".into() }
        }

        #[graphql(entity)]
        async fn product(&self, upc: String) -> Option<Product> {
            products().into_iter().find(|p| p.upc == upc)
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

mod shipping {
    use super::*;

    pub struct Product {
        upc: String,
        cost: Option<i32>,
    }

    #[Object]
    impl Product {
        async fn upc(&self) -> &str {
            &self.upc
        }

        #[graphql(override_from = "catalog")]
        async fn delivery_days(&self) -> i32 {
            if self.upc == "p1" { 2 } else { 5 }
        }

        #[graphql(external)]
        async fn cost(&self) -> i32 {
            self.cost.unwrap_or_default()
        }

        #[graphql(requires = "cost")]
        async fn insurance(&self) -> async_graphql::Result<i32> {
            Ok(self.cost.ok_or("cost is required")? / 10)
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        #[graphql(entity)]
        async fn product(&self, #[graphql(key)] upc: String, cost: Option<i32>) -> Product {
            Product { upc, cost }
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

struct Shop {
    catalog: TestSubgraph,
    shipping: TestSubgraph,
    gateway: Gateway,
}

impl Shop {
    async fn start() -> Self {
        let catalog = catalog::spawn().await;
        let shipping = shipping::spawn().await;
        assert!(shipping.sdl.contains(r#"@override(from: "catalog")"#), "{}", shipping.sdl);
        let gateway = Gateway::start(&[("catalog", &catalog), ("shipping", &shipping)]).await;
        Self { catalog, shipping, gateway }
    }

    async fn query(&self, query: &str) -> Value {
        self.gateway.query(query, json!({})).await
    }

    fn requests(&self) -> usize {
        self.catalog.requests().len() + self.shipping.requests().len()
    }
}

#[tokio::test]
async fn an_overridden_field_is_fetched_from_the_overriding_subgraph() {
    let shop = Shop::start().await;

    let response = shop.query("{ catalog { deliveryDays name } }").await;

    assert_data(
        &response,
        json!({ "catalog": [{ "deliveryDays": 2, "name": "Table" }, { "deliveryDays": 5, "name": "Couch" }] }),
    );
    assert_eq!(keys(&response["data"]["catalog"][0]), ["deliveryDays", "name"]);
    let catalog_queries: Vec<String> =
        shop.catalog.requests().iter().map(|r| r["query"].as_str().unwrap_or_default().to_owned()).collect();
    assert!(catalog_queries.iter().all(|q| !q.contains("deliveryDays")), "{catalog_queries:?}");
    let fetches = entity_requests(&shop.shipping);
    assert_eq!(fetches.len(), 1);
    assert_eq!(
        representations(&fetches[0]),
        json!([{ "__typename": "Product", "upc": "p1" }, { "__typename": "Product", "upc": "p2" }])
    );
}

#[tokio::test]
async fn an_inaccessible_field_fails_validation() {
    let shop = Shop::start().await;

    let response = shop.query("{ catalog { name cost } }").await;

    assert_eq!(error_codes(&response), [json!("GRAPHQL_VALIDATION_FAILED")], "{response}");
    assert!(response.get("data").is_none(), "{response}");
    assert_eq!(shop.requests(), 0);
}

#[tokio::test]
async fn an_inaccessible_root_field_and_type_fail_validation() {
    let shop = Shop::start().await;

    let field = shop.query("{ audit { id } }").await;
    let fragment = shop.query("{ catalog { name ... on Audit { id } } }").await;

    for response in [&field, &fragment] {
        assert_eq!(error_codes(response), [json!("GRAPHQL_VALIDATION_FAILED")], "{response}");
        assert!(response.get("data").is_none(), "{response}");
    }
    assert_eq!(shop.requests(), 0);
}

#[tokio::test]
async fn an_inaccessible_field_still_feeds_requires() {
    let shop = Shop::start().await;

    let response = shop.query("{ catalog { name insurance } }").await;

    assert_data(
        &response,
        json!({ "catalog": [{ "name": "Table", "insurance": 40 }, { "name": "Couch", "insurance": 90 }] }),
    );
    assert_eq!(keys(&response["data"]["catalog"][1]), ["name", "insurance"], "cost stays internal");
    let fetches = entity_requests(&shop.shipping);
    assert_eq!(fetches.len(), 1);
    assert_eq!(
        representations(&fetches[0]),
        json!([
            { "__typename": "Product", "upc": "p1", "cost": 400 },
            { "__typename": "Product", "upc": "p2", "cost": 900 }
        ])
    );
}

#[tokio::test]
async fn inaccessible_elements_are_absent_from_introspection() {
    let shop = Shop::start().await;

    let response = shop
        .query(
            "{ product: __type(name: \"Product\") { fields { name } } audit: __type(name: \"Audit\") { name }
               query: __type(name: \"Query\") { fields { name } } }",
        )
        .await;

    assert_data(
        &response,
        json!({
            "product": { "fields": [
                { "name": "upc" }, { "name": "name" }, { "name": "deliveryDays" }, { "name": "insurance" }
            ]},
            "audit": null,
            "query": { "fields": [{ "name": "catalog" }] }
        }),
    );
    assert_eq!(shop.requests(), 0, "introspection is answered by the router");
}
