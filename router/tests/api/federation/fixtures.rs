//! Test subgraphs shared by the federation tests, and helpers to route them.
//!
//! The "store" graph is the classic federation demo, with static data:
//!
//! - accounts: `User @key(id) @key(username)` { id, username (shareable), name, email }; `me`,
//!   `users`, `user(id)`; mutations `createUser`, `renameUser`.
//! - products: `Product @key(upc)` { upc, name (shareable), price, weight }; `topProducts(first)`,
//!   `product(upc)`.
//! - reviews: `Review` { id, body, sentiment, author, product }, `User.reviews` (nullable),
//!   `Product.reviews(first)`; `reviews`, `review(id)`; mutation `addReview`.
//! - inventory: `Product` { inStock, `shippingEstimate @requires(price weight)`,
//!   `shippingEstimateTo(zone) @requires(weight)` }.
//!
//! Users: u1 ada "Ada Lovelace", u2 alan "Alan Turing", u3 grace "Grace Hopper".
//! Products (upc, name, price, weight): p1 Table 899 100, p2 Couch 1299 1000, p3 Chair 54 50.
//! Reviews (id, product, author, body): r1 p1 u1 "Love it!", r2 p1 u2 "Too expensive.",
//! r3 p2 u1 "Could be better.", r4 p3 u2 "Prefer something else.".
//! `Review.sentiment` fails for r3 with code `SENTIMENT_UNAVAILABLE`; `User.email` fails for u1
//! with code `EMAIL_PRIVATE`. The resolvers that matter for ordering write to a shared [`Journal`].

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::helpers::{RouterClient, SupergraphFile, TestSubgraph, compose, spawn_router};

/// What the subgraphs' resolvers did, in order, across subgraphs.
#[derive(Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    pub fn record(&self, entry: impl Into<String>) {
        self.0.lock().expect("journal lock").push(entry.into());
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.lock().expect("journal lock").clone()
    }
}

/// The router over a composed set of subgraphs; the supergraph file lives as long as it.
pub struct Gateway {
    pub router: RouterClient,
    _supergraph: SupergraphFile,
}

impl Gateway {
    /// Composes the subgraphs (name, running subgraph) and starts the real router over them.
    pub async fn start(subgraphs: &[(&str, &TestSubgraph)]) -> Self {
        let parts: Vec<(&str, String, String)> =
            subgraphs.iter().map(|(name, s)| (*name, s.sdl.clone(), s.url.clone())).collect();
        Self::start_with(&parts).await
    }

    /// Like `start`, from (name, SDL, URL).
    pub async fn start_with(parts: &[(&str, String, String)]) -> Self {
        Self::start_with_env(parts, &[]).await
    }

    /// Like `start_with`, the router given these extra variables.
    pub async fn start_with_env(parts: &[(&str, String, String)], vars: &[(&str, String)]) -> Self {
        let supergraph = SupergraphFile::new(&compose(parts));
        let router = spawn_router(supergraph.path.clone(), vars).await;
        Self { router, _supergraph: supergraph }
    }

    pub async fn query(&self, query: &str, variables: Value) -> Value {
        self.router.graphql(None, query, variables).await
    }
}

/// The `@link` a hand-written subgraph SDL starts with.
pub const FEDERATION_LINK: &str = r#"extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@shareable", "@external", "@requires", "@inaccessible", "@interfaceObject"])"#;

/// A subgraph that is not async-graphql: each request is answered with what
/// `answer` makes of it, as a foreign server might (without `__typename`,
/// with values its own schema would refuse, with errors of any shape).
pub struct ScriptedSubgraph {
    pub url: String,
    /// `FEDERATION_LINK` and the SDL it was given.
    pub sdl: String,
    received: Arc<Mutex<Vec<Value>>>,
    _stop: DropGuard,
}

