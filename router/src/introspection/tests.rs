use std::collections::HashMap;

use graphql_tools::parser::{parse_query, parse_schema};
use graphql_tools::static_graphql::{query, schema};
use serde_json::{Map, Value, json};

use super::IntrospectionSchema;
use super::builtins::BUILTIN_SDL;
use super::literal::print_literal;

const SDL: &str = r#"
schema { query: Query mutation: Mutation }

"The root query"
type Query {
  me: User
  user("The user id" id: ID!, archived: Boolean = false): User
  search(term: String!, first: Int = 10, tags: [String!] = ["a", "b"], filter: Filter = {kind: ACTIVE, limit: 5}): [SearchResult!]!
  node(id: ID!): Node
  pick(by: Pick!, legacy: String @deprecated(reason: "Use by")): User
  legacy: String @deprecated
  oldMe: User @deprecated(reason: "Use `me`.")
  __schema: __Schema!
  __type(name: String!): __Type
}

type Mutation {
  rename(name: String! = "abc", weight: Float = 1.5): User
}

"Something with an id"
interface Node {
  id: ID!
}

type User implements Node {
  id: ID!
  name: String!
  friends: [User!]!
  status: Status
  joined: Date
}

type Post implements Node @cached(ttl: 5) {
  id: ID!
  title: String
  author: User
}

union SearchResult = User | Post

enum Status {
  ACTIVE
  "Not active"
  INACTIVE @deprecated(reason: "Use ARCHIVED")
  ARCHIVED
  BANNED @deprecated
}

input Filter {
  kind: Status = ACTIVE
  limit: Int = 20
  query: String = "x\"y"
  old: String @deprecated(reason: "no")
}

input Pick @oneOf {
  id: ID
  name: String
}

"An RFC 3339 date"
scalar Date @specifiedBy(url: "https://tools.ietf.org/html/rfc3339")

"Caches a field"
directive @cached(ttl: Int = 60) repeatable on FIELD_DEFINITION | OBJECT

# Copies of built-ins, as a consumer schema may carry them: ignored.
type __Schema { description: String }
scalar Int
directive @skip(if: Boolean!) on FIELD
"#;

