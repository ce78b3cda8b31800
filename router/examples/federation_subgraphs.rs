//! The four subgraphs of the public GraphQL gateways benchmark's scenario
//! (accounts, inventory, products, reviews), written anew, with data generated
//! deterministically in the same shapes and sizes, on ports 4841-4844:
//!
//!   cargo run --release -p router --example federation_subgraphs          # serve
//!   cargo run --release -p router --example federation_subgraphs -- sdl   # {"subgraphs":[...]} for compose.mjs --stdin
//!
//! Used by `bench/federation/run.sh`; not a test.

use async_graphql::{ComplexObject, EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject};
use serde_json::json;

mod support;
use support::{sdl, serve};

const ACCOUNTS: u16 = 4841;
const INVENTORY: u16 = 4842;
const PRODUCTS: u16 = 4843;
const REVIEWS: u16 = 4844;

const USERS: usize = 6;
const PRODUCT_COUNT: usize = 9;
/// Review `i` is of product `REVIEWED[i]`, as in the public data (four reviews of
/// the first two products, one of the third, two of the fourth).
const REVIEWED: [usize; 11] = [1, 1, 1, 1, 2, 2, 2, 2, 3, 4, 4];
/// Body lengths, in characters, of the reviews: the public data's sizes.
const BODY_LENGTHS: [usize; 11] = [445, 275, 228, 148, 445, 275, 228, 148, 148, 148, 1000];

/// Deterministic filler text of `length` characters.
fn body(seed: usize, length: usize) -> String {
    const WORDS: [&str; 12] =
        ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "tempor", "magna"];
    let mut text = String::with_capacity(length + 12);
    let mut i = seed;
    while text.len() < length {
        text.push_str(WORDS[i % WORDS.len()]);
        text.push(' ');
        i = i.wrapping_mul(7).wrapping_add(3);
    }
    text.truncate(length);
    text
}

// ---- accounts ----

#[derive(SimpleObject, Clone)]
#[graphql(name = "User")]
struct Account {
    id: ID,
    name: Option<String>,
    username: Option<String>,
    birthday: Option<i32>,
}

fn account(n: usize) -> Account {
    Account {
        id: ID(n.to_string()),
        name: Some(format!("User Number {n}")),
        username: Some(format!("user{n}")),
        birthday: Some(1_234_567_890),
    }
}

struct AccountsQuery;

#[Object(name = "Query")]
impl AccountsQuery {
    async fn me(&self) -> Option<Account> {
        Some(account(1))
    }

    async fn user(&self, id: ID) -> Option<Account> {
        id.parse::<usize>().ok().filter(|n| (1..=USERS).contains(n)).map(account)
    }

    async fn users(&self) -> Option<Vec<Option<Account>>> {
        Some((1..=USERS).map(|n| Some(account(n))).collect())
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<Account> {
        id.parse::<usize>().ok().filter(|n| (1..=USERS).contains(n)).map(account)
    }
}

// ---- products ----

#[derive(SimpleObject, Clone)]
#[graphql(name = "Product")]
struct Product {
    upc: String,
    name: Option<String>,
    price: Option<i64>,
    weight: Option<i64>,
}

fn product(n: usize) -> Product {
    let n64 = n as i64;
    Product {
        upc: n.to_string(),
        name: Some(format!("Product {n}")),
        price: Some(100 + n64 * n64 * 137 % 10_000),
        weight: Some(20 + n64 * 211 % 6_000),
    }
}

struct ProductsQuery;

#[Object(name = "Query")]
impl ProductsQuery {
    async fn top_products(&self, #[graphql(default = 5)] first: Option<i32>) -> Option<Vec<Option<Product>>> {
        let first = usize::try_from(first.unwrap_or(5)).unwrap_or(0).min(PRODUCT_COUNT);
        Some((1..=first).map(|n| Some(product(n))).collect())
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> Option<Product> {
        upc.parse::<usize>().ok().filter(|n| (1..=PRODUCT_COUNT).contains(n)).map(product)
    }
}

// ---- inventory ----

#[derive(SimpleObject)]
#[graphql(name = "Product", complex)]
struct StockedProduct {
    upc: String,
    #[graphql(external)]
    weight: Option<i64>,
    #[graphql(external)]
    price: Option<i64>,
    in_stock: Option<bool>,
}

#[ComplexObject]
impl StockedProduct {
    #[graphql(requires = "price weight")]
    async fn shipping_estimate(&self) -> Option<i64> {
        let price = self.price?;
        if price > 1000 { Some(0) } else { self.weight.map(|weight| weight / 2) }
    }
}

struct InventoryQuery;

#[Object(name = "Query")]
impl InventoryQuery {
    #[graphql(entity)]
    async fn find_product_by_upc(
        &self,
        #[graphql(key)] upc: String,
        price: Option<i64>,
        weight: Option<i64>,
    ) -> StockedProduct {
        let in_stock = upc.parse::<usize>().is_ok_and(|n| n % 3 != 2);
        StockedProduct { upc, weight, price, in_stock: Some(in_stock) }
    }
}

// ---- reviews ----

#[derive(SimpleObject, Clone)]
#[graphql(name = "Review", complex)]
struct Review {
    id: ID,
    body: Option<String>,
    #[graphql(skip)]
    index: usize,
}

fn review(index: usize) -> Review {
    Review { id: ID((index + 1).to_string()), body: Some(body(index, BODY_LENGTHS[index])), index }
}

#[ComplexObject]
impl Review {
    #[graphql(provides = "username")]
    async fn author(&self) -> Option<Reviewer> {
        let n = self.index % USERS + 1;
        Some(Reviewer { id: ID(n.to_string()), username: Some(format!("user{n}")) })
    }

