//! Client-side features through federation: aliases, @skip/@include with
//! variables, fragments at several levels, variables in entity field arguments.

use serde_json::json;

use super::fixtures::{Store, assert_data, entity_requests, keys};

#[tokio::test]
async fn aliases_including_one_field_twice_with_different_arguments() {
    let store = Store::start().await;

    let response = store
        .query(
            "{
               cheapest: topProducts(first: 1) { label: name }
               all: topProducts(first: 2) {
                 upc
                 firstReview: reviews(first: 1) { text: body }
                 allReviews: reviews { body }
                 eu: shippingEstimateTo(zone: \"EU\")
                 us: shippingEstimateTo(zone: \"US\")
               }
             }",
            json!({}),
        )
        .await;

    assert_data(
        &response,
        json!({
            "cheapest": [{ "label": "Table" }],
            "all": [
                {
                    "upc": "p1",
                    "firstReview": [{ "text": "Love it!" }],
                    "allReviews": [{ "body": "Love it!" }, { "body": "Too expensive." }],
                    "eu": 15,
                    "us": 20
                },
                {
                    "upc": "p2",
                    "firstReview": [{ "text": "Could be better." }],
                    "allReviews": [{ "body": "Could be better." }],
                    "eu": 105,
                    "us": 110
                }
            ]
        }),
    );
    assert_eq!(keys(&response["data"]), ["cheapest", "all"]);
    assert_eq!(keys(&response["data"]["all"][0]), ["upc", "firstReview", "allReviews", "eu", "us"]);
}

#[tokio::test]
async fn skip_and_include_follow_their_variables() {
    let store = Store::start().await;
    let query = "query($withReviews: Boolean!, $hidePrice: Boolean!) {
                   topProducts(first: 2) { name price @skip(if: $hidePrice) reviews @include(if: $withReviews) { body } }
                 }";

    let shown = store.query(query, json!({ "withReviews": true, "hidePrice": false })).await;
    let reviews_requests = store.reviews.requests().len();
    let hidden = store.query(query, json!({ "withReviews": false, "hidePrice": true })).await;

    assert_data(
        &shown,
        json!({ "topProducts": [
            { "name": "Table", "price": 899, "reviews": [{ "body": "Love it!" }, { "body": "Too expensive." }] },
            { "name": "Couch", "price": 1299, "reviews": [{ "body": "Could be better." }] }
        ]}),
    );
    assert_eq!(keys(&shown["data"]["topProducts"][0]), ["name", "price", "reviews"]);
    assert_data(&hidden, json!({ "topProducts": [{ "name": "Table" }, { "name": "Couch" }] }));
    assert_eq!(reviews_requests, 1);
    assert_eq!(store.reviews.requests().len(), 1, "no reviews fetch when excluded: {}", store.traffic());
}

#[tokio::test]
async fn skip_and_include_on_fragments_and_entity_fields() {
    let store = Store::start().await;
    let query = "query($on: Boolean!) {
                   me {
                     name
                     ... @include(if: $on) { reviews { id } }
                     ...Handle @skip(if: $on)
                     id @include(if: $on) @skip(if: false)
                   }
                 }
                 fragment Handle on User { username }";

    let on = store.query(query, json!({ "on": true })).await;
    let off = store.query(query, json!({ "on": false })).await;

    assert_data(
        &on,
        json!({ "me": { "name": "Ada Lovelace", "reviews": [{ "id": "r1" }, { "id": "r3" }], "id": "u1" } }),
    );
    assert_eq!(keys(&on["data"]["me"]), ["name", "reviews", "id"]);
    assert_data(&off, json!({ "me": { "name": "Ada Lovelace", "username": "ada" } }));
    assert_eq!(entity_requests(&store.reviews).len(), 1, "{}", store.traffic());
}

#[tokio::test]
async fn fragments_spread_at_several_levels() {
    let store = Store::start().await;

    let response = store
        .query(
            "query Cards { topProducts(first: 2) { ...ProductCard } }
             fragment ProductCard on Product { name ...Stock reviews { ...ReviewLine } ... { price } }
             fragment Stock on Product { inStock }
             fragment ReviewLine on Review { body author { ...Who } }
             fragment Who on User { name ... on User { username } }",
            json!({}),
        )
        .await;

    assert_data(
        &response,
        json!({ "topProducts": [
            {
                "name": "Table",
                "inStock": true,
                "reviews": [
                    { "body": "Love it!", "author": { "name": "Ada Lovelace", "username": "ada" } },
                    { "body": "Too expensive.", "author": { "name": "Alan Turing", "username": "alan" } }
                ],
                "price": 899
            },
            {
                "name": "Couch",
                "inStock": false,
                "reviews": [{ "body": "Could be better.", "author": { "name": "Ada Lovelace", "username": "ada" } }],
                "price": 1299
            }
        ]}),
    );
    assert_eq!(keys(&response["data"]["topProducts"][0]), ["name", "inStock", "reviews", "price"]);
    assert_eq!(keys(&response["data"]["topProducts"][0]["reviews"][0]["author"]), ["name", "username"]);
}

#[tokio::test]
async fn variables_reach_entity_field_arguments() {
    let store = Store::start().await;

    let response = store
        .query(
            "query($n: Int, $zone: String!) { topProducts { name reviews(first: $n) { body } shippingEstimateTo(zone: $zone) } }",
            json!({ "n": 1, "zone": "US" }),
        )
        .await;

    assert_data(
        &response,
        json!({ "topProducts": [
            { "name": "Table", "reviews": [{ "body": "Love it!" }], "shippingEstimateTo": 20 },
            { "name": "Couch", "reviews": [{ "body": "Could be better." }], "shippingEstimateTo": 110 },
            { "name": "Chair", "reviews": [{ "body": "Prefer something else." }], "shippingEstimateTo": 15 }
        ]}),
    );
    let fetches = entity_requests(&store.reviews);
    assert_eq!(fetches.len(), 1);
    assert_eq!(fetches[0]["variables"]["n"], json!(1), "the variable is passed on: {}", fetches[0]);
}

#[tokio::test]
async fn typename_with_aliases_at_several_levels() {
    let store = Store::start().await;

    let response = store
        .query(
            "{ __typename topProducts(first: 1) { kind: __typename reviews { __typename author { t: __typename } } } }",
            json!({}),
        )
        .await;

    assert_data(
        &response,
        json!({
            "__typename": "Query",
            "topProducts": [{
                "kind": "Product",
                "reviews": [
                    { "__typename": "Review", "author": { "t": "User" } },
                    { "__typename": "Review", "author": { "t": "User" } }
                ]
            }]
        }),
    );
}