/// What graphql-js' `getIntrospectionQuery({ descriptions: true, specifiedByUrl: true,
/// directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true })` produces.
const FULL_INTROSPECTION_QUERY: &str = r#"
    query IntrospectionQuery {
      __schema {
        description
        queryType { name }
        mutationType { name }
        subscriptionType { name }
        types {
          ...FullType
        }
        directives {
          name
          description
          isRepeatable
          locations
          args(includeDeprecated: true) {
            ...InputValue
          }
        }
      }
    }

    fragment FullType on __Type {
      kind
      name
      description
      specifiedByURL
      fields(includeDeprecated: true) {
        name
        description
        args(includeDeprecated: true) {
          ...InputValue
        }
        type {
          ...TypeRef
        }
        isDeprecated
        deprecationReason
      }
      inputFields(includeDeprecated: true) {
        ...InputValue
      }
      interfaces {
        ...TypeRef
      }
      enumValues(includeDeprecated: true) {
        name
        description
        isDeprecated
        deprecationReason
      }
      possibleTypes {
        ...TypeRef
      }
    }

    fragment InputValue on __InputValue {
      name
      description
      type { ...TypeRef }
      defaultValue
      isDeprecated
      deprecationReason
    }

    fragment TypeRef on __Type {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
                ofType {
                  kind
                  name
                  ofType {
                    kind
                    name
                    ofType {
                      kind
                      name
                      ofType {
                        kind
                        name
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    "#;

fn build(sdl: &str) -> IntrospectionSchema {
    let document = parse_schema::<String>(sdl).expect("schema parses").into_static();
    IntrospectionSchema::new(&document)
}

fn test_schema() -> IntrospectionSchema {
    build(SDL)
}

/// Runs every root introspection field of the document's operation, keyed by response key.
fn run_with(schema: &IntrospectionSchema, operation: &str, variables: Value) -> Result<Value, String> {
    let document = parse_query::<String>(operation).expect("query parses").into_static();
    let mut fragments = HashMap::new();
    let mut roots = Vec::new();
    for definition in document.definitions {
        match definition {
            query::Definition::Fragment(f) => {
                fragments.insert(f.name.clone(), f);
            }
            query::Definition::Operation(query::OperationDefinition::Query(q)) => roots = q.selection_set.items,
            query::Definition::Operation(query::OperationDefinition::SelectionSet(s)) => roots = s.items,
            query::Definition::Operation(_) => panic!("only queries are introspected"),
        }
    }
    let variables = variables.as_object().cloned().unwrap_or_default();
    let mut data = Map::new();
    for selection in roots {
        let query::Selection::Field(field) = selection else { panic!("root fields only") };
        let key = field.alias.clone().unwrap_or_else(|| field.name.clone());
        data.insert(key, schema.resolve_root_field(&field, &fragments, &variables)?);
    }
    Ok(Value::Object(data))
}

fn run(schema: &IntrospectionSchema, operation: &str) -> Value {
    run_with(schema, operation, json!({})).expect("introspection succeeds")
}

fn names(value: &Value) -> Vec<&str> {
    value.as_array().expect("a list").iter().map(|item| item["name"].as_str().expect("a name")).collect()
}

#[test]
fn builtin_sdl_parses() {
    let document = parse_schema::<String>(BUILTIN_SDL).expect("built-in SDL parses");
    assert_eq!(document.definitions.len(), 5 + 8 + 5);
}

#[test]
fn root_operation_types() {
    let result = run(
        &test_schema(),
        "{ __schema { queryType { name } mutationType { name } subscriptionType { name } description } }",
    );
    let expected = json!({"__schema": {
        "queryType": {"name": "Query"},
        "mutationType": {"name": "Mutation"},
        "subscriptionType": null,
        "description": null,
    }});
    assert_eq!(result, expected);
}

#[test]
fn root_types_default_to_conventional_names() {
    let schema = build("type Query { a: Int } type Subscription { b: Int } type Mutation2 { c: Int }");
    let result = run(&schema, "{ __schema { queryType { name } mutationType { name } subscriptionType { name } } }");
    let expected = json!({"__schema": {
        "queryType": {"name": "Query"},
        "mutationType": null,
        "subscriptionType": {"name": "Subscription"},
    }});
    assert_eq!(result, expected);
}

#[test]
fn schema_definition_overrides_conventional_names() {
    let schema = build("schema { query: Root } type Root { a: Int } type Mutation { b: Int }");
    let result = run(&schema, "{ __schema { queryType { name } mutationType { name } } }");
    assert_eq!(result, json!({"__schema": {"queryType": {"name": "Root"}, "mutationType": null}}));
}

#[test]
fn object_type_fields_with_wrappers() {
    let result = run(
        &test_schema(),
        r#"{ __type(name: "User") { kind name fields { name type { kind name ofType { kind name } } } } }"#,
    );
    let expected = json!({"__type": {
        "kind": "OBJECT",
        "name": "User",
        "fields": [
            {"name": "id", "type": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "SCALAR", "name": "ID"}}},
            {"name": "name", "type": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "SCALAR", "name": "String"}}},
            {"name": "friends", "type": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "LIST", "name": null}}},
            {"name": "status", "type": {"kind": "ENUM", "name": "Status", "ofType": null}},
            {"name": "joined", "type": {"kind": "SCALAR", "name": "Date", "ofType": null}},
        ],
    }});
    assert_eq!(result, expected);
}

#[test]
fn nested_wrappers_unwrap_to_the_named_type() {
    let result = run(
        &test_schema(),
        r#"{ __type(name: "User") { fields { type { kind ofType { kind ofType { kind ofType { kind name ofType { kind } } } } } } } }"#,
    );
    let friends = &result["__type"]["fields"][2]["type"];
    let expected = json!({"kind": "NON_NULL", "ofType": {"kind": "LIST", "ofType": {"kind": "NON_NULL",
            "ofType": {"kind": "OBJECT", "name": "User", "ofType": null}}}});
    assert_eq!(friends, &expected);
}

