//! Federation features, each against in-process async-graphql subgraphs.

mod abstract_types;
mod client_features;
mod entities;
mod enums_inputs;
mod errors;
mod fixtures;
mod inaccessible_override;
mod mutations;
mod null_entities;
mod requires;
mod shareable_provides;
