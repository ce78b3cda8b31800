//! Same-named fields of different types in one selection: a subgraph would
//! refuse `... on User { name } ... on Admin { name }` when its `User.name` is
//! `String!` and `Admin.name` is `String`, so the planner aliases one of them
//! (`_internal_qp_alias_N`) and asks the executor to rename it back (a
//! `KeyRenamer` output rewrite). That holds for root fetches, the one-fetch
//! plan, entity fetches, and through lists at any depth.
//!
//! "directory": `union Account = User | Admin`, `User @key(id) { id name: String! @shareable
//! similarAccounts: [Account!]! }`, `Admin { id name: String }`; `accounts` (u1, a1).
//! "people": `User @key(id) { id name: String @shareable }`; `users` (u1). Every user's
//! similar accounts are u1 and a1. Names: "u1-name", "a1-name".

use async_graphql::{EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject, Union};
use serde_json::{Value, json};

use super::fixtures::{Gateway, assert_data, entity_requests};
use crate::helpers::{TestSubgraph, spawn_subgraph};

mod directory {
    use super::*;

    #[derive(SimpleObject, Clone)]
    pub struct User {
        id: ID,
        #[graphql(shareable)]
        name: String,
        similar_accounts: Vec<Account>,
    }

    #[derive(SimpleObject, Clone)]
    pub struct Admin {
        id: ID,
        name: Option<String>,
    }

    #[derive(Union, Clone)]
    pub enum Account {
        User(User),
        Admin(Admin),
    }

    fn admin() -> Admin {
        Admin { id: ID("a1".into()), name: Some("a1-name".into()) }
    }

    /// u1, whose similar accounts are u1 (without similar accounts of its own) and a1, `depth` levels down.
    fn user(depth: usize) -> User {
        let similar_accounts =
            if depth == 0 { Vec::new() } else { vec![Account::User(user(depth - 1)), Account::Admin(admin())] };
        User { id: ID("u1".into()), name: "u1-name".into(), similar_accounts }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn accounts(&self) -> Vec<Account> {
            vec![Account::User(user(2)), Account::Admin(admin())]
        }

        #[graphql(entity)]
        async fn user(&self, id: ID) -> Option<User> {
            (id.0 == "u1").then(|| user(2))
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

mod people {
    use super::*;

    #[derive(SimpleObject, Clone)]
    pub struct User {
        id: ID,
        #[graphql(shareable)]
        name: Option<String>,
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn users(&self) -> Vec<User> {
            vec![User { id: ID("u1".into()), name: Some("u1-name".into()) }]
        }

        #[graphql(entity)]
        async fn user(&self, id: ID) -> User {
            User { id, name: Some("u1-name".into()) }
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

struct Directory {
    directory: TestSubgraph,
    _people: TestSubgraph,
    gateway: Gateway,
}

impl Directory {
    async fn start() -> Self {
        let directory = directory::spawn().await;
        let people = people::spawn().await;
        assert!(directory.sdl.contains("name: String!"), "{}", directory.sdl);
        let gateway = Gateway::start(&[("directory", &directory), ("people", &people)]).await;
        Self { directory, _people: people, gateway }
    }

    async fn query(&self, query: &str) -> Value {
        self.gateway.query(query, json!({})).await
    }

    /// Whether the planner aliased a field in what it asked the directory.
    fn aliased(&self) -> bool {
        self.directory.requests().iter().any(|r| r["query"].as_str().is_some_and(|q| q.contains("_internal_qp_alias")))
    }
}

const ACCOUNTS: &str = "accounts { ... on User { id name } ... on Admin { id name } }";

fn accounts() -> Value {
    json!([{ "id": "u1", "name": "u1-name" }, { "id": "a1", "name": "a1-name" }])
}

#[tokio::test]
async fn a_plan_of_one_root_fetch_gets_its_aliased_fields_back() {
    let graph = Directory::start().await;

    let response = graph.query(&format!("{{ {ACCOUNTS} }}")).await;

    assert_data(&response, json!({ "accounts": accounts() }));
    assert!(graph.aliased(), "the planner aliased a field: {:?}", graph.directory.requests());
}

#[tokio::test]
async fn a_root_fetch_beside_another_gets_its_aliased_fields_back() {
    let graph = Directory::start().await;

    let response = graph.query(&format!("{{ users {{ id name }} {ACCOUNTS} }}")).await;

    assert_data(&response, json!({ "users": [{ "id": "u1", "name": "u1-name" }], "accounts": accounts() }));
    assert!(graph.aliased(), "{:?}", graph.directory.requests());
}

#[tokio::test]
async fn a_root_fetch_gets_aliased_fields_back_through_nested_lists() {
    let graph = Directory::start().await;

    let response = graph
        .query(
            "{ accounts { ... on User { name similarAccounts { ... on User { name similarAccounts { ... on User { name } \
             ... on Admin { name } } } ... on Admin { name } } } ... on Admin { name } } }",
        )
        .await;

    let leaves = json!([{ "name": "u1-name" }, { "name": "a1-name" }]);
    assert_data(
        &response,
        json!({ "accounts": [
            { "name": "u1-name", "similarAccounts": [
                { "name": "u1-name", "similarAccounts": leaves },
                { "name": "a1-name" }
            ]},
            { "name": "a1-name" }
        ]}),
    );
    assert!(graph.aliased(), "{:?}", graph.directory.requests());
}

#[tokio::test]
async fn an_entity_fetch_gets_aliased_fields_back_inside_a_list() {
    let graph = Directory::start().await;

    let response = graph.query("{ users { id similarAccounts { ... on User { name } ... on Admin { name } } } }").await;

    assert_data(
        &response,
        json!({ "users": [{ "id": "u1", "similarAccounts": [{ "name": "u1-name" }, { "name": "a1-name" }] }] }),
    );
    assert_eq!(entity_requests(&graph.directory).len(), 1, "{:?}", graph.directory.requests());
    assert!(graph.aliased(), "{:?}", graph.directory.requests());
}
