//! @external + @requires: inventory computes shipping from products' price and weight.

use serde_json::json;

use super::fixtures::{Store, assert_data, entity_requests, keys, representations};

#[tokio::test]
async fn a_requires_field_gets_the_required_fields_from_their_owner() {
    let store = Store::start().await;

    let response = store.query("{ topProducts { upc shippingEstimate } }", json!({})).await;

    // price > 1000 ships free, otherwise weight / 2.
    assert_data(
        &response,
        json!({ "topProducts": [
            { "upc": "p1", "shippingEstimate": 50 },
            { "upc": "p2", "shippingEstimate": 0 },
            { "upc": "p3", "shippingEstimate": 25 }
        ]}),
    );
    assert_eq!(keys(&response["data"]["topProducts"][0]), ["upc", "shippingEstimate"], "required fields stay internal");
    let fetches = entity_requests(&store.inventory);
    assert_eq!(fetches.len(), 1, "{}", store.traffic());
    assert_eq!(
        representations(&fetches[0]),
        json!([
            { "__typename": "Product", "upc": "p1", "price": 899, "weight": 100 },
            { "__typename": "Product", "upc": "p2", "price": 1299, "weight": 1000 },
            { "__typename": "Product", "upc": "p3", "price": 54, "weight": 50 }
        ])
    );
}

#[tokio::test]
async fn required_fields_also_selected_by_the_client_come_back_in_its_order() {
    let store = Store::start().await;

    let response = store.query("{ product(upc: \"p1\") { weight shippingEstimate price inStock } }", json!({})).await;

    assert_data(
        &response,
        json!({ "product": { "weight": 100, "shippingEstimate": 50, "price": 899, "inStock": true } }),
    );
    assert_eq!(keys(&response["data"]["product"]), ["weight", "shippingEstimate", "price", "inStock"]);
}

#[tokio::test]
async fn a_requires_field_with_an_argument_gets_the_argument_and_the_required_fields() {
    let store = Store::start().await;

    let from_variable = store
        .query(
            "query($zone: String!) { topProducts { name shippingEstimateTo(zone: $zone) } }",
            json!({ "zone": "EU" }),
        )
        .await;
    let from_literal = store.query("{ topProducts { name shippingEstimateTo(zone: \"US\") } }", json!({})).await;

    // weight / 10 + 5 to the EU, + 10 to the US; weights 100, 1000, 50.
    assert_data(
        &from_variable,
        json!({ "topProducts": [
            { "name": "Table", "shippingEstimateTo": 15 },
            { "name": "Couch", "shippingEstimateTo": 105 },
            { "name": "Chair", "shippingEstimateTo": 10 }
        ]}),
    );
    assert_data(
        &from_literal,
        json!({ "topProducts": [
            { "name": "Table", "shippingEstimateTo": 20 },
            { "name": "Couch", "shippingEstimateTo": 110 },
            { "name": "Chair", "shippingEstimateTo": 15 }
        ]}),
    );
    let fetches = entity_requests(&store.inventory);
    assert_eq!(fetches.len(), 2, "{}", store.traffic());
    assert_eq!(representations(&fetches[0])[1], json!({ "__typename": "Product", "upc": "p2", "weight": 1000 }));
}

#[tokio::test]
async fn requires_works_at_the_end_of_an_entity_chain() {
    let store = Store::start().await;

    let response = store.query("{ reviews { id product { shippingEstimate } } }", json!({})).await;

    assert_data(
        &response,
        json!({ "reviews": [
            { "id": "r1", "product": { "shippingEstimate": 50 } },
            { "id": "r2", "product": { "shippingEstimate": 50 } },
            { "id": "r3", "product": { "shippingEstimate": 0 } },
            { "id": "r4", "product": { "shippingEstimate": 25 } }
        ]}),
    );
    let traffic = store.traffic();
    let prices = entity_requests(&store.products);
    assert_eq!(prices.len(), 1, "{traffic}");
    assert_eq!(representations(&prices[0]).as_array().map(Vec::len), Some(3), "p1 once: {traffic}");
    let estimates = entity_requests(&store.inventory);
    assert_eq!(estimates.len(), 1, "{traffic}");
    assert_eq!(
        representations(&estimates[0]),
        json!([
            { "__typename": "Product", "upc": "p1", "price": 899, "weight": 100 },
            { "__typename": "Product", "upc": "p2", "price": 1299, "weight": 1000 },
            { "__typename": "Product", "upc": "p3", "price": 54, "weight": 50 }
        ]),
        "{traffic}"
    );
}