impl ScriptedSubgraph {
    pub async fn spawn(sdl: &str, answer: impl Fn(&Value) -> Value + Send + Sync + 'static) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let answer = Arc::new(answer);
        let app = axum::Router::new().route(
            "/graphql",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let (log, answer) = (log.clone(), answer.clone());
                async move {
                    log.lock().expect("log lock").push(body.clone());
                    axum::Json(answer(&body))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/graphql", listener.local_addr().expect("addr"));
        let stop = CancellationToken::new();
        tokio::spawn(axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned()).into_future());
        Self { url, sdl: format!("{FEDERATION_LINK}\n{sdl}"), received, _stop: stop.drop_guard() }
    }

    pub fn requests(&self) -> Vec<Value> {
        self.received.lock().expect("log lock").clone()
    }

    /// (name, SDL, URL), for [`Gateway::start_with`].
    pub fn part<'n>(&self, name: &'n str) -> (&'n str, String, String) {
        (name, self.sdl.clone(), self.url.clone())
    }
}

/// The `_entities` requests a subgraph received.
pub fn entity_requests(subgraph: &TestSubgraph) -> Vec<Value> {
    subgraph.requests().into_iter().filter(|r| r["query"].as_str().is_some_and(|q| q.contains("_entities"))).collect()
}

/// The representations sent in an `_entities` request.
pub fn representations(request: &Value) -> Value {
    request["variables"]["representations"].clone()
}

/// Every representation an `_entities` request carries, batched (`__batch_reps_N`) or not.
pub fn all_representations(request: &Value) -> Vec<Value> {
    let variables = request["variables"].as_object().into_iter().flatten();
    let lists = variables.filter(|(name, _)| *name == "representations" || name.starts_with("__batch_reps"));
    lists.flat_map(|(_, list)| list.as_array().cloned().unwrap_or_default()).collect()
}

/// The keys of a JSON object, in order.
pub fn keys(value: &Value) -> Vec<&str> {
    value.as_object().unwrap_or_else(|| panic!("an object: {value}")).keys().map(String::as_str).collect()
}

/// The codes of a response's errors, in order.
pub fn error_codes(response: &Value) -> Vec<Value> {
    response["errors"].as_array().into_iter().flatten().map(|e| e["extensions"]["code"].clone()).collect()
}

/// Asserts a response has exactly this `data` and no errors.
#[track_caller]
pub fn assert_data(response: &Value, expected: Value) {
    assert_eq!(response.get("errors"), None, "no errors expected: {response}");
    assert_eq!(response["data"], expected, "{response}");
}

/// The four subgraphs of the store demo behind one router.
pub struct Store {
    pub accounts: TestSubgraph,
    pub products: TestSubgraph,
    pub reviews: TestSubgraph,
    pub inventory: TestSubgraph,
    pub journal: Journal,
    pub gateway: Gateway,
}

impl Store {
    pub async fn start() -> Self {
        Self::start_with_env(&[]).await
    }

    /// The store, its router given these extra variables.
    pub async fn start_with_env(vars: &[(&str, String)]) -> Self {
        let journal = Journal::default();
        let accounts = accounts::spawn(&journal).await;
        let products = products::spawn(&journal).await;
        let reviews = reviews::spawn(&journal).await;
        let inventory = inventory::spawn(&journal).await;
        let parts: Vec<(&str, String, String)> =
            [("accounts", &accounts), ("products", &products), ("reviews", &reviews), ("inventory", &inventory)]
                .into_iter()
                .map(|(name, s)| (name, s.sdl.clone(), s.url.clone()))
                .collect();
        let gateway = Gateway::start_with_env(&parts, vars).await;
        Self { accounts, products, reviews, inventory, journal, gateway }
    }

    pub async fn query(&self, query: &str, variables: Value) -> Value {
        self.gateway.query(query, variables).await
    }

    /// Every request each subgraph received, for failure messages.
    pub fn traffic(&self) -> Value {
        json!({
            "accounts": self.accounts.requests(),
            "products": self.products.requests(),
            "reviews": self.reviews.requests(),
            "inventory": self.inventory.requests(),
        })
    }
}

pub mod accounts {
    use std::sync::{Arc, Mutex};

    use async_graphql::{Context, EmptySubscription, Error, ErrorExtensions, ID, Object, Result, Schema};

    use super::Journal;
    use crate::helpers::{TestSubgraph, spawn_subgraph};

    #[derive(Clone)]
    pub struct User {
        id: String,
        username: String,
        name: Option<String>,
    }

