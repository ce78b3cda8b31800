//! Leaf values are checked against the API schema: an enum value the API does
//! not have (`@inaccessible` in its subgraph, or one the subgraph should never
//! have sent) and a value of the wrong shape for its scalar become `null` with
//! an error at their path, and non-null fields then propagate that null.
//!
//! "members": `enum Tier { FREE PRO STAFF @inaccessible }`, `members: [Member]!`,
//! `Member { id tier: Tier requiredTier: Tier! }`: m1 FREE, m2 STAFF, m3 PRO.
//! "sensors" (foreign): `reading: Reading`, `Reading { level: Level count: Int ratio: Float
//! label: String on: Boolean id: ID serial: ID! big: Int raw: JSON }`, `enum Level { LOW HIGH }`,
//! answering values its schema does not allow.

use async_graphql::{EmptyMutation, EmptySubscription, Enum, ID, Object, Schema, SimpleObject};
use serde_json::{Value, json};

use super::fixtures::{Gateway, ScriptedSubgraph, assert_data, error_codes};
use crate::helpers::{TestSubgraph, spawn_subgraph};

mod members {
    use super::*;

    #[derive(Enum, Clone, Copy, PartialEq, Eq)]
    pub enum Tier {
        Free,
        Pro,
        #[graphql(inaccessible)]
        Staff,
    }

    #[derive(SimpleObject, Clone)]
    pub struct Member {
        id: ID,
        tier: Option<Tier>,
        required_tier: Tier,
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn members(&self) -> Vec<Option<Member>> {
            [("m1", Tier::Free), ("m2", Tier::Staff), ("m3", Tier::Pro)]
                .map(|(id, tier)| Some(Member { id: ID(id.into()), tier: Some(tier), required_tier: tier }))
                .into()
        }
    }

    pub async fn spawn() -> TestSubgraph {
        spawn_subgraph(Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()).await
    }
}

async fn members() -> (TestSubgraph, Gateway) {
    let members = members::spawn().await;
    assert!(members.sdl.contains("STAFF @inaccessible"), "{}", members.sdl);
    let gateway = Gateway::start(&[("members", &members)]).await;
    (members, gateway)
}

#[tokio::test]
async fn an_inaccessible_enum_value_becomes_null_with_an_error() {
    let (_members, gateway) = members().await;

    let response = gateway.query("{ members { id tier } }", json!({})).await;

    assert_eq!(
        response["data"],
        json!({ "members": [{ "id": "m1", "tier": "FREE" }, { "id": "m2", "tier": null }, { "id": "m3", "tier": "PRO" }] }),
        "{response}"
    );
    let errors = response["errors"].as_array().unwrap_or_else(|| panic!("{response}"));
    assert_eq!(errors.len(), 1, "{response}");
    assert_eq!(errors[0]["path"], json!(["members", 1, "tier"]));
    assert_eq!(errors[0]["message"], "Enum \"Tier\" cannot represent value: \"STAFF\"");
    assert_eq!(error_codes(&response), [json!("INTERNAL")]);
}

#[tokio::test]
async fn an_inaccessible_enum_value_of_a_non_null_field_nulls_its_parent() {
    let (_members, gateway) = members().await;

    let response = gateway.query("{ members { id requiredTier } }", json!({})).await;

    assert_eq!(
        response["data"],
        json!({ "members": [{ "id": "m1", "requiredTier": "FREE" }, null, { "id": "m3", "requiredTier": "PRO" }] }),
        "{response}"
    );
    let paths: Vec<&Value> = response["errors"].as_array().into_iter().flatten().map(|e| &e["path"]).collect();
    assert_eq!(paths, [&json!(["members", 1, "requiredTier"])], "one error explains the null: {response}");
}

/// Answers every request with values that do not fit the sensors' schema.
async fn sensors() -> ScriptedSubgraph {
    let sdl = "scalar JSON\nenum Level { LOW HIGH }\ntype Query { reading: Reading strict: Strict }\n\
               type Reading { level: Level count: Int ratio: Float label: String on: Boolean id: ID big: Int \
               raw: JSON whole: Int }\ntype Strict { serial: ID! }";
    ScriptedSubgraph::spawn(sdl, |_| {
        json!({ "data": {
            "reading": {
                "level": "MEDIUM",
                "count": 1.5,
                "ratio": "high",
                "label": { "text": "hot" },
                "on": "yes",
                "id": 7,
                "big": 3_000_000_000u64,
                "raw": { "any": ["thing"] },
                "whole": 2.0
            },
            "strict": { "serial": [1, 2] }
        }})
    })
    .await
}

#[tokio::test]
async fn values_of_the_wrong_shape_for_their_type_become_null_with_an_error() {
    let sensors = sensors().await;
    let gateway = Gateway::start_with(&[sensors.part("sensors")]).await;

    let response =
        gateway.query("{ reading { level count ratio label on id big raw whole } strict { serial } }", json!({})).await;

    assert_eq!(
        response["data"],
        json!({
            "reading": {
                "level": null, "count": null, "ratio": null, "label": null, "on": null,
                "id": "7", "big": null, "raw": { "any": ["thing"] }, "whole": 2
            },
            "strict": null
        }),
        "an integral ID is its string, a custom scalar anything, an integral float an Int: {response}"
    );
    let by_path: Vec<(String, String)> = response["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["path"].to_string(), e["message"].as_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(
        by_path,
        [
            (r#"["reading","level"]"#, r#"Enum "Level" cannot represent value: "MEDIUM""#),
            (r#"["reading","count"]"#, "Int cannot represent value: 1.5"),
            (r#"["reading","ratio"]"#, r#"Float cannot represent value: "high""#),
            (r#"["reading","label"]"#, "String cannot represent value: a list or an object"),
            (r#"["reading","on"]"#, r#"Boolean cannot represent value: "yes""#),
            (r#"["reading","big"]"#, "Int cannot represent value: 3000000000"),
            (r#"["strict","serial"]"#, "ID cannot represent value: a list or an object"),
        ]
        .map(|(path, message)| (path.to_owned(), message.to_owned())),
        "{response}"
    );
}

#[tokio::test]
async fn an_unknown_enum_value_from_a_multi_fetch_plan_is_checked_too() {
    let sensors = sensors().await;
    let members = members::spawn().await;
    let gateway =
        Gateway::start_with(&[sensors.part("sensors"), ("members", members.sdl.clone(), members.url.clone())]).await;

    let response = gateway.query("{ reading { level } members { tier } }", json!({})).await;

    assert_eq!(
        response["data"],
        json!({ "reading": { "level": null }, "members": [{ "tier": "FREE" }, { "tier": null }, { "tier": "PRO" }] }),
        "{response}"
    );
    assert_eq!(error_codes(&response).len(), 2, "{response}");
    assert_data(
        &gateway.query("{ members { id } }", json!({})).await,
        json!({ "members": [
            { "id": "m1" }, { "id": "m2" }, { "id": "m3" }
        ]}),
    );
}
