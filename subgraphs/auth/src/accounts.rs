//! What the auth API does, independent of GraphQL: every operation checks its
//! input, keeps writes that belong together in one transaction, and answers
//! with an [`ApiError`] a client may see.
//!
//! Transactions lock in one order, so none waits on another in a cycle: the
//! revocation log (only those that end sessions, see
//! [`RevocationLog::end_sessions`]), then the user's row, then refresh tokens.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kit::db::Database;
use kit::error::ApiResult;
use kit::events::{Outbox, USER_DELETED, UserDeleted};
use kit::identity::Revocation;
use kit::{ApiError, TokenVerifier};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::passwords::{FailureLimit, Passwords, Ticket};
use crate::revocations::RevocationLog;
use crate::tokens::{self, AccessTokens, REFRESH_TOKEN_LEN, RefreshTokens};
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
    database: Database,
    passwords: Passwords,
    tokens: Tokens,
    refresh_ttl: Duration,
    /// How long a rotated refresh token still gets its successor again (`REFRESH_REUSE_GRACE`).
    reuse_grace: Duration,
    failures: FailureLimit,
}

/// What sessions are made of and ended with.
pub struct Tokens {
    pub access: AccessTokens,
    pub refresh: RefreshTokens,
    pub revocations: RevocationLog,
    /// This service's own verifier, told of each revocation as it commits.
    pub verifier: TokenVerifier,
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
    password_hash: String,
}

#[derive(sqlx::FromRow)]
struct StoredRefreshToken {
    user_id: Uuid,
    family_id: Uuid,
    expires_at: DateTime<Utc>,
    replaced_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// A user about to get a session, at the session version its token will carry.
#[derive(sqlx::FromRow)]
struct SessionUser {
    id: Uuid,
    email: String,
    created_at: DateTime<Utc>,
    session_version: i64,
}

impl SessionUser {
    fn user(&self) -> User {
        User { id: self.id, email: self.email.clone(), created_at: self.created_at }
    }
}

impl Accounts {
    pub fn new(
        database: Database,
        passwords: Passwords,
        tokens: Tokens,
        jwt: &crate::config::JwtSettings,
        failures: FailureLimit,
    ) -> Self {
        let (refresh_ttl, reuse_grace) = (jwt.refresh_ttl, jwt.refresh_reuse_grace);
        Self { inner: Arc::new(Inner { database, passwords, tokens, refresh_ttl, reuse_grace, failures }) }
    }

    /// The log of ended sessions (served to verifiers, pruned on a timer).
    pub fn revocations(&self) -> &RevocationLog {
        &self.inner.tokens.revocations
    }

    pub async fn register(&self, email: &str, password: String) -> ApiResult<Session> {
        let email = validation::email(email)?;
        validation::new_password(&password, "password")?;
        let hash = self.inner.passwords.admit(&email)?.hash(password).await?;
        let mut tx = self.inner.database.begin().await?;
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
        let session = self.start_session(&mut tx, user, 0, Uuid::new_v4(), self.inner.tokens.refresh.random()).await?;
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
        let mut tx = self.inner.database.begin().await?;
        let user = session_user(&mut tx, credentials.id).await?.ok_or_else(invalid_credentials)?;
        let refresh = self.inner.tokens.refresh.random();
        let session = self.start_session(&mut tx, user.user(), user.session_version, Uuid::new_v4(), refresh).await?;
        tx.commit().await?;
        Ok(session)
    }

    /// Exchanges a refresh token for a new session in the same family. A token
    /// that was already exchanged is evidence of theft, and its whole family
    /// dies, unless it comes back within the grace window (two tabs, a retried
    /// request): then it gets the same successor again, with a fresh access token.
    pub async fn refresh(&self, token: &str) -> ApiResult<Session> {
        if token.len() != REFRESH_TOKEN_LEN {
            return Err(invalid_refresh_token());
        }
        let hash = tokens::hash_refresh_token(token);
        let mut tx = self.inner.database.begin().await?;
        // The owner's row is locked before the token's (see the module's lock order).
        let owner: Option<Uuid> = sqlx::query_scalar("SELECT user_id FROM auth.refresh_tokens WHERE token_hash = $1")
            .bind(&hash)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(owner) = owner else { return Err(invalid_refresh_token()) };
        let user = session_user(&mut tx, owner).await?.ok_or_else(invalid_refresh_token)?;
        let stored: StoredRefreshToken = sqlx::query_as(
            "SELECT user_id, family_id, expires_at, replaced_at, revoked_at
             FROM auth.refresh_tokens WHERE token_hash = $1 FOR UPDATE",
        )
        .bind(&hash)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(invalid_refresh_token)?;
        if stored.revoked_at.is_some() {
            return Err(invalid_refresh_token());
        }
        if let Some(replaced_at) = stored.replaced_at {
            drop(tx);
            return self.presented_again(token, &stored, replaced_at, &user).await;
        }
        if stored.expires_at <= Utc::now() {
            return Err(invalid_refresh_token());
        }
        sqlx::query("UPDATE auth.refresh_tokens SET replaced_at = now() WHERE token_hash = $1")
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        let successor = self.inner.tokens.refresh.successor(token);
        let session =
            self.start_session(&mut tx, user.user(), user.session_version, stored.family_id, successor).await?;
        tx.commit().await?;
        Ok(session)
    }