    #[Object]
    impl User {
        async fn id(&self) -> ID {
            ID(self.id.clone())
        }

        #[graphql(shareable)]
        async fn username(&self) -> &str {
            &self.username
        }

        async fn name(&self) -> Option<&str> {
            self.name.as_deref()
        }

        /// Fails for u1 with code `EMAIL_PRIVATE`.
        async fn email(&self) -> Result<Option<String>> {
            if self.id == "u1" {
                return Err(Error::new("email is private").extend_with(|_, e| e.set("code", "EMAIL_PRIVATE")));
            }
            Ok(Some(format!("{}@example.com", self.username)))
        }
    }

    #[derive(Clone)]
    struct Users(Arc<Mutex<Vec<User>>>);

    impl Users {
        fn find(&self, test: impl Fn(&User) -> bool) -> Option<User> {
            self.0.lock().expect("users lock").iter().find(|u| test(u)).cloned()
        }
    }

    fn users(ctx: &Context<'_>) -> Users {
        ctx.data_unchecked::<Users>().clone()
    }

    fn journal(ctx: &Context<'_>) -> Journal {
        ctx.data_unchecked::<Journal>().clone()
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn me(&self, ctx: &Context<'_>) -> Option<User> {
            users(ctx).find(|u| u.id == "u1")
        }

        async fn users(&self, ctx: &Context<'_>) -> Vec<User> {
            users(ctx).0.lock().expect("users lock").clone()
        }

        async fn user(&self, ctx: &Context<'_>, id: ID) -> Option<User> {
            users(ctx).find(|u| u.id == *id)
        }

        #[graphql(entity)]
        async fn user_by_id(&self, ctx: &Context<'_>, id: ID) -> Option<User> {
            journal(ctx).record(format!("accounts: User(id: {})", *id));
            users(ctx).find(|u| u.id == *id)
        }

        #[graphql(entity)]
        async fn user_by_username(&self, ctx: &Context<'_>, username: String) -> Option<User> {
            journal(ctx).record(format!("accounts: User(username: {username})"));
            users(ctx).find(|u| u.username == username)
        }
    }

    pub struct Mutation;

    #[Object]
    impl Mutation {
        /// New users get ids u4, u5, ...
        async fn create_user(&self, ctx: &Context<'_>, username: String, name: String) -> User {
            journal(ctx).record(format!("accounts: createUser({username})"));
            let users = users(ctx);
            let mut all = users.0.lock().expect("users lock");
            let user = User { id: format!("u{}", all.len() + 1), username, name: Some(name) };
            all.push(user.clone());
            user
        }

        async fn rename_user(&self, ctx: &Context<'_>, id: ID, name: String) -> Option<User> {
            journal(ctx).record(format!("accounts: renameUser({})", *id));
            let users = users(ctx);
            let mut all = users.0.lock().expect("users lock");
            let user = all.iter_mut().find(|u| u.id == *id)?;
            user.name = Some(name);
            Some(user.clone())
        }
    }

    pub fn schema(journal: &Journal) -> Schema<Query, Mutation, EmptySubscription> {
        let user = |id: &str, username: &str, name: &str| User {
            id: id.into(),
            username: username.into(),
            name: Some(name.into()),
        };
        let users = Users(Arc::new(Mutex::new(vec![
            user("u1", "ada", "Ada Lovelace"),
            user("u2", "alan", "Alan Turing"),
            user("u3", "grace", "Grace Hopper"),
        ])));
        Schema::build(Query, Mutation, EmptySubscription).enable_federation().data(users).data(journal.clone()).finish()
    }

    pub async fn spawn(journal: &Journal) -> TestSubgraph {
        spawn_subgraph(schema(journal)).await
    }
}

pub mod products {
    use async_graphql::{Context, EmptyMutation, EmptySubscription, Object, Schema};

    use super::Journal;
    use crate::helpers::{TestSubgraph, spawn_subgraph};

    #[derive(Clone)]
    pub struct Product {
        upc: &'static str,
        name: &'static str,
        price: i32,
        weight: i32,
    }

