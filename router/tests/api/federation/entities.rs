//! @key: entities resolved across subgraphs, several keys on one type, compound
//! and nested keys, and chains of sequential entity fetches.

use async_graphql::{EmptyMutation, EmptySubscription, ID, InputObject, Object, Schema, SimpleObject};
use serde_json::{Value, json};

use super::fixtures::{
    Gateway, Journal, Store, accounts, all_representations, assert_data, entity_requests, keys, representations,
};
use crate::helpers::{TestSubgraph, spawn_subgraph};

#[tokio::test]
async fn an_entity_gets_its_fields_from_another_subgraph() {
    let store = Store::start().await;

    let response = store.query("{ me { id name reviews { body } } }", json!({})).await;

    assert_data(
        &response,
        json!({ "me": {
            "id": "u1",
            "name": "Ada Lovelace",
            "reviews": [{ "body": "Love it!" }, { "body": "Could be better." }]
        }}),
    );
    assert_eq!(keys(&response["data"]["me"]), ["id", "name", "reviews"]);
    let fetches = entity_requests(&store.reviews);
    assert_eq!(fetches.len(), 1, "{}", store.traffic());
    assert_eq!(representations(&fetches[0]), json!([{ "__typename": "User", "id": "u1" }]));
}

#[tokio::test]
async fn three_sequential_fetches_send_one_deduplicated_entities_request_each() {
    let store = Store::start().await;

    let response = store.query("{ topProducts { name reviews { body author { name } } } }", json!({})).await;

    assert_data(
        &response,
        json!({ "topProducts": [
            { "name": "Table", "reviews": [
                { "body": "Love it!", "author": { "name": "Ada Lovelace" } },
                { "body": "Too expensive.", "author": { "name": "Alan Turing" } }
            ]},
            { "name": "Couch", "reviews": [{ "body": "Could be better.", "author": { "name": "Ada Lovelace" } }] },
            { "name": "Chair", "reviews": [{ "body": "Prefer something else.", "author": { "name": "Alan Turing" } }] }
        ]}),
    );
    let traffic = store.traffic();
    assert_eq!(store.products.requests().len(), 1, "{traffic}");
    assert!(entity_requests(&store.products).is_empty(), "{traffic}");
    assert_eq!(store.reviews.requests().len(), 1, "{traffic}");
    assert_eq!(
        representations(&store.reviews.requests()[0]),
        json!([
            { "__typename": "Product", "upc": "p1" },
            { "__typename": "Product", "upc": "p2" },
            { "__typename": "Product", "upc": "p3" }
        ]),
        "{traffic}"
    );
    assert_eq!(store.accounts.requests().len(), 1, "{traffic}");
    assert_eq!(
        representations(&store.accounts.requests()[0]),
        json!([{ "__typename": "User", "id": "u1" }, { "__typename": "User", "id": "u2" }]),
        "four reviews by two authors: two representations: {traffic}"
    );
}

#[tokio::test]
async fn a_nested_entity_chain_is_merged_at_every_level() {
    let store = Store::start().await;

    let response = store
        .query("{ reviews { product { name reviews { author { username } } } author { reviews { id } } } }", json!({}))
        .await;

    let table = json!({ "name": "Table", "reviews": [
        { "author": { "username": "ada" } }, { "author": { "username": "alan" } }
    ]});
    let ada = json!({ "reviews": [{ "id": "r1" }, { "id": "r3" }] });
    let alan = json!({ "reviews": [{ "id": "r2" }, { "id": "r4" }] });
    assert_data(
        &response,
        json!({ "reviews": [
            { "product": table, "author": ada },
            { "product": table, "author": alan },
            { "product": { "name": "Couch", "reviews": [{ "author": { "username": "ada" } }] }, "author": ada },
            { "product": { "name": "Chair", "reviews": [{ "author": { "username": "alan" } }] }, "author": alan }
        ]}),
    );
    assert_eq!(keys(&response["data"]["reviews"][0]), ["product", "author"]);
    assert_eq!(keys(&response["data"]["reviews"][0]["product"]), ["name", "reviews"]);
}

/// "mentions" knows users only by their `username` key.
mod mentions {
    use super::*;

    pub struct User {
        username: String,
    }

    #[Object]
    impl User {
        async fn username(&self) -> &str {
            &self.username
        }
    }

    #[derive(SimpleObject)]
    #[graphql(complex)]
    pub struct Mention {
        text: String,
        #[graphql(skip)]
        username: String,
    }

