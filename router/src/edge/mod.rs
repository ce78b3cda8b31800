//! The edge: what is decided about a request from its headers alone, before its
//! body is read: who the client is, whether its token verifies, and whether it
//! is within its rate limits. Operation-specific limits (`login`,
//! `changePassword`...) are charged later, once the operation is parsed,
//! through the same [`Admission`].

pub mod client_ip;
pub mod ratelimit;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;
use platform::TokenVerifier;
use platform::identity::TokenError;

use crate::config::Policy;
use crate::pipeline::Admitted;
use crate::pipeline::error::RequestError;
use client_ip::TrustedProxies;
use ratelimit::{Decision, RateLimiter};

pub struct Edge {
    /// Checks bearer tokens; `None` passes them through to subgraphs unchecked.
    pub verifier: Option<TokenVerifier>,
    /// `None` when rate limiting is off.
    pub limiter: Option<Arc<RateLimiter>>,
    pub proxies: TrustedProxies,
}

/// Why a request is refused at the edge.
#[derive(Debug)]
pub enum Refusal {
    InvalidToken,
    /// The token's key or its user's revocations cannot be fetched from auth
    /// now: the client should retry, not sign in again.
    TokenUncheckable {
        retry_after: u64,
    },
    RateLimited(Decision),
}

impl Refusal {
    pub fn error(&self) -> RequestError {
        match self {
            Refusal::InvalidToken => RequestError::InvalidToken,
            Refusal::TokenUncheckable { retry_after } => RequestError::TokenUncheckable { retry_after: *retry_after },
            Refusal::RateLimited(d) => RequestError::RateLimited { retry_after: ratelimit::ceil_secs(d.retry_after) },
        }
    }
}

/// A request let in, with what was decided about it.
pub struct Admission {
    pub client_ip: IpAddr,
    pub user_id: Option<uuid::Uuid>,
    limiter: Option<Arc<RateLimiter>>,
    /// Every bucket charged so far, for the response headers.
    decisions: Mutex<Vec<Decision>>,
}

impl Edge {
    /// Charges the per-IP bucket, verifies the token, charges the per-user bucket.
    /// The IP is charged first so that guessing tokens costs like anything else.
    pub async fn admit(&self, headers: &HeaderMap, peer: IpAddr) -> Result<Admission, (Refusal, Admission)> {
        let client_ip = self.proxies.client_ip(peer, headers);
        let mut admission =
            Admission { client_ip, user_id: None, limiter: self.limiter.clone(), decisions: Mutex::new(Vec::new()) };
        if self.limiter.is_some()
            && let Err(refusal) = admission.charge(Policy::Ip, &client_ip::bucket_key(client_ip), 1).await
        {
            return Err((refusal, admission));
        }
        if let Some(verifier) = &self.verifier {
            match verifier.viewer_from_headers(headers).await {
                Ok(Some(viewer)) => {
                    tracing::Span::current().record("user_id", tracing::field::display(viewer.user_id));
                    admission.user_id = Some(viewer.user_id);
                }
                Ok(None) => {}
                Err(TokenError::Unavailable) => {
                    tracing::debug!("a bearer token cannot be checked now");
                    let retry_after = verifier.retry_after_secs();
                    return Err((Refusal::TokenUncheckable { retry_after }, admission));
                }
                Err(reason) => {
                    tracing::debug!(%reason, "refused a bearer token");
                    return Err((Refusal::InvalidToken, admission));
                }
            }
        }
        if let Some(user) = admission.user_id
            && let Err(refusal) = admission.charge(Policy::User, &user.to_string(), 1).await
        {
            return Err((refusal, admission));
        }
        Ok(admission)
    }
}

impl Admission {
    async fn charge(&self, policy: Policy, key: &str, cost: u32) -> Result<(), Refusal> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        let Some(decision) = limiter.check(policy, key, cost).await else { return Ok(()) };
        self.decisions.lock().expect("admission lock").push(decision);
        if decision.allowed {
            Ok(())
        } else {
            metrics::counter!("rate_limited_total", "policy" => policy.as_str()).increment(1);
            // Debug, not info: a flood of refusals must not become a flood of log lines
            // (`rate_limited_total` counts them).
            tracing::debug!(policy = policy.as_str(), key, "rate limited");
            Err(Refusal::RateLimited(decision))
        }
    }

    /// The buckets a field policy charges: the client IP's, and for password
    /// checks the verified user's too, so that neither many IPs nor many
    /// accounts buy more guesses.
    fn field_bucket_keys(&self, policy: Policy) -> Vec<String> {
        let ip = client_ip::bucket_key(self.client_ip);
        match (policy, self.user_id) {
            (Policy::Password, Some(user)) => vec![format!("ip:{ip}"), format!("user:{user}")],
            (Policy::Password, None) => vec![format!("ip:{ip}")],
            _ => vec![ip],
        }
    }

    /// Whether a bucket refused this request.
    pub fn refused(&self) -> Option<Decision> {
        self.decisions.lock().expect("admission lock").iter().rev().find(|d| !d.allowed).copied()
    }

    /// Adds `RateLimit-Policy` / `RateLimit` (and `Retry-After` when refused):
    /// one item per policy, its tightest bucket.
    pub fn decorate(&self, response: &mut Response) {
        let shown = ratelimit::tightest_per_policy(&self.decisions.lock().expect("admission lock"));
        let headers = response.headers_mut();
        if let Some((policy, state)) = ratelimit::header_values(&shown)
            && let (Ok(policy), Ok(state)) = (HeaderValue::try_from(policy), HeaderValue::try_from(state))
        {
            headers.insert(HeaderName::from_static("ratelimit-policy"), policy);
            headers.insert(HeaderName::from_static("ratelimit"), state);
        }
        if let Some(refused) = shown.iter().filter(|d| !d.allowed).map(|d| d.retry_after).max() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(ratelimit::ceil_secs(refused).max(1)));
        }
    }
}

impl Admitted for Admission {
    /// Charges the operation's sensitive root fields (`login`, `refreshToken`,
    /// `changePassword`...), once per occurrence, aliases and batches included.
    async fn charge_operation(&self, root_fields: &[String]) -> Result<(), RequestError> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        for (policy, cost) in limiter.settings().field_costs(root_fields) {
            if cost == 0 {
                continue;
            }
            for key in self.field_bucket_keys(policy) {
                self.charge(policy, &key, cost).await.map_err(|r| r.error())?;
            }
        }
        Ok(())
    }

    fn user_id(&self) -> Option<uuid::Uuid> {
        self.user_id
    }
}