    const PRODUCTS: [Product; 3] = [
        Product { upc: "p1", name: "Table", price: 899, weight: 100 },
        Product { upc: "p2", name: "Couch", price: 1299, weight: 1000 },
        Product { upc: "p3", name: "Chair", price: 54, weight: 50 },
    ];

    #[Object]
    impl Product {
        async fn upc(&self) -> &str {
            self.upc
        }

        #[graphql(shareable)]
        async fn name(&self) -> &str {
            self.name
        }

        async fn price(&self) -> i32 {
            self.price
        }

        async fn weight(&self) -> i32 {
            self.weight
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn top_products(&self, first: Option<i32>) -> Vec<Product> {
            PRODUCTS.iter().take(first.map_or(PRODUCTS.len(), |n| n.max(0) as usize)).cloned().collect()
        }

        async fn product(&self, upc: String) -> Option<Product> {
            PRODUCTS.iter().find(|p| p.upc == upc).cloned()
        }

        #[graphql(entity)]
        async fn product_by_upc(&self, ctx: &Context<'_>, upc: String) -> Option<Product> {
            ctx.data_unchecked::<Journal>().record(format!("products: Product({upc})"));
            PRODUCTS.iter().find(|p| p.upc == upc).cloned()
        }
    }

    pub fn schema(journal: &Journal) -> Schema<Query, EmptyMutation, EmptySubscription> {
        Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().data(journal.clone()).finish()
    }

    pub async fn spawn(journal: &Journal) -> TestSubgraph {
        spawn_subgraph(schema(journal)).await
    }
}

pub mod reviews {
    use std::sync::{Arc, Mutex};

    use async_graphql::{Context, EmptySubscription, ErrorExtensions, ID, Object, Result, Schema};

    use super::Journal;
    use crate::helpers::{TestSubgraph, spawn_subgraph};

    #[derive(Clone)]
    pub struct Review {
        id: String,
        upc: String,
        author: String,
        body: String,
    }

    #[derive(Clone)]
    struct Reviews(Arc<Mutex<Vec<Review>>>);

    fn all(ctx: &Context<'_>) -> Vec<Review> {
        ctx.data_unchecked::<Reviews>().0.lock().expect("reviews lock").clone()
    }

    fn journal(ctx: &Context<'_>) -> Journal {
        ctx.data_unchecked::<Journal>().clone()
    }

    #[Object]
    impl Review {
        async fn id(&self) -> ID {
            ID(self.id.clone())
        }

        async fn body(&self) -> &str {
            &self.body
        }

        /// Fails for r3.
        async fn sentiment(&self) -> Result<Option<&str>> {
            match self.id.as_str() {
                "r3" => Err(async_graphql::Error::new("sentiment analysis is down")
                    .extend_with(|_, e| e.set("code", "SENTIMENT_UNAVAILABLE"))),
                "r1" => Ok(Some("positive")),
                _ => Ok(Some("negative")),
            }
        }

        async fn author(&self) -> User {
            User { id: self.author.clone() }
        }

        async fn product(&self) -> Product {
            Product { upc: self.upc.clone() }
        }
    }

    pub struct User {
        id: String,
    }

    #[Object]
    impl User {
        async fn id(&self) -> ID {
            ID(self.id.clone())
        }

        /// Nullable, so that a failed fetch leaves the user in place.
        async fn reviews(&self, ctx: &Context<'_>) -> Option<Vec<Review>> {
            Some(all(ctx).into_iter().filter(|r| r.author == self.id).collect())
        }
    }

    pub struct Product {
        upc: String,
    }

    #[Object]
    impl Product {
        async fn upc(&self) -> &str {
            &self.upc
        }

        async fn reviews(&self, ctx: &Context<'_>, first: Option<i32>) -> Vec<Review> {
            let reviews = all(ctx).into_iter().filter(|r| r.upc == self.upc);
            reviews.take(first.map_or(usize::MAX, |n| n.max(0) as usize)).collect()
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn reviews(&self, ctx: &Context<'_>) -> Vec<Review> {
            all(ctx)
        }

        async fn review(&self, ctx: &Context<'_>, id: ID) -> Option<Review> {
            all(ctx).into_iter().find(|r| r.id == *id)
        }

        #[graphql(entity)]
        async fn user_by_id(&self, ctx: &Context<'_>, id: ID) -> User {
            journal(ctx).record(format!("reviews: User(id: {})", *id));
            User { id: id.0 }
        }

        #[graphql(entity)]
        async fn product_by_upc(&self, ctx: &Context<'_>, upc: String) -> Product {
            journal(ctx).record(format!("reviews: Product({upc})"));
            Product { upc }
        }
    }