/// `@requires` of one field with two arguments: "pricing" has
/// `Product @key(upc) { upc price(withDiscount: Boolean!): Int }`; "deals" has
/// `isExpensive @requires(fields: "price(withDiscount: false)")` and
/// `reducedPrice @requires(fields: "price(withDiscount: true)")`. The planner
/// fetches both prices at once, one of them aliased (`_internal_qp_alias_0`),
/// and writes `price: _internal_qp_alias_0` in that representation.
/// Prices (upc, full, discounted): p1 100 80, p2 1200 1000.
mod pricing {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    use crate::helpers::{TestSubgraph, spawn_subgraph};

    pub struct Product {
        upc: String,
    }

    #[Object]
    impl Product {
        async fn upc(&self) -> &str {
            &self.upc
        }

        async fn price(&self, with_discount: bool) -> Option<i32> {
            match (self.upc.as_str(), with_discount) {
                ("p1", false) => Some(100),
                ("p1", true) => Some(80),
                ("p2", false) => Some(1200),
                ("p2", true) => Some(1000),
                _ => None,
            }
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn products(&self) -> Vec<Product> {
            ["p1", "p2"].map(|upc| Product { upc: upc.into() }).into()
        }

        #[graphql(entity)]
        async fn product(&self, upc: String) -> Product {
            Product { upc }
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

mod deals {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    use crate::helpers::{TestSubgraph, spawn_subgraph};

    /// `price` is whichever price the representation carried.
    pub struct Product {
        upc: String,
        price: Option<i32>,
    }

    #[Object]
    impl Product {
        async fn upc(&self) -> &str {
            &self.upc
        }

        #[graphql(external)]
        async fn price(&self, #[graphql(name = "withDiscount")] _with_discount: bool) -> Option<i32> {
            self.price
        }

        /// Over 1000 before the discount.
        #[graphql(requires = "price(withDiscount: false)")]
        async fn is_expensive(&self) -> Option<bool> {
            self.price.map(|price| price > 1000)
        }

        #[graphql(requires = "price(withDiscount: true)")]
        async fn reduced_price(&self) -> Option<i32> {
            self.price
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        #[graphql(entity)]
        async fn product(&self, #[graphql(key)] upc: String, price: Option<i32>) -> Product {
            Product { upc, price }
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

#[tokio::test]
async fn a_required_field_fetched_under_an_alias_is_sent_under_its_name() {
    let pricing = pricing::spawn().await;
    let deals = deals::spawn().await;
    let gateway = super::fixtures::Gateway::start(&[("pricing", &pricing), ("deals", &deals)]).await;

    let response = gateway.query("{ products { upc isExpensive reducedPrice } }", json!({})).await;

    assert_data(
        &response,
        json!({ "products": [
            { "upc": "p1", "isExpensive": false, "reducedPrice": 80 },
            { "upc": "p2", "isExpensive": true, "reducedPrice": 1000 }
        ]}),
    );
    let asked = pricing.requests();
    assert!(asked.iter().any(|r| r["query"].as_str().is_some_and(|q| q.contains("_internal_qp_alias"))), "{asked:?}");
    let fetches = entity_requests(&deals);
    assert_eq!(fetches.len(), 1, "one batched request: {fetches:?}");
    assert!(fetches[0]["query"].as_str().is_some_and(|q| q.contains("_e1")), "a BatchFetch: {fetches:?}");
    let mut sent: Vec<(String, i64)> = super::fixtures::all_representations(&fetches[0])
        .iter()
        .map(|r| {
            assert_eq!(r["__typename"], "Product", "{r}");
            (r["upc"].as_str().unwrap_or_default().to_owned(), r["price"].as_i64().unwrap_or_default())
        })
        .collect();
    sent.sort();
    let expected = [("p1", 80), ("p1", 100), ("p2", 1000), ("p2", 1200)].map(|(upc, price)| (upc.to_owned(), price));
    assert_eq!(sent, expected, "each representation carries the price its field requires");
}
