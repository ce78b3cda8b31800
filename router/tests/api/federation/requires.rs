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
