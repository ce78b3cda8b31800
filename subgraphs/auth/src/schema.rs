//! The auth subgraph's GraphQL schema (Apollo Federation v2).

use async_graphql::{Context, EmptySubscription, ID, Object, Result, SDLExportOptions, Schema, SimpleObject};
use chrono::{DateTime, Utc};
use kit::config::QueryLimits;
use kit::identity::require_viewer;
use kit::{ApiError, Viewer};
use uuid::Uuid;

use crate::accounts::{self, Accounts, Session};

pub type AuthSchema = Schema<Query, Mutation, EmptySubscription>;

/// A person with an account.
pub struct User(accounts::User);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn email(&self) -> &str {
        &self.0.email
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A signed-in session.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// EdDSA-signed JWT to send as `Authorization: Bearer <token>`.
    access_token: String,
    /// Opaque token for `refreshToken`; single use, rotated on every use.
    refresh_token: String,
    /// Seconds until the access token expires.
    expires_in: i64,
    user: User,
}

impl From<Session> for AuthPayload {
    fn from(s: Session) -> Self {
        Self {
            access_token: s.access_token,
            refresh_token: s.refresh_token,
            expires_in: s.expires_in,
            user: User(s.user),
        }
    }
}

fn accounts<'a>(ctx: &Context<'a>) -> &'a Accounts {
    ctx.data_unchecked::<Accounts>()
}

pub struct Query;

#[Object]
impl Query {
    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let viewer = require_viewer(ctx)?;
        // A deleted account's tokens are refused once its revocation is read; until then they buy nothing here.
        let user = accounts(ctx).user(viewer.user_id).await?.ok_or_else(ApiError::unauthenticated)?;
        Ok(Some(User(user)))
    }

    /// Federation entity resolver. Only the viewer's own user resolves: another
    /// user's id resolves to null, as if it did not exist.
    #[graphql(entity)]
    async fn find_user_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let (Some(viewer), Ok(id)) = (ctx.data_opt::<Viewer>(), Uuid::parse_str(&id)) else {
            return Ok(None);
        };
        if viewer.user_id != id {
            return Ok(None);
        }
        Ok(accounts(ctx).user(id).await?.map(User))
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Creates an account and signs it in.
    async fn register(&self, ctx: &Context<'_>, email: String, password: String) -> Result<AuthPayload> {
        Ok(accounts(ctx).register(&email, password).await?.into())
    }

    async fn login(&self, ctx: &Context<'_>, email: String, password: String) -> Result<AuthPayload> {
        Ok(accounts(ctx).login(&email, password).await?.into())
    }

    /// Exchanges a refresh token for a new session; the old token stops working.
    async fn refresh_token(&self, ctx: &Context<'_>, token: String) -> Result<AuthPayload> {
        Ok(accounts(ctx).refresh(&token).await?.into())
    }

    /// Ends the session the refresh token belongs to. `false` if the token is unknown.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: String) -> Result<bool> {
        Ok(accounts(ctx).logout(&refresh_token).await?)
    }

    /// Ends every session of the signed-in user.
    async fn logout_all(&self, ctx: &Context<'_>) -> Result<bool> {
        let viewer = require_viewer(ctx)?;
        Ok(accounts(ctx).logout_all(viewer.user_id).await?)
    }

    /// Changes the password and ends every session.
    async fn change_password(&self, ctx: &Context<'_>, current_password: String, new_password: String) -> Result<bool> {
        let viewer = require_viewer(ctx)?;
        Ok(accounts(ctx).change_password(viewer.user_id, current_password, new_password).await?)
    }

    /// Deletes the account; its tasks and files follow through `user.deleted`.
    async fn delete_account(&self, ctx: &Context<'_>, password: String) -> Result<bool> {
        let viewer = require_viewer(ctx)?;
        Ok(accounts(ctx).delete_account(viewer.user_id, password).await?)
    }
}

/// The schema, with `accounts` as its data when serving, every request held to `limits`.
pub fn build(accounts: Option<Accounts>, limits: QueryLimits) -> AuthSchema {
    let mut builder = kit::graphql::limited(
        crate::SERVICE,
        Schema::build(Query, Mutation, EmptySubscription).enable_federation(),
        limits,
    );
    if let Some(accounts) = accounts {
        builder = builder.data(accounts);
    }
    builder.finish()
}

/// The federation SDL, as `auth print-schema` prints and `schema/auth.graphql` holds.
pub fn sdl() -> String {
    build(None, QueryLimits::default()).sdl_with_options(SDLExportOptions::new().federation())
}