    #[async_graphql::ComplexObject]
    impl Mention {
        async fn user(&self) -> User {
            User { username: self.username.clone() }
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn mentions(&self) -> Vec<Mention> {
            [("thanks @ada", "ada"), ("cc @alan", "alan"), ("@ada again", "ada")]
                .into_iter()
                .map(|(text, username)| Mention { text: text.into(), username: username.into() })
                .collect()
        }

        #[graphql(entity)]
        async fn user_by_username(&self, username: String) -> User {
            User { username }
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

#[tokio::test]
async fn an_entity_known_by_one_key_is_resolved_through_another() {
    let journal = Journal::default();
    let accounts = accounts::spawn(&journal).await;
    let reviews = super::fixtures::reviews::spawn(&journal).await;
    let mentions = mentions::spawn().await;
    let gateway = Gateway::start(&[("accounts", &accounts), ("reviews", &reviews), ("mentions", &mentions)]).await;

    let response = gateway.query("{ mentions { text user { username name reviews { id } } } }", json!({})).await;

    let ada = json!({ "username": "ada", "name": "Ada Lovelace", "reviews": [{ "id": "r1" }, { "id": "r3" }] });
    let alan = json!({ "username": "alan", "name": "Alan Turing", "reviews": [{ "id": "r2" }, { "id": "r4" }] });
    assert_data(
        &response,
        json!({ "mentions": [
            { "text": "thanks @ada", "user": ada },
            { "text": "cc @alan", "user": alan },
            { "text": "@ada again", "user": ada }
        ]}),
    );
    assert_eq!(keys(&response["data"]["mentions"][0]["user"]), ["username", "name", "reviews"]);
    let by_username = entity_requests(&accounts);
    assert_eq!(by_username.len(), 1);
    assert_eq!(
        representations(&by_username[0]),
        json!([{ "__typename": "User", "username": "ada" }, { "__typename": "User", "username": "alan" }]),
        "the username key: the only one mentions has"
    );
    let by_id = entity_requests(&reviews);
    assert_eq!(by_id.len(), 1);
    assert_eq!(
        representations(&by_id[0]),
        json!([{ "__typename": "User", "id": "u1" }, { "__typename": "User", "id": "u2" }]),
        "the id key, learnt from accounts"
    );
}

/// `Project @key(fields: "id org")`: project ids are unique per organisation only.
mod compound {
    use super::*;

    pub mod projects {
        use super::*;

        #[derive(SimpleObject, Clone)]
        pub struct Project {
            id: ID,
            org: String,
            name: String,
        }

        pub struct Query;

        #[Object]
        impl Query {
            async fn projects(&self) -> Vec<Project> {
                [("1", "acme", "Rocket"), ("1", "globex", "Umbrella"), ("2", "acme", "Anvil")]
                    .into_iter()
                    .map(|(id, org, name)| Project { id: ID(id.into()), org: org.into(), name: name.into() })
                    .collect()
            }

            #[graphql(entity)]
            async fn project(&self, id: ID, org: String) -> Project {
                Project { id, org, name: "unknown".into() }
            }
        }

        pub async fn spawn() -> TestSubgraph {
            spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
        }
    }

    pub mod billing {
        use super::*;

        #[derive(SimpleObject)]
        pub struct Project {
            id: ID,
            org: String,
            budget: i32,
        }

        pub struct Query;

        #[Object]
        impl Query {
            #[graphql(entity)]
            async fn project(&self, id: ID, org: String) -> Option<Project> {
                let budget = match (id.as_str(), org.as_str()) {
                    ("1", "acme") => 100,
                    ("1", "globex") => 250,
                    ("2", "acme") => 40,
                    _ => return None,
                };
                Some(Project { id, org, budget })
            }
        }

        pub async fn spawn() -> TestSubgraph {
            spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
        }
    }
}

#[tokio::test]
async fn a_compound_key_sends_all_its_fields() {
    let projects = compound::projects::spawn().await;
    let billing = compound::billing::spawn().await;
    assert!(billing.sdl.contains(r#"@key(fields: "id org")"#), "{}", billing.sdl);
    let gateway = Gateway::start(&[("projects", &projects), ("billing", &billing)]).await;

    let response = gateway.query("{ projects { name org budget } }", json!({})).await;

    assert_data(
        &response,
        json!({ "projects": [
            { "name": "Rocket", "org": "acme", "budget": 100 },
            { "name": "Umbrella", "org": "globex", "budget": 250 },
            { "name": "Anvil", "org": "acme", "budget": 40 }
        ]}),
    );
    let fetches = entity_requests(&billing);
    assert_eq!(fetches.len(), 1);
    assert_eq!(
        representations(&fetches[0]),
        json!([
            { "__typename": "Project", "id": "1", "org": "acme" },
            { "__typename": "Project", "id": "1", "org": "globex" },
            { "__typename": "Project", "id": "2", "org": "acme" }
        ]),
        "same id, different org: distinct entities"
    );
}

/// `Team @key(fields: "id org { id }")`: async-graphql derives the nested key
/// from an input object argument of the entity resolver.
mod nested {
    use super::*;

    #[derive(SimpleObject, Clone)]
    #[graphql(shareable)]
    pub struct Org {
        id: ID,
    }

    #[derive(InputObject)]
    pub struct OrgKey {
        id: ID,
    }

    pub mod teams {
        use super::*;

        #[derive(SimpleObject)]
        pub struct Team {
            id: ID,
            org: Org,
            name: String,
        }

        pub struct Query;

        #[Object]
        impl Query {
            async fn teams(&self) -> Vec<Team> {
                [("t1", "o1", "Platform"), ("t1", "o2", "Platform EU"), ("t2", "o1", "Billing")]
                    .into_iter()
                    .map(|(id, org, name)| Team {
                        id: ID(id.into()),
                        org: Org { id: ID(org.into()) },
                        name: name.into(),
                    })
                    .collect()
            }

            #[graphql(entity)]
            async fn team(&self, id: ID, org: OrgKey) -> Team {
                Team { id, org: Org { id: org.id }, name: "unknown".into() }
            }
        }

        pub async fn spawn() -> TestSubgraph {
            spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
        }
    }

    pub mod payroll {
        use super::*;

        #[derive(SimpleObject)]
        pub struct Team {
            id: ID,
            org: Org,
            headcount: i32,
        }

        pub struct Query;

        #[Object]
        impl Query {
            #[graphql(entity)]
            async fn team(&self, id: ID, org: OrgKey) -> Option<Team> {
                let headcount = match (id.as_str(), org.id.as_str()) {
                    ("t1", "o1") => 12,
                    ("t1", "o2") => 5,
                    ("t2", "o1") => 3,
                    _ => return None,
                };
                Some(Team { id, org: Org { id: org.id }, headcount })
            }
        }

        pub async fn spawn() -> TestSubgraph {
            spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
        }
    }
}

#[tokio::test]
async fn a_nested_key_sends_the_nested_selection() {
    let teams = nested::teams::spawn().await;
    let payroll = nested::payroll::spawn().await;
    assert!(payroll.sdl.contains(r#"@key(fields: "id org { id }")"#), "{}", payroll.sdl);
    let gateway = Gateway::start(&[("teams", &teams), ("payroll", &payroll)]).await;

    let response = gateway.query("{ teams { name headcount org { id } } }", json!({})).await;

    assert_data(
        &response,
        json!({ "teams": [
            { "name": "Platform", "headcount": 12, "org": { "id": "o1" } },
            { "name": "Platform EU", "headcount": 5, "org": { "id": "o2" } },
            { "name": "Billing", "headcount": 3, "org": { "id": "o1" } }
        ]}),
    );
    assert_eq!(keys(&response["data"]["teams"][0]), ["name", "headcount", "org"]);
    let fetches = entity_requests(&payroll);
    assert_eq!(fetches.len(), 1);
    assert_eq!(
        representations(&fetches[0]),
        json!([
            { "__typename": "Team", "id": "t1", "org": { "id": "o1" } },
            { "__typename": "Team", "id": "t1", "org": { "id": "o2" } },
            { "__typename": "Team", "id": "t2", "org": { "id": "o1" } }
        ])
    );
}

#[tokio::test]
async fn an_entity_reached_along_two_merge_paths_goes_to_its_subgraph_once() {
    let store = Store::start().await;

    // Ada (u1) wrote r1 and r3: she is the author under `me` and under the top
    // products, two merge paths of one batched fetch to accounts.
    let response = store
        .query(
            "{ me { reviews { author { name } } } topProducts(first: 2) { reviews { author { name } } } }",
            json!({}),
        )
        .await;

    let ada = json!({ "author": { "name": "Ada Lovelace" } });
    let alan = json!({ "author": { "name": "Alan Turing" } });
    assert_data(
        &response,
        json!({
            "me": { "reviews": [ada, ada] },
            "topProducts": [{ "reviews": [ada, alan] }, { "reviews": [ada] }]
        }),
    );
    let traffic = store.traffic();
    let sent: Vec<Value> = entity_requests(&store.accounts).iter().flat_map(all_representations).collect();
    let ada_sent = sent.iter().filter(|r| r["id"] == "u1").count();
    assert_eq!(ada_sent, 1, "u1 once, whichever path reached her: {traffic}");
    assert_eq!(sent.len(), 2, "u1 and u2: {traffic}");
}