#[test]
fn deprecated_fields_hidden_unless_asked_for() {
    let result = run(
        &test_schema(),
        r#"{
              hidden: __type(name: "Query") { fields { name } }
              shown: __type(name: "Query") { fields(includeDeprecated: true) { name isDeprecated deprecationReason } }
            }"#,
    );
    assert_eq!(names(&result["hidden"]["fields"]), ["me", "user", "search", "node", "pick"]);
    let shown = &result["shown"]["fields"];
    assert_eq!(names(shown), ["me", "user", "search", "node", "pick", "legacy", "oldMe"]);
    assert_eq!(shown[0], json!({"name": "me", "isDeprecated": false, "deprecationReason": null}));
    assert_eq!(shown[5], json!({"name": "legacy", "isDeprecated": true, "deprecationReason": "No longer supported"}));
    assert_eq!(shown[6], json!({"name": "oldMe", "isDeprecated": true, "deprecationReason": "Use `me`."}));
}

#[test]
fn deprecated_enum_values_arguments_and_input_fields() {
    let result = run(
        &test_schema(),
        r#"{
              status: __type(name: "Status") {
                active: enumValues { name }
                all: enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
              }
              filter: __type(name: "Filter") { a: inputFields { name } b: inputFields(includeDeprecated: true) { name } }
              query: __type(name: "Query") { fields { name a: args { name } b: args(includeDeprecated: true) { name } } }
            }"#,
    );
    assert_eq!(names(&result["status"]["active"]), ["ACTIVE", "ARCHIVED"]);
    let expected = json!([
        {"name": "ACTIVE", "description": null, "isDeprecated": false, "deprecationReason": null},
        {"name": "INACTIVE", "description": "Not active", "isDeprecated": true, "deprecationReason": "Use ARCHIVED"},
        {"name": "ARCHIVED", "description": null, "isDeprecated": false, "deprecationReason": null},
        {"name": "BANNED", "description": null, "isDeprecated": true, "deprecationReason": "No longer supported"},
    ]);
    assert_eq!(result["status"]["all"], expected);
    assert_eq!(names(&result["filter"]["a"]), ["kind", "limit", "query"]);
    assert_eq!(names(&result["filter"]["b"]), ["kind", "limit", "query", "old"]);
    let pick = &result["query"]["fields"][4];
    assert_eq!(names(&pick["a"]), ["by"]);
    assert_eq!(names(&pick["b"]), ["by", "legacy"]);
}

#[test]
fn include_deprecated_from_a_variable() {
    let operation =
        r#"query ($all: Boolean) { __type(name: "Status") { enumValues(includeDeprecated: $all) { name } } }"#;
    let schema = test_schema();
    let all = run_with(&schema, operation, json!({"all": true})).expect("runs");
    assert_eq!(names(&all["__type"]["enumValues"]), ["ACTIVE", "INACTIVE", "ARCHIVED", "BANNED"]);
    let unset = run_with(&schema, operation, json!({})).expect("runs");
    assert_eq!(names(&unset["__type"]["enumValues"]), ["ACTIVE", "ARCHIVED"]);
}

#[test]
fn possible_types_of_interface_and_union() {
    let result = run(
        &test_schema(),
        r#"{
              node: __type(name: "Node") { kind description possibleTypes { name } interfaces { name } }
              search: __type(name: "SearchResult") { kind possibleTypes { kind name } fields { name } }
              user: __type(name: "User") { interfaces { name } possibleTypes { name } }
            }"#,
    );
    let expected = json!({
        "node": {"kind": "INTERFACE", "description": "Something with an id",
                 "possibleTypes": [{"name": "User"}, {"name": "Post"}], "interfaces": []},
        "search": {"kind": "UNION", "possibleTypes": [{"kind": "OBJECT", "name": "User"}, {"kind": "OBJECT", "name": "Post"}],
                   "fields": null},
        "user": {"interfaces": [{"name": "Node"}], "possibleTypes": null},
    });
    assert_eq!(result, expected);
}

