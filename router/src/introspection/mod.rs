//! Introspection (`__schema`, `__type`) answered by the router from the API schema.
//!
//! The API schema document is indexed once into [`IntrospectionSchema`]; each root
//! introspection field of an operation is then executed against that index by a small
//! executor that implements the parts of GraphQL execution introspection needs: field
//! collection (aliases, fragments, `@skip`/`@include`), field merging and `__typename`.
//!
//! What is listed follows the GraphQL specification (October 2021, plus `isOneOf` and
//! argument/input-field deprecation from the current draft) and graphql-js' ordering:
//! the document's types in document order, each built-in scalar right after the first type
//! that references it, then the introspection types. Built-in scalars that nothing
//! references are not listed (spec: "must not be included"); `String` and `Boolean` always
//! are, since the introspection types use them. The built-in scalars, introspection types
//! and built-in directives always come from the canonical definitions below, whatever
//! copies of them the API schema document carries.
//!
//! One job a file: [`builtins`] holds the canonical SDL of the built-in scalars,
//! introspection types and directives; [`index`] builds the index in graphql-js'
//! order; [`literal`] prints default values as GraphQL; [`execute`] answers a
//! root field against the index; [`size`] counts an answer before it is built.

mod builtins;
mod execute;
mod index;
mod literal;
mod size;
#[cfg(test)]
mod tests;

pub use index::{IntrospectionSchema, Kind, named_type};
