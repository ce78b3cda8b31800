//! Mutations across subgraphs: root fields run one after the other, each with
//! its whole selection resolved before the next starts.

use serde_json::json;

use super::fixtures::{Store, assert_data, entity_requests, keys, representations};

#[tokio::test]
async fn root_mutations_of_two_subgraphs_run_in_order() {
    let store = Store::start().await;

    let response = store
        .query(
            "mutation {
               created: createUser(username: \"linus\", name: \"Linus\") { id }
               review: addReview(authorId: \"u4\", upc: \"p3\", body: \"Sturdy.\") { id product { upc } }
               renamed: renameUser(id: \"u4\", name: \"Linus T.\") { name }
             }",
            json!({}),
        )
        .await;

    assert_data(
        &response,
        json!({
            "created": { "id": "u4" },
            "review": { "id": "r5", "product": { "upc": "p3" } },
            "renamed": { "name": "Linus T." }
        }),
    );
    assert_eq!(keys(&response["data"]), ["created", "review", "renamed"]);
    assert_eq!(
        store.journal.entries(),
        ["accounts: createUser(linus)", "reviews: addReview(u4)", "accounts: renameUser(u4)"],
        "{}",
        store.traffic()
    );
    let counts: Vec<usize> = [&store.accounts, &store.reviews].iter().map(|s| s.requests().len()).collect();
    assert_eq!(counts, [2, 1], "two accounts mutations, one reviews mutation: {}", store.traffic());
}

#[tokio::test]

async fn a_mutation_fields_entity_fetches_finish_before_the_next_field_runs() {
    let store = Store::start().await;

    let response = store
        .query(
            "mutation {
               created: createUser(username: \"linus\", name: \"Linus\") { id name }
               review: addReview(authorId: \"u4\", upc: \"p3\", body: \"Sturdy.\") { id body author { name } }
               renamed: renameUser(id: \"u4\", name: \"Linus T.\") { id name }
             }",
            json!({}),
        )
        .await;

    assert_data(
        &response,
        json!({
            "created": { "id": "u4", "name": "Linus" },
            "review": { "id": "r5", "body": "Sturdy.", "author": { "name": "Linus" } },
            "renamed": { "id": "u4", "name": "Linus T." }
        }),
    );
    assert_eq!(keys(&response["data"]), ["created", "review", "renamed"]);
    assert_eq!(
        store.journal.entries(),
        ["accounts: createUser(linus)", "reviews: addReview(u4)", "accounts: User(id: u4)", "accounts: renameUser(u4)"],
        "each field's selection completes before the next field runs: {}",
        store.traffic()
    );
}

#[tokio::test]
async fn a_mutation_result_is_completed_with_entity_fetches() {
    let store = Store::start().await;

    let response = store
        .query(
            "mutation($body: String!) {
               addReview(authorId: \"u2\", upc: \"p1\", body: $body) { body author { name } product { name shippingEstimate } }
             }",
            json!({ "body": "Changed my mind." }),
        )
        .await;

    assert_data(
        &response,
        json!({ "addReview": {
            "body": "Changed my mind.",
            "author": { "name": "Alan Turing" },
            "product": { "name": "Table", "shippingEstimate": 50 }
        }}),
    );
    assert_eq!(keys(&response["data"]["addReview"]), ["body", "author", "product"]);
    let users = entity_requests(&store.accounts);
    assert_eq!(users.len(), 1);
    assert_eq!(representations(&users[0]), json!([{ "__typename": "User", "id": "u2" }]));
    assert_eq!(entity_requests(&store.inventory).len(), 1);
    let reviews = store.query("{ review(id: \"r5\") { body } }", json!({})).await;
    assert_data(&reviews, json!({ "review": { "body": "Changed my mind." } }));
}
