//! What the auth API does, independent of GraphQL: every operation checks its
//! input, keeps writes that belong together in one transaction, and answers
//! with an [`ApiError`] a client may see.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kit::ApiError;
use kit::error::ApiResult;
use kit::events::{Outbox, USER_DELETED, UserDeleted};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::passwords::{FailureLimit, Passwords, Ticket};
use crate::tokens::{self, AccessTokens, REFRESH_TOKEN_LEN};
use crate::validation;

pub const OUTBOX: Outbox = Outbox::new(crate::SCHEMA);

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// A signed-in session: what register, login and refreshToken return.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub user: User,
}

#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    passwords: Passwords,
    tokens: AccessTokens,
    refresh_ttl: Duration,
    failures: FailureLimit,
}

fn invalid_credentials() -> ApiError {
    ApiError::Unauthenticated("Invalid email or password".into())
}

fn invalid_refresh_token() -> ApiError {
    ApiError::Unauthenticated("Invalid or expired refresh token".into())
}

#[derive(sqlx::FromRow)]
struct Credentials {
    id: Uuid,
    email: String,
    created_at: DateTime<Utc>,
    password_hash: String,
}

impl Credentials {
    fn user(&self) -> User {
        User { id: self.id, email: self.email.clone(), created_at: self.created_at }
    }
}

#[derive(sqlx::FromRow)]
struct StoredRefreshToken {
    user_id: Uuid,
    family_id: Uuid,
    expires_at: DateTime<Utc>,
    replaced_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl Accounts {
    pub fn new(
        pool: PgPool,
        passwords: Passwords,
        tokens: AccessTokens,
        refresh_ttl: Duration,
        failures: FailureLimit,
    ) -> Self {
        Self { inner: Arc::new(Inner { pool, passwords, tokens, refresh_ttl, failures }) }
    }

    pub fn tokens(&self) -> &AccessTokens {
        &self.inner.tokens
    }

    pub async fn register(&self, email: &str, password: String) -> ApiResult<Session> {
        let email = validation::email(email)?;
        validation::new_password(&password, "password")?;
        let hash = self.inner.passwords.admit(&email)?.hash(password).await?;
        let mut tx = self.inner.pool.begin().await?;
        // The unique constraint decides duplicates, so two racing registrations
        // give one success and one CONFLICT, never an internal error.
        let user: User = sqlx::query_as(
            "INSERT INTO auth.users (id, email, password_hash) VALUES ($1, $2, $3)
             RETURNING id, email, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(&email)
        .bind(&hash)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.constraint() == Some("users_email_key") => {
                ApiError::Conflict("Email already registered".into())
            }
            _ => ApiError::from(e),
        })?;
        let session = self.start_session(&mut tx, user, Uuid::new_v4()).await?;
        tx.commit().await?;
        Ok(session)
    }

    pub async fn login(&self, email: &str, password: String) -> ApiResult<Session> {
        let email = validation::email(email)?;
        if password.is_empty() {
            return Err(ApiError::invalid("password", "Password is required"));
        }
        let found = self.credentials_by_email(&email).await?;
        let hash = found.as_ref().map(|c| c.password_hash.clone());
        // Over-long passwords can never match, but still cost one comparison.
        let password = if password.len() > validation::PASSWORD_MAX_BYTES { String::new() } else { password };
        let (matched, _ticket) = self.check_password(&email, password, hash).await?;
        let credentials = match found {
            Some(c) if matched => c,
            _ => return Err(invalid_credentials()),
        };
        let mut tx = self.inner.pool.begin().await?;
        let session = self.start_session(&mut tx, credentials.user(), Uuid::new_v4()).await?;
        tx.commit().await?;
        Ok(session)
    }

