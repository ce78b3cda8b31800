//! Who is asking: `platform::identity`'s token verifier, and the viewer of a
//! GraphQL request as resolvers ask for it.

pub use platform::identity::*;

/// The viewer of a GraphQL request, or UNAUTHENTICATED.
pub fn require_viewer<'a>(ctx: &async_graphql::Context<'a>) -> Result<&'a Viewer, crate::ApiError> {
    ctx.data_opt::<Viewer>().ok_or_else(crate::ApiError::unauthenticated)
}
