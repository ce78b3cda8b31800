//! An `_entities` answer with `null` for one representation: that entity's
//! fields from that subgraph are null, and non-null fields propagate the null
//! up to the nearest nullable parent, without a crash.
//!
//! "guestbook": `entries: [Entry!]` (nullable list), `pinned: Entry`, `motd: String!`;
//! `Entry { text author: User! }`. Entries: "Hello" by u1, "Boo" by u404 (unknown to
//! accounts, whose entity resolver answers null), "Bye" by u2. `pinned` is "Boo".

use async_graphql::{EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject};
use serde_json::{Value, json};

use super::fixtures::{Gateway, Journal, accounts, assert_data, entity_requests, keys, representations};
use crate::helpers::{TestSubgraph, spawn_subgraph};

mod guestbook {
    use super::*;

    #[derive(SimpleObject, Clone)]
    pub struct User {
        id: ID,
    }

    #[derive(SimpleObject, Clone)]
    pub struct Entry {
        text: &'static str,
        author: User,
    }

    fn entry(text: &'static str, author: &str) -> Entry {
        Entry { text, author: User { id: ID(author.into()) } }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn entries(&self) -> Option<Vec<Entry>> {
            Some(vec![entry("Hello", "u1"), entry("Boo", "u404"), entry("Bye", "u2")])
        }

        async fn pinned(&self) -> Option<Entry> {
            Some(entry("Boo", "u404"))
        }

        async fn motd(&self) -> &str {
            "Welcome"
        }

        #[graphql(entity)]
        async fn user(&self, id: ID) -> User {
            User { id }
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

struct Guestbook {
    accounts: TestSubgraph,
    gateway: Gateway,
    _guestbook: TestSubgraph,
}

impl Guestbook {
    async fn start() -> Self {
        let accounts = accounts::spawn(&Journal::default()).await;
        let guestbook = guestbook::spawn().await;
        let gateway = Gateway::start(&[("accounts", &accounts), ("guestbook", &guestbook)]).await;
        Self { accounts, gateway, _guestbook: guestbook }
    }

    async fn query(&self, query: &str) -> Value {
        self.gateway.query(query, json!({})).await
    }
}

#[tokio::test]
async fn a_null_entity_leaves_its_nullable_fields_null() {
    let guestbook = Guestbook::start().await;

    let response = guestbook.query("{ entries { text author { id name } } }").await;

    assert_data(
        &response,
        json!({ "entries": [
            { "text": "Hello", "author": { "id": "u1", "name": "Ada Lovelace" } },
            { "text": "Boo", "author": { "id": "u404", "name": null } },
            { "text": "Bye", "author": { "id": "u2", "name": "Alan Turing" } }
        ]}),
    );
    assert_eq!(keys(&response["data"]["entries"][1]["author"]), ["id", "name"]);
    let fetches = entity_requests(&guestbook.accounts);
    assert_eq!(fetches.len(), 1);
    assert_eq!(representations(&fetches[0]).as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn a_null_entity_nulls_the_nearest_nullable_parent_of_a_non_null_field() {
    let guestbook = Guestbook::start().await;

    let response = guestbook.query("{ motd entries { text author { username } } }").await;

    // username: String! → author: User! → Entry! → entries: [Entry!] (nullable).
    assert_eq!(response["data"], json!({ "motd": "Welcome", "entries": null }), "{response}");
    assert_eq!(keys(&response["data"]), ["motd", "entries"]);
    let errors = response["errors"].as_array().unwrap_or_else(|| panic!("an error explains the null: {response}"));
    assert_eq!(errors.len(), 1, "{response}");
    assert_eq!(errors[0]["path"], json!(["entries", 1, "author", "username"]), "{response}");
}

#[tokio::test]
async fn a_null_entity_under_a_nullable_root_field_nulls_only_that_field() {
    let guestbook = Guestbook::start().await;

    let response = guestbook.query("{ pinned { text author { id username } } motd }").await;

    assert_eq!(response["data"], json!({ "pinned": null, "motd": "Welcome" }), "{response}");
    assert_eq!(keys(&response["data"]), ["pinned", "motd"]);
    assert_eq!(response["errors"][0]["path"], json!(["pinned", "author", "username"]), "{response}");
}