    /// A token presented after it was exchanged. Within the grace window: the
    /// successor it was exchanged for (derived again from it, see
    /// [`RefreshTokens`]), if that is still live, and a fresh access token.
    /// Later: reuse, so the family is revoked and every access token of the
    /// user stops working (which of them the thief holds cannot be told).
    async fn presented_again(
        &self,
        token: &str,
        stored: &StoredRefreshToken,
        replaced_at: DateTime<Utc>,
        user: &SessionUser,
    ) -> ApiResult<Session> {
        let within_grace = (Utc::now() - replaced_at).to_std().is_ok_and(|age| age < self.inner.reuse_grace);
        if !within_grace {
            self.revoke_reused_family(stored.user_id, stored.family_id).await?;
            return Err(invalid_refresh_token());
        }
        let (successor, successor_hash) = self.inner.tokens.refresh.successor(token);
        let live: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM auth.refresh_tokens
             WHERE token_hash = $1 AND family_id = $2 AND revoked_at IS NULL AND expires_at > now())",
        )
        .bind(&successor_hash)
        .bind(stored.family_id)
        .fetch_one(&self.inner.database)
        .await?;
        if !live {
            return Err(invalid_refresh_token());
        }
        let access_token = self.inner.tokens.access.issue(user.id, user.session_version)?;
        let expires_in = self.inner.tokens.access.ttl_secs();
        Ok(Session { access_token, refresh_token: successor, expires_in, user: user.user() })
    }

    async fn revoke_reused_family(&self, user_id: Uuid, family: Uuid) -> ApiResult<()> {
        let live: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM auth.refresh_tokens WHERE family_id = $1 AND revoked_at IS NULL)",
        )
        .bind(family)
        .fetch_one(&self.inner.database)
        .await?;
        if !live {
            // Revoked already (logout, logoutAll): nothing left to protect.
            return Ok(());
        }
        let mut tx = self.inner.database.begin().await?;
        let ended = self.inner.tokens.revocations.end_sessions(&mut tx, user_id).await?;
        let revoked = revoke_family(&mut tx, family).await?;
        tx.commit().await?;
        self.ended(ended);
        tracing::warn!(%user_id, family_id = %family, revoked, "refresh token reuse detected; family revoked");
        Ok(())
    }

    /// Revokes the family of `token`. `false` when the token is unknown.
    pub async fn logout(&self, token: &str) -> ApiResult<bool> {
        if token.len() != REFRESH_TOKEN_LEN {
            return Ok(false);
        }
        let hash = tokens::hash_refresh_token(token);
        let mut tx = self.inner.database.begin().await?;
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

    /// Ends every session of the user: refresh tokens revoked, access tokens refused within seconds.
    pub async fn logout_all(&self, user_id: Uuid) -> ApiResult<bool> {
        let mut tx = self.inner.database.begin().await?;
        let ended = self.end_sessions(&mut tx, user_id).await?;
        revoke_all(&mut tx, user_id).await?;
        tx.commit().await?;
        self.ended(Some(ended));
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
        let mut tx = self.inner.database.begin().await?;
        let ended = self.end_sessions(&mut tx, user_id).await?;
        sqlx::query("UPDATE auth.users SET password_hash = $2, updated_at = now() WHERE id = $1")
            .bind(user_id)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        revoke_all(&mut tx, user_id).await?;
        tx.commit().await?;
        self.ended(Some(ended));
        Ok(true)
    }

    /// Deletes the account, its refresh tokens and announces `user.deleted`, all
    /// in one transaction with the end of its sessions: either everything
    /// happens or nothing does.
    pub async fn delete_account(&self, user_id: Uuid, password: String) -> ApiResult<bool> {
        let credentials = self.credentials_by_id(user_id).await?.ok_or_else(ApiError::unauthenticated)?;
        let (matched, _ticket) =
            self.check_password(&credentials.email, password, Some(credentials.password_hash)).await?;
        if !matched {
            return Err(ApiError::invalid("password", "Password is incorrect"));
        }
        let mut tx = self.inner.database.begin().await?;
        // Deleted concurrently, the account has no session to end: that request announced it.
        let ended = self.end_sessions(&mut tx, user_id).await?;
        sqlx::query("DELETE FROM auth.refresh_tokens WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM auth.users WHERE id = $1").bind(user_id).execute(&mut *tx).await?;
        OUTBOX.enqueue(&mut tx, USER_DELETED, &UserDeleted { user_id }).await?;
        tx.commit().await?;
        self.ended(Some(ended));
        tracing::info!(%user_id, "account deleted");
        Ok(true)
    }

    pub async fn user(&self, id: Uuid) -> ApiResult<Option<User>> {
        Ok(sqlx::query_as("SELECT id, email, created_at FROM auth.users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.inner.database)
            .await?)
    }

    /// Removes refresh tokens that expired more than a day ago.
    pub async fn prune_expired_refresh_tokens(&self) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM auth.refresh_tokens WHERE expires_at < now() - interval '1 day'")
            .execute(&self.inner.database)
            .await?;
        Ok(done.rows_affected())
    }

    /// Bumps the user's session version (UNAUTHENTICATED if the user is gone).
    async fn end_sessions(&self, tx: &mut PgConnection, user_id: Uuid) -> ApiResult<Revocation> {
        self.inner.tokens.revocations.end_sessions(tx, user_id).await?.ok_or_else(ApiError::unauthenticated)
    }

    /// Tells this replica's verifier at once; the others read the log within their poll interval.
    fn ended(&self, revocation: Option<Revocation>) {
        if let Some(revocation) = revocation {
            self.inner.tokens.verifier.note_revocation(revocation);
        }
    }

    /// Removes password failure counts whose window has ended.
    pub async fn prune_expired_password_failures(&self) -> Result<u64, sqlx::Error> {
        self.inner.failures.prune(&self.inner.database).await
    }

    /// Checks `password` for the account of `email` against its stored `hash`
    /// (`None`: no such account), admitted to the bcrypt queue first and
    /// charged to the account's failure limit before bcrypt runs; a match
    /// clears the count. The ticket admits whatever hash follows for the account.
    async fn check_password(&self, email: &str, password: String, hash: Option<String>) -> ApiResult<(bool, Ticket)> {
        let ticket = self.inner.passwords.admit(email)?;
        self.inner.failures.charge(&self.inner.database, email).await?;
        let matched = ticket.verify(password, hash).await?;
        if matched {
            self.inner.failures.clear(&self.inner.database, email).await?;
        }
        Ok((matched, ticket))
    }

    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, sqlx::Error> {
        sqlx::query_as("SELECT id, email, password_hash FROM auth.users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.inner.database)
            .await
    }

    async fn credentials_by_id(&self, id: Uuid) -> Result<Option<Credentials>, sqlx::Error> {
        sqlx::query_as("SELECT id, email, password_hash FROM auth.users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.inner.database)
            .await
    }

    /// Stores `refresh` (a token and its hash) in `family` and signs an access
    /// token at `session_version`.
    async fn start_session(
        &self,
        conn: &mut PgConnection,
        user: User,
        session_version: i64,
        family: Uuid,
        refresh: (String, Vec<u8>),
    ) -> ApiResult<Session> {
        let (refresh_token, hash) = refresh;
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
        let access_token = self.inner.tokens.access.issue(user.id, session_version)?;
        Ok(Session { access_token, refresh_token, expires_in: self.inner.tokens.access.ttl_secs(), user })
    }
}

/// The user, locked `FOR SHARE` until the session is stored: a concurrent
/// end of its sessions waits for this one, and then revokes it too (or this
/// one waits, and gets the new version).
async fn session_user(conn: &mut PgConnection, id: Uuid) -> Result<Option<SessionUser>, sqlx::Error> {
    sqlx::query_as("SELECT id, email, created_at, session_version FROM auth.users WHERE id = $1 FOR SHARE")
        .bind(id)
        .fetch_optional(conn)
        .await
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
