//! Three static subgraphs for load tests of the router (products, reviews,
//! accounts), on ports 4801-4803:
//!
//!   cargo run --release -p router --example bench_subgraphs            # serve (and, with
//!                                   BENCH_ISSUER_FILE set, write a JWKS URL and a token there)
//!   cargo run --release -p router --example bench_subgraphs -- sdl     # print {"subgraphs":[...]} for compose.mjs --stdin

use async_graphql::{EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject};
use serde_json::json;

mod support;
use support::{sdl, serve};

const PRODUCTS: u16 = 4801;
const REVIEWS: u16 = 4802;
const ACCOUNTS: u16 = 4803;

#[derive(SimpleObject, Clone)]
#[graphql(name = "Product")]
struct Product {
    upc: String,
    name: String,
    price: i32,
}

struct ProductsQuery;

#[Object(name = "Query")]
impl ProductsQuery {
    async fn top_products(&self, #[graphql(default = 5)] first: i32) -> Vec<Product> {
        (0..first.clamp(0, 1000))
            .map(|i| Product { upc: format!("upc-{i}"), name: format!("Product {i}"), price: 100 + i })
            .collect()
    }

    #[graphql(entity)]
    async fn product_by_upc(&self, upc: String) -> Product {
        Product { name: format!("Product {upc}"), price: 100, upc }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "User")]
struct UserRef {
    id: ID,
}

#[derive(SimpleObject)]
#[graphql(name = "Review")]
struct Review {
    id: ID,
    body: String,
    author: UserRef,
}

struct ReviewedProduct {
    upc: String,
}

#[Object(name = "Product")]
impl ReviewedProduct {
    async fn upc(&self) -> &str {
        &self.upc
    }

    async fn reviews(&self) -> Vec<Review> {
        (0..2)
            .map(|i| Review {
                id: ID(format!("{}-{i}", self.upc)),
                body: format!("Review {i} of {}", self.upc),
                author: UserRef { id: ID(format!("user-{i}")) },
            })
            .collect()
    }
}

struct ReviewsQuery;

#[Object(name = "Query")]
impl ReviewsQuery {
    #[graphql(entity)]
    async fn product_by_upc(&self, upc: String) -> ReviewedProduct {
        ReviewedProduct { upc }
    }

    #[graphql(entity)]
    async fn user_by_id(&self, id: ID) -> UserRef {
        UserRef { id }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "User")]
struct User {
    id: ID,
    username: String,
}

struct AccountsQuery;

#[Object(name = "Query")]
impl AccountsQuery {
    async fn me(&self) -> User {
        User { id: ID("user-0".into()), username: "ada".into() }
    }

    #[graphql(entity)]
    async fn user_by_id(&self, id: ID) -> User {
        User { username: format!("name of {}", id.as_str()), id }
    }
}

/// On the runtime the services run on (`platform::cli::runtime`), for a like-for-like comparison.
fn main() {
    platform::cli::runtime().expect("a runtime").block_on(run());
}

async fn run() {
    let products = Schema::build(ProductsQuery, EmptyMutation, EmptySubscription).enable_federation().finish();
    let reviews = Schema::build(ReviewsQuery, EmptyMutation, EmptySubscription).enable_federation().finish();
    let accounts = Schema::build(AccountsQuery, EmptyMutation, EmptySubscription).enable_federation().finish();
    if std::env::args().nth(1).as_deref() == Some("sdl") {
        let url = |port: u16| format!("http://127.0.0.1:{port}/graphql");
        let config = json!({ "subgraphs": [
            { "name": "products", "url": url(PRODUCTS), "sdl": sdl(&products) },
            { "name": "reviews", "url": url(REVIEWS), "sdl": sdl(&reviews) },
            { "name": "accounts", "url": url(ACCOUNTS), "sdl": sdl(&accounts) },
        ]});
        println!("{config}");
        return;
    }
    // For the edge benchmark: a JWKS to verify against and a token it verifies.
    let issuer = platform::testing::TestIssuer::start().await;
    if let Ok(path) = std::env::var("BENCH_ISSUER_FILE") {
        let token = issuer.token_with(uuid::Uuid::new_v4(), 24 * 3600, platform::identity::ACCESS_TOKEN_TYPE);
        std::fs::write(path, format!("{}\n{token}\n", issuer.jwks_url)).expect("issuer file written");
    }
    tokio::join!(serve(products, PRODUCTS), serve(reviews, REVIEWS), serve(accounts, ACCOUNTS));
}
