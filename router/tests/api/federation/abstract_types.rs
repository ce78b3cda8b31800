//! Interfaces and unions whose implementations get fields from several
//! subgraphs; fragments and `__typename` on them; entity interfaces with
//! @interfaceObject.
//!
//! "media": `interface Media { id title }`, `Book @key(id)` (author), `Movie @key(id)`
//! (director), `union SearchResult = Book | Movie`; `library`, `search(term)`, `featured`.
//! "ratings": `Book.stars`, `Movie.stars`.
//! Library: b1 Dune (Frank Herbert) 5★, m1 Alien (Ridley Scott) 5★, b2 Emma (Jane Austen) 4★,
//! m2 Heat (Michael Mann) 3★.

use async_graphql::{EmptyMutation, EmptySubscription, ID, Interface, Object, Schema, SimpleObject, Union};
use serde_json::{Value, json};

use super::fixtures::{
    Gateway, ScriptedSubgraph, all_representations, assert_data, entity_requests, keys, representations,
};
use crate::helpers::{TestSubgraph, spawn_subgraph};

const LIBRARY: [(&str, &str, &str); 4] = [
    ("b1", "Dune", "Frank Herbert"),
    ("m1", "Alien", "Ridley Scott"),
    ("b2", "Emma", "Jane Austen"),
    ("m2", "Heat", "Michael Mann"),
];

fn stars(id: &str) -> i32 {
    match id {
        "b1" | "m1" => 5,
        "b2" => 4,
        _ => 3,
    }
}

mod media {
    use super::*;

    #[derive(SimpleObject, Clone)]
    pub struct Book {
        id: ID,
        title: String,
        author: String,
    }

    #[derive(SimpleObject, Clone)]
    pub struct Movie {
        id: ID,
        title: String,
        director: String,
    }

    #[derive(Interface, Clone)]
    #[graphql(field(name = "id", ty = "&ID"), field(name = "title", ty = "&String"))]
    pub enum Media {
        Book(Book),
        Movie(Movie),
    }

    #[derive(Union, Clone)]
    pub enum SearchResult {
        Book(Book),
        Movie(Movie),
    }

    fn item(id: &str) -> Option<(Book, Movie)> {
        let (id, title, by) = LIBRARY.into_iter().find(|(i, _, _)| *i == id)?;
        let book = Book { id: ID(id.into()), title: title.into(), author: by.into() };
        let movie = Movie { id: ID(id.into()), title: title.into(), director: by.into() };
        Some((book, movie))
    }