    /// Exchanges a refresh token for a new session in the same family. A token
    /// that was already exchanged is evidence of theft: its whole family dies.
    pub async fn refresh(&self, token: &str) -> ApiResult<Session> {
        if token.len() != REFRESH_TOKEN_LEN {
            return Err(invalid_refresh_token());
        }
        let hash = tokens::hash_refresh_token(token);
        let mut tx = self.inner.pool.begin().await?;
        let stored: Option<StoredRefreshToken> = sqlx::query_as(
            "SELECT user_id, family_id, expires_at, replaced_at, revoked_at
             FROM auth.refresh_tokens WHERE token_hash = $1 FOR UPDATE",
        )
        .bind(&hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(stored) = stored else {
            return Err(invalid_refresh_token());
        };
        if stored.replaced_at.is_some() {
            let revoked = revoke_family(&mut tx, stored.family_id).await?;
            tx.commit().await?;
            tracing::warn!(user_id = %stored.user_id, family_id = %stored.family_id, revoked, "refresh token reuse detected; family revoked");
            return Err(invalid_refresh_token());
        }
        if stored.revoked_at.is_some() || stored.expires_at <= Utc::now() {
            return Err(invalid_refresh_token());
        }
        sqlx::query("UPDATE auth.refresh_tokens SET replaced_at = now() WHERE token_hash = $1")
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        let user: User = sqlx::query_as("SELECT id, email, created_at FROM auth.users WHERE id = $1")
            .bind(stored.user_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(invalid_refresh_token)?;
        let session = self.start_session(&mut tx, user, stored.family_id).await?;
        tx.commit().await?;
        Ok(session)
    }

    /// Revokes the family of `token`. `false` when the token is unknown.
    pub async fn logout(&self, token: &str) -> ApiResult<bool> {
        if token.len() != REFRESH_TOKEN_LEN {
            return Ok(false);
        }
        let hash = tokens::hash_refresh_token(token);
        let mut tx = self.inner.pool.begin().await?;
        let family: Option<Uuid> =
            sqlx::query_scalar("SELECT family_id FROM auth.refresh_tokens WHERE token_hash = $1")
                .bind(&hash)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(family) = family else {
            return Ok(false);
        };
        revoke_family(&mut tx, family).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn logout_all(&self, user_id: Uuid) -> ApiResult<bool> {
        let mut conn = self.inner.pool.acquire().await?;
        revoke_all(&mut conn, user_id).await?;
        Ok(true)
    }

    pub async fn change_password(&self, user_id: Uuid, current: String, new: String) -> ApiResult<bool> {
        validation::new_password(&new, "newPassword")?;
        let credentials = self.credentials_by_id(user_id).await?.ok_or_else(ApiError::unauthenticated)?;
        let (matched, ticket) =
            self.check_password(&credentials.email, current, Some(credentials.password_hash)).await?;
        if !matched {
            return Err(ApiError::invalid("currentPassword", "Current password is incorrect"));
        }
        let hash = ticket.hash(new).await?;
        let mut tx = self.inner.pool.begin().await?;
        sqlx::query("UPDATE auth.users SET password_hash = $2, updated_at = now() WHERE id = $1")
            .bind(user_id)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        revoke_all(&mut tx, user_id).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes the account, its refresh tokens and announces `user.deleted`, all
    /// in one transaction: either everything happens or nothing does.
    pub async fn delete_account(&self, user_id: Uuid, password: String) -> ApiResult<bool> {
        let credentials = self.credentials_by_id(user_id).await?.ok_or_else(ApiError::unauthenticated)?;
        let (matched, _ticket) =
            self.check_password(&credentials.email, password, Some(credentials.password_hash)).await?;
        if !matched {
            return Err(ApiError::invalid("password", "Password is incorrect"));
        }
        let mut tx = self.inner.pool.begin().await?;
        sqlx::query("DELETE FROM auth.refresh_tokens WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        let deleted = sqlx::query("DELETE FROM auth.users WHERE id = $1").bind(user_id).execute(&mut *tx).await?;
        if deleted.rows_affected() == 0 {
            // Deleted concurrently: that request announced it.
            return Err(ApiError::unauthenticated());
        }
        OUTBOX.enqueue(&mut tx, USER_DELETED, &UserDeleted { user_id }).await?;
        tx.commit().await?;
        tracing::info!(%user_id, "account deleted");
        Ok(true)
    }

    pub async fn user(&self, id: Uuid) -> ApiResult<Option<User>> {
        Ok(sqlx::query_as("SELECT id, email, created_at FROM auth.users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.inner.pool)
            .await?)
    }

    /// Removes refresh tokens that expired more than a day ago.
    pub async fn prune_expired_refresh_tokens(&self) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM auth.refresh_tokens WHERE expires_at < now() - interval '1 day'")
            .execute(&self.inner.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Removes password failure counts whose window has ended.
    pub async fn prune_expired_password_failures(&self) -> Result<u64, sqlx::Error> {
        self.inner.failures.prune(&self.inner.pool).await
    }

    /// Checks `password` for the account of `email` against its stored `hash`
    /// (`None`: no such account), admitted to the bcrypt queue first and
    /// charged to the account's failure limit before bcrypt runs; a match
    /// clears the count. The ticket admits whatever hash follows for the account.
    async fn check_password(&self, email: &str, password: String, hash: Option<String>) -> ApiResult<(bool, Ticket)> {
        let ticket = self.inner.passwords.admit(email)?;
        self.inner.failures.charge(&self.inner.pool, email).await?;
        let matched = ticket.verify(password, hash).await?;
        if matched {
            self.inner.failures.clear(&self.inner.pool, email).await?;
        }
        Ok((matched, ticket))
    }

    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, sqlx::Error> {
        sqlx::query_as("SELECT id, email, created_at, password_hash FROM auth.users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.inner.pool)
            .await
    }

    async fn credentials_by_id(&self, id: Uuid) -> Result<Option<Credentials>, sqlx::Error> {
        sqlx::query_as("SELECT id, email, created_at, password_hash FROM auth.users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.inner.pool)
            .await
    }

    async fn start_session(&self, conn: &mut PgConnection, user: User, family: Uuid) -> ApiResult<Session> {
        let (refresh_token, hash) = tokens::new_refresh_token();
        let expires_at = Utc::now() + self.inner.refresh_ttl;
        sqlx::query(
            "INSERT INTO auth.refresh_tokens (id, user_id, family_id, token_hash, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(Uuid::now_v7())
        .bind(user.id)
        .bind(family)
        .bind(&hash)
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
        let access_token = self.inner.tokens.issue(user.id)?;
        Ok(Session { access_token, refresh_token, expires_in: self.inner.tokens.ttl_secs(), user })
    }
}

async fn revoke_family(conn: &mut PgConnection, family: Uuid) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query("UPDATE auth.refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL")
            .bind(family)
            .execute(conn)
            .await?;
    Ok(done.rows_affected())
}

async fn revoke_all(conn: &mut PgConnection, user_id: Uuid) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query("UPDATE auth.refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(user_id)
            .execute(conn)
            .await?;
    Ok(done.rows_affected())
}
