//! @shareable fields resolvable from two subgraphs, and @provides saving a fetch.

use async_graphql::{EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject};
use serde_json::json;

use super::fixtures::{Gateway, Journal, accounts, assert_data, entity_requests, keys, products, representations};
use crate::helpers::{TestSubgraph, spawn_subgraph};

/// "search" also resolves the shareable `Product.name` (same data as products).
mod search {
    use super::*;

    #[derive(SimpleObject, Clone)]
    pub struct Product {
        upc: String,
        #[graphql(shareable)]
        name: String,
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn search(&self, term: String) -> Vec<Product> {
            [("p1", "Table"), ("p2", "Couch"), ("p3", "Chair")]
                .into_iter()
                .filter(|(_, name)| name.to_lowercase().contains(&term.to_lowercase()))
                .map(|(upc, name)| Product { upc: upc.into(), name: name.into() })
                .collect()
        }

        #[graphql(entity)]
        async fn product(&self, upc: String) -> Product {
            Product { name: format!("unknown {upc}"), upc }
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

#[tokio::test]
async fn a_shareable_field_comes_from_the_subgraph_already_queried() {
    let journal = Journal::default();
    let products = products::spawn(&journal).await;
    let search = search::spawn().await;
    let gateway = Gateway::start(&[("products", &products), ("search", &search)]).await;

    let found = gateway.query("{ search(term: \"ch\") { upc name } }", json!({})).await;

    assert_data(&found, json!({ "search": [{ "upc": "p2", "name": "Couch" }, { "upc": "p3", "name": "Chair" }] }));
    assert!(products.requests().is_empty(), "name came from search: {:?}", products.requests());

    let top = gateway.query("{ topProducts(first: 2) { name price } }", json!({})).await;

    assert_data(
        &top,
        json!({ "topProducts": [{ "name": "Table", "price": 899 }, { "name": "Couch", "price": 1299 }] }),
    );
    assert_eq!(search.requests().len(), 1, "only the search query: {:?}", search.requests());
}

/// "comments" stores each comment's author username and provides it.
mod comments {
    use super::*;

    pub struct User {
        id: String,
        username: String,
    }

    #[Object]
    impl User {
        async fn id(&self) -> ID {
            ID(self.id.clone())
        }

        #[graphql(external)]
        async fn username(&self) -> &str {
            &self.username
        }
    }

    pub struct Comment {
        text: &'static str,
        author: (&'static str, &'static str),
    }

    #[Object]
    impl Comment {
        async fn text(&self) -> &str {
            self.text
        }

        #[graphql(provides = "username")]
        async fn author(&self) -> User {
            User { id: self.author.0.into(), username: self.author.1.into() }
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn comments(&self) -> Vec<Comment> {
            vec![
                Comment { text: "First!", author: ("u1", "ada") },
                Comment { text: "Nice.", author: ("u3", "grace") },
                Comment { text: "Agreed.", author: ("u1", "ada") },
            ]
        }

        #[graphql(entity)]
        async fn user(&self, id: ID) -> User {
            User { id: id.0, username: String::new() }
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

#[tokio::test]
async fn a_provided_field_needs_no_fetch_from_its_owner() {
    let journal = Journal::default();
    let accounts = accounts::spawn(&journal).await;
    let comments = comments::spawn().await;
    assert!(comments.sdl.contains(r#"@provides(fields: "username")"#), "{}", comments.sdl);
    let gateway = Gateway::start(&[("accounts", &accounts), ("comments", &comments)]).await;

    let response = gateway.query("{ comments { text author { username id } } }", json!({})).await;

    assert_data(
        &response,
        json!({ "comments": [
            { "text": "First!", "author": { "username": "ada", "id": "u1" } },
            { "text": "Nice.", "author": { "username": "grace", "id": "u3" } },
            { "text": "Agreed.", "author": { "username": "ada", "id": "u1" } }
        ]}),
    );
    assert_eq!(keys(&response["data"]["comments"][1]["author"]), ["username", "id"]);
    assert!(accounts.requests().is_empty(), "username was provided: {:?}", accounts.requests());
}

#[tokio::test]
async fn a_field_not_provided_is_still_fetched_from_its_owner() {
    let journal = Journal::default();
    let accounts = accounts::spawn(&journal).await;
    let comments = comments::spawn().await;
    let gateway = Gateway::start(&[("accounts", &accounts), ("comments", &comments)]).await;

    let response = gateway.query("{ comments { author { username name } } }", json!({})).await;

    assert_data(
        &response,
        json!({ "comments": [
            { "author": { "username": "ada", "name": "Ada Lovelace" } },
            { "author": { "username": "grace", "name": "Grace Hopper" } },
            { "author": { "username": "ada", "name": "Ada Lovelace" } }
        ]}),
    );
    let fetches = entity_requests(&accounts);
    assert_eq!(fetches.len(), 1, "{:?}", accounts.requests());
    assert_eq!(representations(&fetches[0]).as_array().map(Vec::len), Some(2), "ada once: {:?}", fetches);
}