    fn media(id: &str) -> Option<Media> {
        let (book, movie) = item(id)?;
        Some(if id.starts_with('b') { Media::Book(book) } else { Media::Movie(movie) })
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn library(&self) -> Vec<Media> {
            LIBRARY.iter().filter_map(|(id, _, _)| media(id)).collect()
        }

        async fn search(&self, term: String) -> Vec<SearchResult> {
            let term = term.to_lowercase();
            LIBRARY
                .iter()
                .filter(|(_, title, _)| title.to_lowercase().contains(&term))
                .filter_map(|(id, _, _)| match media(id)? {
                    Media::Book(b) => Some(SearchResult::Book(b)),
                    Media::Movie(m) => Some(SearchResult::Movie(m)),
                })
                .collect()
        }

        async fn featured(&self) -> Option<Media> {
            media("m2")
        }

        #[graphql(entity)]
        async fn book(&self, id: ID) -> Option<Book> {
            item(&id).filter(|_| id.starts_with('b')).map(|(b, _)| b)
        }

        #[graphql(entity)]
        async fn movie(&self, id: ID) -> Option<Movie> {
            item(&id).filter(|_| id.starts_with('m')).map(|(_, m)| m)
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

mod ratings {
    use super::*;

    #[derive(SimpleObject)]
    pub struct Book {
        id: ID,
        stars: i32,
    }

    #[derive(SimpleObject)]
    pub struct Movie {
        id: ID,
        stars: i32,
    }

    pub struct Query;

    #[Object]
    impl Query {
        #[graphql(entity)]
        async fn book(&self, id: ID) -> Book {
            Book { stars: stars(&id), id }
        }

        #[graphql(entity)]
        async fn movie(&self, id: ID) -> Movie {
            Movie { stars: stars(&id), id }
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

pub struct Library {
    pub media: TestSubgraph,
    pub ratings: TestSubgraph,
    pub gateway: Gateway,
}

impl Library {
    pub async fn start() -> Self {
        let media = media::spawn().await;
        let ratings = ratings::spawn().await;
        let gateway = Gateway::start(&[("media", &media), ("ratings", &ratings)]).await;
        Self { media, ratings, gateway }
    }

    pub async fn query(&self, query: &str) -> Value {
        self.gateway.query(query, json!({})).await
    }
}

#[tokio::test]
async fn interface_implementations_get_their_fields_from_another_subgraph() {
    let library = Library::start().await;

    let response = library
        .query("{ library { __typename id title ... on Book { author stars } ... on Movie { stars director } } }")
        .await;

    assert_data(
        &response,
        json!({ "library": [
            { "__typename": "Book", "id": "b1", "title": "Dune", "author": "Frank Herbert", "stars": 5 },
            { "__typename": "Movie", "id": "m1", "title": "Alien", "stars": 5, "director": "Ridley Scott" },
            { "__typename": "Book", "id": "b2", "title": "Emma", "author": "Jane Austen", "stars": 4 },
            { "__typename": "Movie", "id": "m2", "title": "Heat", "stars": 3, "director": "Michael Mann" }
        ]}),
    );
    assert_eq!(keys(&response["data"]["library"][0]), ["__typename", "id", "title", "author", "stars"]);
    assert_eq!(keys(&response["data"]["library"][1]), ["__typename", "id", "title", "stars", "director"]);
    let fetches = entity_requests(&library.ratings);
    assert_eq!(fetches.len(), 1, "books and movies in one request: {fetches:?}");
    assert_eq!(
        representations(&fetches[0]),
        json!([
            { "__typename": "Book", "id": "b1" },
            { "__typename": "Movie", "id": "m1" },
            { "__typename": "Book", "id": "b2" },
            { "__typename": "Movie", "id": "m2" }
        ])
    );
}

#[tokio::test]
async fn union_members_with_named_fragments_from_two_subgraphs() {
    let library = Library::start().await;

    let response = library
        .query(
            "query { search(term: \"A\") { __typename ...BookCard ...MovieCard } }
             fragment BookCard on Book { title by: author stars }
             fragment MovieCard on Movie { stars title }",
        )
        .await;

    assert_data(
        &response,
        json!({ "search": [
            { "__typename": "Movie", "stars": 5, "title": "Alien" },
            { "__typename": "Book", "title": "Emma", "by": "Jane Austen", "stars": 4 },
            { "__typename": "Movie", "stars": 3, "title": "Heat" }
        ]}),
    );
    assert_eq!(keys(&response["data"]["search"][0]), ["__typename", "stars", "title"]);
    assert_eq!(keys(&response["data"]["search"][1]), ["__typename", "title", "by", "stars"]);
}

#[tokio::test]
async fn typename_alone_on_abstract_types() {
    let library = Library::start().await;

    let response = library.query("{ featured { __typename } search(term: \"u\") { __typename } }").await;

    assert_data(&response, json!({ "featured": { "__typename": "Movie" }, "search": [{ "__typename": "Book" }] }));
    assert!(library.ratings.requests().is_empty());
    assert_eq!(library.media.requests().len(), 1);
}

#[tokio::test]

async fn an_aliased_typename_on_an_abstract_type_identifies_the_runtime_type() {
    let library = Library::start().await;

    let response =
        library.query("{ featured { kind: __typename title } search(term: \"u\") { kind: __typename } }").await;

    assert_data(&response, json!({ "featured": { "kind": "Movie", "title": "Heat" }, "search": [{ "kind": "Book" }] }));
}

#[tokio::test]
async fn fragments_on_the_interface_and_on_implementations_merge() {
    let library = Library::start().await;

    let response = library
        .query(
            "query { featured { ...Titled ... on Movie { stars } } library { ... on Media { id } ...Rated } }
             fragment Titled on Media { title ... on Movie { director } }
             fragment Rated on Media { ... on Book { stars } }",
        )
        .await;

    assert_data(
        &response,
        json!({
            "featured": { "title": "Heat", "director": "Michael Mann", "stars": 3 },
            "library": [{ "id": "b1", "stars": 5 }, { "id": "m1" }, { "id": "b2", "stars": 4 }, { "id": "m2" }]
        }),
    );
    assert_eq!(keys(&response["data"]["featured"]), ["title", "director", "stars"]);
    let fetches = entity_requests(&library.ratings);
    assert_eq!(fetches.len(), 1, "{fetches:?}");
    assert_eq!(
        all_representations(&fetches[0]),
        [
            json!({ "__typename": "Book", "id": "b1" }),
            json!({ "__typename": "Book", "id": "b2" }),
            json!({ "__typename": "Movie", "id": "m2" })
        ],
        "stars of the library's books and of the featured movie only"
    );
}

/// Entity interface: "catalogue" owns `interface Media @key(id)` and its
/// implementations; "popularity" adds `popularity` to every Media through
/// `type Media @interfaceObject @key(id)`, and has a root field of its own.
mod catalogue {
    use super::*;

    #[derive(SimpleObject, Clone)]
    pub struct Book {
        id: ID,
        title: String,
        author: String,
    }

    #[derive(SimpleObject, Clone)]
    pub struct Movie {
        id: ID,
        title: String,
        director: String,
    }

    #[derive(Interface, Clone)]
    #[graphql(field(name = "id", ty = "&ID"), field(name = "title", ty = "&String"))]
    pub enum Media {
        Book(Book),
        Movie(Movie),
    }

    fn media(id: &str) -> Option<Media> {
        let (id, title, by) = LIBRARY.into_iter().find(|(i, _, _)| *i == id)?;
        Some(if id.starts_with('b') {
            Media::Book(Book { id: ID(id.into()), title: title.into(), author: by.into() })
        } else {
            Media::Movie(Movie { id: ID(id.into()), title: title.into(), director: by.into() })
        })
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn library(&self) -> Vec<Media> {
            LIBRARY.iter().filter_map(|(id, _, _)| media(id)).collect()
        }

        #[graphql(entity)]
        async fn media(&self, id: ID) -> Option<Media> {
            media(&id)
        }

        #[graphql(entity)]
        async fn book(&self, id: ID) -> Option<Book> {
            match media(&id)? {
                Media::Book(b) => Some(b),
                Media::Movie(_) => None,
            }
        }

        #[graphql(entity)]
        async fn movie(&self, id: ID) -> Option<Movie> {
            match media(&id)? {
                Media::Movie(m) => Some(m),
                Media::Book(_) => None,
            }
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

mod popularity {
    use super::*;

    #[derive(SimpleObject)]
    #[graphql(interface_object, name = "Media")]
    pub struct Media {
        id: ID,
        popularity: i32,
    }

    fn media(id: ID) -> Media {
        Media { popularity: stars(&id) * 20, id }
    }

    pub struct Query;

    #[Object]
    impl Query {
        /// m2 then b2.
        async fn trending(&self) -> Vec<Media> {
            vec![media(ID("m2".into())), media(ID("b2".into()))]
        }

        #[graphql(entity)]
        async fn media(&self, id: ID) -> Media {
            media(id)
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

pub struct EntityInterface {
    pub catalogue: TestSubgraph,
    pub popularity: TestSubgraph,
    pub gateway: Gateway,
}

impl EntityInterface {
    pub async fn start() -> Self {
        let catalogue = catalogue::spawn().await;
        let popularity = popularity::spawn().await;
        assert!(catalogue.sdl.contains(r#"interface Media @key(fields: "id")"#), "{}", catalogue.sdl);
        assert!(popularity.sdl.contains("@interfaceObject"), "{}", popularity.sdl);
        let gateway = Gateway::start(&[("catalogue", &catalogue), ("popularity", &popularity)]).await;
        Self { catalogue, popularity, gateway }
    }
}

#[tokio::test]

async fn an_interface_object_adds_a_field_to_every_implementation() {
    let graph = EntityInterface::start().await;

    let response =
        graph.gateway.query("{ library { __typename title popularity ... on Book { author } } }", json!({})).await;

    // popularity = stars * 20
    assert_data(
        &response,
        json!({ "library": [
            { "__typename": "Book", "title": "Dune", "popularity": 100, "author": "Frank Herbert" },
            { "__typename": "Movie", "title": "Alien", "popularity": 100 },
            { "__typename": "Book", "title": "Emma", "popularity": 80, "author": "Jane Austen" },
            { "__typename": "Movie", "title": "Heat", "popularity": 60 }
        ]}),
    );
    let fetches = entity_requests(&graph.popularity);
    assert_eq!(fetches.len(), 1, "{fetches:?}");
    assert_eq!(
        representations(&fetches[0]),
        json!([
            { "__typename": "Media", "id": "b1" },
            { "__typename": "Media", "id": "m1" },
            { "__typename": "Media", "id": "b2" },
            { "__typename": "Media", "id": "m2" }
        ]),
        "the interface object is addressed by the interface's name"
    );
}

#[tokio::test]
async fn an_interface_object_root_field_gets_concrete_types_from_the_interface_owner() {
    let graph = EntityInterface::start().await;

    let response = graph
        .gateway
        .query(
            "{ trending { __typename id popularity title ... on Movie { director } ... on Book { author } } }",
            json!({}),
        )
        .await;

    assert_data(
        &response,
        json!({ "trending": [
            { "__typename": "Movie", "id": "m2", "popularity": 60, "title": "Heat", "director": "Michael Mann" },
            { "__typename": "Book", "id": "b2", "popularity": 80, "title": "Emma", "author": "Jane Austen" }
        ]}),
    );
    assert_eq!(keys(&response["data"]["trending"][0]), ["__typename", "id", "popularity", "title", "director"]);
    assert_eq!(entity_requests(&graph.catalogue).len(), 1, "{:?}", graph.catalogue.requests());
}

#[tokio::test]
async fn interface_fields_alone_from_an_interface_object_need_no_concrete_type() {
    let graph = EntityInterface::start().await;

    let response = graph.gateway.query("{ trending { id popularity } }", json!({})).await;

    assert_data(&response, json!({ "trending": [{ "id": "m2", "popularity": 60 }, { "id": "b2", "popularity": 80 }] }));
    assert!(
        graph.catalogue.requests().is_empty(),
        "nothing to ask the interface's owner: {:?}",
        graph.catalogue.requests()
    );
}

#[tokio::test]
async fn a_type_condition_under_an_interface_object_gets_the_concrete_type_from_the_owner() {
    let graph = EntityInterface::start().await;

    let response = graph
        .gateway
        .query(
            "{ trending { id ... on Book { author } ...Directed } } fragment Directed on Movie { director }",
            json!({}),
        )
        .await;

    assert_data(
        &response,
        json!({ "trending": [{ "id": "m2", "director": "Michael Mann" }, { "id": "b2", "author": "Jane Austen" }] }),
    );
    assert_eq!(keys(&response["data"]["trending"][0]), ["id", "director"], "no __typename the client did not ask for");
}

/// A foreign subgraph that sends `__typename` only when asked for it in an
/// operation that also has a type condition on `Device`, so an interface's
/// object may come without it: `interface Node { id }`, `Device implements Node
/// { id model }`, `node: Node` and `nodes: [Node!]!` (a Device, d1 "Pixel").
async fn typename_shy_subgraph() -> ScriptedSubgraph {
    let sdl = "type Query { node: Node nodes: [Node!]! }\ninterface Node { id: ID! }\n\
               type Device implements Node { id: ID! model: String }";
    ScriptedSubgraph::spawn(sdl, |request| {
        let query = request["query"].as_str().unwrap_or_default();
        let mut device = json!({ "id": "d1", "model": "Pixel" });
        if query.contains("__typename") && query.contains("on Device") {
            device["__typename"] = json!("Device");
        }
        json!({ "data": { "node": device.clone(), "nodes": [device] } })
    })
    .await
}

#[tokio::test]
async fn an_interface_object_without_typename_is_projected_against_the_interface() {
    let shy = typename_shy_subgraph().await;
    let gateway = Gateway::start_with(&[shy.part("devices")]).await;

    let response = gateway.query("{ node { id } nodes { ... on Node { id } } }", json!({})).await;

    assert_data(&response, json!({ "node": { "id": "d1" }, "nodes": [{ "id": "d1" }] }));
}

#[tokio::test]
async fn an_interface_field_with_type_conditions_asks_its_subgraph_for_the_typename() {
    let shy = typename_shy_subgraph().await;
    let gateway = Gateway::start_with(&[shy.part("devices")]).await;

    let response = gateway.query("{ node { id ... on Device { model } } }", json!({})).await;

    assert_data(&response, json!({ "node": { "id": "d1", "model": "Pixel" } }));
    let asked = shy.requests();
    assert!(asked.iter().all(|r| r["query"].as_str().is_some_and(|q| q.contains("__typename"))), "{asked:?}");
}

#[tokio::test]
async fn an_aliased_typename_under_an_interface_object_is_the_concrete_type() {
    let graph = EntityInterface::start().await;

    // Alone, an alias would be answered by the interface object itself: "Media".
    let response = graph.gateway.query("{ trending { kind: __typename id } }", json!({})).await;

    assert_data(&response, json!({ "trending": [{ "kind": "Movie", "id": "m2" }, { "kind": "Book", "id": "b2" }] }));
}