#[test]
fn interfaces_implementing_interfaces() {
    let schema = build(
        "type Query { n: Node } interface Node { id: ID! } interface Named implements Node { id: ID! name: String }
             type Person implements Named & Node { id: ID! name: String }",
    );
    let result = run(
        &schema,
        r#"{ named: __type(name: "Named") { interfaces { name } possibleTypes { name } }
                 node: __type(name: "Node") { possibleTypes { name } } }"#,
    );
    let expected = json!({
        "named": {"interfaces": [{"name": "Node"}], "possibleTypes": [{"name": "Person"}]},
        "node": {"possibleTypes": [{"name": "Person"}]},
    });
    assert_eq!(result, expected);
}

#[test]
fn default_values_printed_as_graphql() {
    let result = run(
        &test_schema(),
        r#"{
              query: __type(name: "Query") { fields { name args { name defaultValue } } }
              mutation: __type(name: "Mutation") { fields { args { name defaultValue } } }
              filter: __type(name: "Filter") { inputFields(includeDeprecated: true) { name defaultValue } }
            }"#,
    );
    let search = &result["query"]["fields"][2];
    assert_eq!(search["name"], "search");
    let expected = json!([
        {"name": "term", "defaultValue": null},
        {"name": "first", "defaultValue": "10"},
        {"name": "tags", "defaultValue": "[\"a\", \"b\"]"},
        {"name": "filter", "defaultValue": "{kind: ACTIVE, limit: 5}"},
    ]);
    assert_eq!(search["args"], expected);
    assert_eq!(result["query"]["fields"][1]["args"][1], json!({"name": "archived", "defaultValue": "false"}));
    let rename = json!([{"name": "name", "defaultValue": "\"abc\""}, {"name": "weight", "defaultValue": "1.5"}]);
    assert_eq!(result["mutation"]["fields"][0]["args"], rename);
    let filter = json!([
        {"name": "kind", "defaultValue": "ACTIVE"},
        {"name": "limit", "defaultValue": "20"},
        {"name": "query", "defaultValue": "\"x\\\"y\""},
        {"name": "old", "defaultValue": null},
    ]);
    assert_eq!(result["filter"]["inputFields"], filter);
}

#[test]
fn literal_printing_escapes_like_graphql_js() {
    let value = schema::Value::Object(vec![
        ("s".to_owned(), schema::Value::String("a\\b\n\u{1}é".to_owned())),
        ("l".to_owned(), schema::Value::List(vec![schema::Value::Null, schema::Value::Float(2.0)])),
        ("e".to_owned(), schema::Value::List(vec![])),
    ]);
    assert_eq!(print_literal(&value), r#"{s: "a\\b\n\u0001é", l: [null, 2], e: []}"#);
}

#[test]
fn aliases_fragments_and_skip_include() {
    let operation = r#"
            query ($skipKind: Boolean!, $withName: Boolean!) {
              t: __type(name: "Post") {
                ...Basics
                kind @skip(if: $skipKind)
                n2: name @include(if: $withName)
                desc: description @skip(if: false)
                ... on __Type { isOneOf }
                ... on __Field { type { name } }
                ... @include(if: false) { specifiedByURL }
                fields { ...FieldBits }
              }
            }
            fragment Basics on __Type { typeName: name }
            fragment FieldBits on __Field { fieldName: name __typename }
        "#;
    let schema = test_schema();
    let result = run_with(&schema, operation, json!({"skipKind": true, "withName": true})).expect("runs");
    let expected = json!({"t": {
        "typeName": "Post",
        "n2": "Post",
        "desc": null,
        "isOneOf": null,
        "fields": [
            {"fieldName": "id", "__typename": "__Field"},
            {"fieldName": "title", "__typename": "__Field"},
            {"fieldName": "author", "__typename": "__Field"},
        ],
    }});
    assert_eq!(result, expected);
    let result = run_with(&schema, operation, json!({"skipKind": false, "withName": false})).expect("runs");
    let keys: Vec<&String> = result["t"].as_object().expect("object").keys().collect();
    assert_eq!(keys, ["typeName", "kind", "desc", "isOneOf", "fields"]);
}

#[test]
fn typename_inside_introspection() {
    let result = run(
        &test_schema(),
        r#"{
              __schema { __typename directives { __typename args { __typename } } }
              __type(name: "Status") { __typename enumValues { __typename } fields { __typename } }
            }"#,
    );
    let schema = &result["__schema"];
    assert_eq!(schema["__typename"], "__Schema");
    assert_eq!(schema["directives"][0]["__typename"], "__Directive");
    assert_eq!(schema["directives"][0]["args"][0]["__typename"], "__InputValue");
    assert_eq!(result["__type"]["__typename"], "__Type");
    assert_eq!(result["__type"]["enumValues"][0]["__typename"], "__EnumValue");
    assert_eq!(result["__type"]["fields"], Value::Null);
}