    pub struct Mutation;

    #[Object]
    impl Mutation {
        /// New reviews get ids r5, r6, ...
        async fn add_review(&self, ctx: &Context<'_>, author_id: ID, upc: String, body: String) -> Review {
            journal(ctx).record(format!("reviews: addReview({})", *author_id));
            let reviews = ctx.data_unchecked::<Reviews>();
            let mut all = reviews.0.lock().expect("reviews lock");
            let review = Review { id: format!("r{}", all.len() + 1), upc, author: author_id.0, body };
            all.push(review.clone());
            review
        }
    }

    pub fn schema(journal: &Journal) -> Schema<Query, Mutation, EmptySubscription> {
        let review = |id: &str, upc: &str, author: &str, body: &str| Review {
            id: id.into(),
            upc: upc.into(),
            author: author.into(),
            body: body.into(),
        };
        let reviews = Reviews(Arc::new(Mutex::new(vec![
            review("r1", "p1", "u1", "Love it!"),
            review("r2", "p1", "u2", "Too expensive."),
            review("r3", "p2", "u1", "Could be better."),
            review("r4", "p3", "u2", "Prefer something else."),
        ])));
        Schema::build(Query, Mutation, EmptySubscription)
            .enable_federation()
            .data(reviews)
            .data(journal.clone())
            .finish()
    }

    pub async fn spawn(journal: &Journal) -> TestSubgraph {
        spawn_subgraph(schema(journal)).await
    }
}

pub mod inventory {
    use async_graphql::{Context, EmptyMutation, EmptySubscription, Object, Result, Schema};

    use super::Journal;
    use crate::helpers::{TestSubgraph, spawn_subgraph};

    /// A product as inventory sees it: `price` and `weight` only when the router sent them.
    pub struct Product {
        upc: String,
        price: Option<i32>,
        weight: Option<i32>,
    }

    #[Object]
    impl Product {
        async fn upc(&self) -> &str {
            &self.upc
        }

        #[graphql(external)]
        async fn price(&self) -> i32 {
            self.price.unwrap_or_default()
        }

        #[graphql(external)]
        async fn weight(&self) -> i32 {
            self.weight.unwrap_or_default()
        }

        async fn in_stock(&self) -> bool {
            self.upc != "p2"
        }

        /// Free above 1000, else half the weight.
        #[graphql(requires = "price weight")]
        async fn shipping_estimate(&self) -> Result<i32> {
            match (self.price, self.weight) {
                (Some(price), _) if price > 1000 => Ok(0),
                (Some(_), Some(weight)) => Ok(weight / 2),
                _ => Err("price and weight are required".into()),
            }
        }

        /// weight / 10 + 5 to "EU", + 10 to "US".
        #[graphql(requires = "weight")]
        async fn shipping_estimate_to(&self, zone: String) -> Result<i32> {
            let weight = self.weight.ok_or("weight is required")?;
            match zone.as_str() {
                "EU" => Ok(weight / 10 + 5),
                "US" => Ok(weight / 10 + 10),
                _ => Err(format!("no shipping to {zone}").into()),
            }
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        #[graphql(entity)]
        async fn product_by_upc(
            &self,
            ctx: &Context<'_>,
            #[graphql(key)] upc: String,
            price: Option<i32>,
            weight: Option<i32>,
        ) -> Product {
            ctx.data_unchecked::<Journal>().record(format!("inventory: Product({upc})"));
            Product { upc, price, weight }
        }
    }

    pub fn schema(journal: &Journal) -> Schema<Query, EmptyMutation, EmptySubscription> {
        Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().data(journal.clone()).finish()
    }

    pub async fn spawn(journal: &Journal) -> TestSubgraph {
        spawn_subgraph(schema(journal)).await
    }
}
