//! Federation features, each against in-process subgraphs: async-graphql ones, and
//! scripted "foreign" ones ([`fixtures::ScriptedSubgraph`]) that answer as other servers may.

mod abstract_types;
mod client_features;
mod entities;
mod enums_inputs;
mod errors;
mod fixtures;
mod inaccessible_override;
mod leaf_values;
mod mutations;
mod null_entities;
mod output_rewrites;
mod requires;
mod shareable_provides;