#[test]
fn unknown_type_is_null() {
    let result = run(&test_schema(), r#"{ __type(name: "Nope") { name } }"#);
    assert_eq!(result, json!({"__type": null}));
}

#[test]
fn type_name_from_a_variable() {
    let operation = r#"query ($n: String!) { __type(name: $n) { name kind } }"#;
    let result = run_with(&test_schema(), operation, json!({"n": "Pick"})).expect("runs");
    assert_eq!(result, json!({"__type": {"name": "Pick", "kind": "INPUT_OBJECT"}}));
}

#[test]
fn errors() {
    let schema = test_schema();
    let error = |operation: &str| run_with(&schema, operation, json!({})).expect_err("fails");
    assert_eq!(error("{ __schema { bogus } }"), "Cannot query field \"bogus\" on type \"__Schema\".");
    assert_eq!(
        error(r#"{ __type(name: "User") { fields { nope } } }"#),
        "Cannot query field \"nope\" on type \"__Field\"."
    );
    assert!(error("{ __type { name } }").contains("\"name\""));
    assert!(error("{ __type(name: 3) { name } }").contains("String"));
    assert!(error("{ __schema { queryType } }").contains("selection of subfields"));
    assert!(error("{ __schema { queryType { name { x } } } }").contains("leaf"));
    assert!(error("{ __schema { ...Missing } }").contains("Missing"));
    assert!(error("query ($x: Boolean!) { __schema { queryType @skip(if: $x) { name } } }").contains("if"));
    let cycle = "{ __schema { types { ...A } } } fragment A on __Type { fields { type { ...B } } }
                     fragment B on __Type { ofType { ...A } }";
    assert!(error(cycle).contains("within itself"));
    let not_root = parse_query::<String>("{ me { id } }").expect("parses").into_static();
    let query::Definition::Operation(query::OperationDefinition::SelectionSet(set)) = &not_root.definitions[0] else {
        panic!("a selection set")
    };
    let query::Selection::Field(field) = &set.items[0] else { panic!("a field") };
    assert!(schema.resolve_root_field(field, &HashMap::new(), &Map::new()).is_err());
}

#[test]
fn repeated_fields_merge_their_selections() {
    let result = run(
        &test_schema(),
        r#"{ __type(name: "Node") { fields { name } ... on __Type { fields { description } } name } }"#,
    );
    assert_eq!(result, json!({"__type": {"fields": [{"name": "id", "description": null}], "name": "Node"}}));
}

#[test]
fn scalars_specified_by_and_one_of() {
    let result = run(
        &test_schema(),
        r#"{
              date: __type(name: "Date") { kind description specifiedByURL isOneOf }
              string: __type(name: "String") { kind specifiedByURL description }
              pick: __type(name: "Pick") { isOneOf specifiedByURL }
              filter: __type(name: "Filter") { isOneOf }
            }"#,
    );
    let expected = json!({
        "date": {"kind": "SCALAR", "description": "An RFC 3339 date",
                 "specifiedByURL": "https://tools.ietf.org/html/rfc3339", "isOneOf": null},
        "string": {"kind": "SCALAR", "specifiedByURL": null, "description": "The `String` scalar type represents textual data, represented as UTF-8 character sequences. The String type is most often used by GraphQL to represent free-form human-readable text."},
        "pick": {"isOneOf": true, "specifiedByURL": null},
        "filter": {"isOneOf": false},
    });
    assert_eq!(result, expected);
}

#[test]
fn types_in_graphql_js_order() {
    let result = run(&test_schema(), "{ __schema { types { name } } }");
    let expected = [
        "Query",
        "ID",
        "Boolean",
        "String",
        "Int",
        "Mutation",
        "Float",
        "Node",
        "User",
        "Post",
        "SearchResult",
        "Status",
        "Filter",
        "Pick",
        "Date",
        "__Schema",
        "__Type",
        "__TypeKind",
        "__Field",
        "__InputValue",
        "__EnumValue",
        "__Directive",
        "__DirectiveLocation",
    ];
    assert_eq!(names(&result["__schema"]["types"]), expected);
}

#[test]
fn unreferenced_builtin_scalars_are_not_listed() {
    let schema = build("type Query { a: Int } scalar Float scalar ID");
    let result = run(&schema, r#"{ __schema { types { name } } float: __type(name: "Float") { name } }"#);
    let listed = names(&result["__schema"]["types"]);
    assert_eq!(&listed[..3], ["Query", "Int", "Boolean"]);
    assert!(listed.contains(&"String"));
    assert!(!listed.contains(&"Float") && !listed.contains(&"ID"));
    assert_eq!(result["float"], Value::Null);
}

#[test]
fn directives_listed_once_with_built_ins() {
    let result = run(
        &test_schema(),
        "{ __schema { directives { name isRepeatable locations args { name defaultValue type { name } } } } }",
    );
    let directives = &result["__schema"]["directives"];
    assert_eq!(names(directives), ["cached", "include", "skip", "deprecated", "specifiedBy", "oneOf"]);
    let cached = json!({"name": "cached", "isRepeatable": true, "locations": ["FIELD_DEFINITION", "OBJECT"],
                            "args": [{"name": "ttl", "defaultValue": "60", "type": {"name": "Int"}}]});
    assert_eq!(directives[0], cached);
    let skip = json!({"name": "skip", "isRepeatable": false, "locations": ["FIELD", "FRAGMENT_SPREAD", "INLINE_FRAGMENT"],
                          "args": [{"name": "if", "defaultValue": null, "type": {"name": null}}]});
    assert_eq!(directives[2], skip);
    assert_eq!(directives[3]["args"][0]["defaultValue"], "\"No longer supported\"");
    let unused_one_of = build("type Query { a: Int } directive @oneOf on OBJECT | INTERFACE | UNION");
    let plain = run(&unused_one_of, "{ __schema { directives { name } } }");
    assert_eq!(names(&plain["__schema"]["directives"]), ["include", "skip", "deprecated", "specifiedBy"]);
}

#[test]
fn introspection_types_are_canonical() {
    let result = run(
        &test_schema(),
        r#"{
              schema: __type(name: "__Schema") { fields { name } }
              type: __type(name: "__Type") { fields { name args { name defaultValue } } }
              kinds: __type(name: "__TypeKind") { enumValues { name } }
            }"#,
    );
    let schema_fields = ["description", "types", "queryType", "mutationType", "subscriptionType", "directives"];
    assert_eq!(names(&result["schema"]["fields"]), schema_fields);
    let type_fields = &result["type"]["fields"];
    assert_eq!(names(type_fields).len(), 11);
    assert_eq!(type_fields[4]["args"], json!([{"name": "includeDeprecated", "defaultValue": "false"}]));
    let kinds = ["SCALAR", "OBJECT", "INTERFACE", "UNION", "ENUM", "INPUT_OBJECT", "LIST", "NON_NULL"];
    assert_eq!(names(&result["kinds"]["enumValues"]), kinds);
}

#[test]
fn type_extensions_are_merged() {
    let schema = build(
        "type Query { a: Int } extend type Query { b: String } enum E { X } extend enum E { Y }
             union U = Query extend union U = Other type Other { c: Int }",
    );
    let result = run(
        &schema,
        r#"{ q: __type(name: "Query") { fields { name } } e: __type(name: "E") { enumValues { name } }
                 u: __type(name: "U") { possibleTypes { name } } }"#,
    );
    assert_eq!(names(&result["q"]["fields"]), ["a", "b"]);
    assert_eq!(names(&result["e"]["enumValues"]), ["X", "Y"]);
    assert_eq!(names(&result["u"]["possibleTypes"]), ["Query", "Other"]);
}