    async fn product(&self) -> Option<ReviewedProduct> {
        Some(ReviewedProduct { upc: REVIEWED[self.index].to_string() })
    }
}

#[derive(SimpleObject)]
#[graphql(name = "User", complex)]
struct Reviewer {
    id: ID,
    #[graphql(external)]
    username: Option<String>,
}

#[ComplexObject]
impl Reviewer {
    /// Two reviews per user, as in the public data.
    async fn reviews(&self) -> Option<Vec<Option<Review>>> {
        let n = self.id.parse::<usize>().unwrap_or(1);
        Some((0..2).map(|k| Some(review((n * 2 + k) % REVIEWED.len()))).collect())
    }
}

struct ReviewedProduct {
    upc: String,
}

#[Object(name = "Product")]
impl ReviewedProduct {
    async fn upc(&self) -> &str {
        &self.upc
    }

    async fn reviews(&self) -> Option<Vec<Option<Review>>> {
        let of = |i: &usize| REVIEWED[*i].to_string() == self.upc;
        Some((0..REVIEWED.len()).filter(of).map(|i| Some(review(i))).collect())
    }
}

struct ReviewsQuery;

#[Object(name = "Query")]
impl ReviewsQuery {
    #[graphql(entity)]
    async fn find_review_by_id(&self, id: ID) -> Option<Review> {
        id.parse::<usize>().ok().filter(|n| (1..=REVIEWED.len()).contains(n)).map(|n| review(n - 1))
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Reviewer {
        Reviewer { id, username: None }
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> ReviewedProduct {
        ReviewedProduct { upc }
    }
}

/// On the runtime the services run on (`kit::cli::runtime`), like the other benchmark subgraphs.
fn main() {
    kit::cli::runtime().expect("a runtime").block_on(run());
}

async fn run() {
    let accounts = Schema::build(AccountsQuery, EmptyMutation, EmptySubscription).enable_federation().finish();
    let inventory = Schema::build(InventoryQuery, EmptyMutation, EmptySubscription).enable_federation().finish();
    let products = Schema::build(ProductsQuery, EmptyMutation, EmptySubscription).enable_federation().finish();
    let reviews = Schema::build(ReviewsQuery, EmptyMutation, EmptySubscription).enable_federation().finish();
    if std::env::args().nth(1).as_deref() == Some("sdl") {
        let url = |port: u16| format!("http://127.0.0.1:{port}/graphql");
        let config = json!({ "subgraphs": [
            { "name": "accounts", "url": url(ACCOUNTS), "sdl": sdl(&accounts) },
            { "name": "inventory", "url": url(INVENTORY), "sdl": sdl(&inventory) },
            { "name": "products", "url": url(PRODUCTS), "sdl": sdl(&products) },
            { "name": "reviews", "url": url(REVIEWS), "sdl": sdl(&reviews) },
        ]});
        println!("{config}");
        return;
    }
    tokio::join!(
        serve(accounts, ACCOUNTS),
        serve(inventory, INVENTORY),
        serve(products, PRODUCTS),
        serve(reviews, REVIEWS)
    );
}