#[test]
fn full_introspection_query() {
    let result = run(&test_schema(), FULL_INTROSPECTION_QUERY);
    let schema = &result["__schema"];
    assert_eq!(schema["description"], Value::Null);
    assert_eq!(schema["queryType"], json!({"name": "Query"}));
    assert_eq!(schema["mutationType"], json!({"name": "Mutation"}));
    assert_eq!(schema["subscriptionType"], Value::Null);
    let types = &schema["types"];
    let listed = names(types);
    let defined = ["Query", "Mutation", "Node", "User", "Post", "SearchResult", "Status", "Filter", "Pick", "Date"];
    let builtins = ["ID", "Boolean", "String", "Int", "Float", "__Schema", "__Type", "__TypeKind", "__Field"];
    let more = ["__InputValue", "__EnumValue", "__Directive", "__DirectiveLocation"];
    for name in defined.iter().chain(&builtins).chain(&more) {
        assert!(listed.contains(name), "{name} is listed");
    }
    assert_eq!(listed.len(), defined.len() + builtins.len() + more.len());

    let by_name = |name: &str| types.as_array().and_then(|t| t.iter().find(|t| t["name"] == name)).expect("listed");
    let user = by_name("User");
    let expected_user_keys = [
        "kind",
        "name",
        "description",
        "specifiedByURL",
        "fields",
        "inputFields",
        "interfaces",
        "enumValues",
        "possibleTypes",
    ];
    let keys: Vec<&String> = user.as_object().expect("object").keys().collect();
    assert_eq!(keys, expected_user_keys);
    assert_eq!(user["inputFields"], Value::Null);
    assert_eq!(user["interfaces"], json!([{"kind": "INTERFACE", "name": "Node", "ofType": null}]));
    let query = by_name("Query");
    assert_eq!(query["description"], "The root query");
    assert_eq!(names(&query["fields"]), ["me", "user", "search", "node", "pick", "legacy", "oldMe"]);
    let user_arg = &query["fields"][1]["args"][0];
    let expected_arg = json!({"name": "id", "description": "The user id",
            "type": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "SCALAR", "name": "ID", "ofType": null}},
            "defaultValue": null, "isDeprecated": false, "deprecationReason": null});
    assert_eq!(user_arg, &expected_arg);
    let pick_legacy = &query["fields"][4]["args"][1];
    assert_eq!(pick_legacy["isDeprecated"], true);
    assert_eq!(pick_legacy["deprecationReason"], "Use by");
    assert_eq!(names(&by_name("Filter")["inputFields"]), ["kind", "limit", "query", "old"]);
    assert_eq!(names(&by_name("__DirectiveLocation")["enumValues"]).len(), 19);
    assert_eq!(names(&schema["directives"]), ["cached", "include", "skip", "deprecated", "specifiedBy", "oneOf"]);
}

#[test]
fn graphiql_style_query_with_nested_type_refs_and_variables() {
    let operation = r#"
            query Q($deprecated: Boolean = true) {
              __schema {
                types {
                  ... on __Type @include(if: true) {
                    name
                    fields(includeDeprecated: $deprecated) { name }
                  }
                }
              }
            }
        "#;
    let result = run_with(&test_schema(), operation, json!({"deprecated": true})).expect("runs");
    let query = &result["__schema"]["types"][0];
    assert_eq!(query["name"], "Query");
    assert_eq!(names(&query["fields"]).len(), 7);
}
