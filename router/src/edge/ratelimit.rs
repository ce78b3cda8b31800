//! Rate limits: GCRA buckets per policy and key, kept in process (governor, the
//! engine under tower_governor) or in Redis so that they hold across replicas.
//!
//! Redis never takes the API down: an error or a slow answer falls back to the
//! local buckets, is counted, and Redis is left alone for a cool-down.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter as Governor};
use platform::fail_open::FailOpenRedis;
use tokio_util::sync::CancellationToken;

use crate::config::{Policy, Rate, RateLimitSettings, Store};

/// The verdict of one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub policy: Policy,
    pub rate: Rate,
    pub allowed: bool,
    /// Requests left in the window right now.
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset: Duration,
    /// Until this request would be allowed (zero when allowed).
    pub retry_after: Duration,
}

type Buckets = Governor<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// GCRA in one atomic round trip; the server's clock, so replicas agree.
/// Returns {allowed, remaining, reset_ms, retry_ms}.
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local quota = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local interval = window / quota
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * cost
if new_tat - window > now then
  return {0, math.max(0, math.floor((window - (tat - now)) / interval)), math.ceil(tat - now), math.ceil(new_tat - window - now)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
return {1, math.floor((window - (new_tat - now)) / interval), math.ceil(new_tat - now), 0}
";

pub struct RateLimiter {
    settings: RateLimitSettings,
    local: [Option<Buckets>; 5],
    redis: Option<SharedBuckets>,
}

struct SharedBuckets {
    redis: FailOpenRedis,
    key_prefix: String,
    script: redis::Script,
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings) -> Self {
        // Every policy's refusals and the store's errors read 0 from the start.
        platform::metrics::handle();
        for policy in Policy::ALL {
            metrics::counter!("rate_limited_total", "policy" => policy.as_str()).absolute(0);
        }
        metrics::counter!("rate_limit_store_errors_total").absolute(0);
        let local = Policy::ALL.map(|policy| {
            settings.rate(policy).map(|rate| {
                let quota = Quota::with_period(rate.interval().max(Duration::from_nanos(1)))
                    .expect("a positive period")
                    .allow_burst(NonZeroU32::new(rate.quota).expect("quota above zero"));
                Governor::keyed(quota).with_middleware::<StateInformationMiddleware>()
            })
        });
        let redis = match &settings.store {
            Store::Local => None,
            Store::Redis { url, key_prefix, timeout } => Some(SharedBuckets {
                redis: FailOpenRedis::new(
                    Some(url.expose()),
                    *timeout,
                    "rate limits",
                    "rate limits are per replica",
                    || metrics::counter!("rate_limit_store_errors_total").increment(1),
                ),
                key_prefix: key_prefix.clone(),
                script: redis::Script::new(GCRA_SCRIPT),
            }),
        };
        Self { settings, local, redis }
    }

    pub fn settings(&self) -> &RateLimitSettings {
        &self.settings
    }

    /// Charges `cost` requests to `key`'s bucket of `policy`; `None` when that policy is off.
    pub async fn check(&self, policy: Policy, key: &str, cost: u32) -> Option<Decision> {
        let rate = self.settings.rate(policy)?;
        let cost = cost.max(1);
        // Boxed: a Redis round trip's future is large, and inlined it would size
        // every check's to fit, Redis or not.
        if let Some(shared) = &self.redis
            && let Some(decision) = Box::pin(shared.check(policy, rate, key, cost)).await
        {
            return Some(decision);
        }
        let buckets = self.local[policy.index()].as_ref()?;
        Some(local_check(buckets, policy, rate, key, cost))
    }

    /// Forgets buckets that are full again, so memory follows the active clients.
    pub async fn housekeeping(&self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {
                    for buckets in self.local.iter().flatten() {
                        buckets.retain_recent();
                        buckets.shrink_to_fit();
                    }
                }
            }
        }
    }
}

fn local_check(buckets: &Buckets, policy: Policy, rate: Rate, key: &str, cost: u32) -> Decision {
    let n = NonZeroU32::new(cost).expect("cost above zero");
    let key = key.to_owned();
    match buckets.check_key_n(&key, n) {
        Ok(Ok(state)) => {
            let remaining = state.remaining_burst_capacity();
            let reset = rate.interval() * (rate.quota - remaining.min(rate.quota));
            Decision { policy, rate, allowed: true, remaining, reset, retry_after: Duration::ZERO }
        }
        Ok(Err(not_until)) => {
            let retry_after = not_until.wait_time_from(buckets.clock().now());
            Decision { policy, rate, allowed: false, remaining: 0, reset: rate.window, retry_after }
        }
        // More than the whole quota at once can never pass.
        Err(_) => Decision { policy, rate, allowed: false, remaining: 0, reset: rate.window, retry_after: rate.window },
    }
}

impl SharedBuckets {
    async fn check(&self, policy: Policy, rate: Rate, key: &str, cost: u32) -> Option<Decision> {
        let bucket = format!("{}:{}:{key}", self.key_prefix, policy.as_str());
        let window_ms = rate.window.as_millis().max(1) as u64;
        let script = &self.script;
        let (allowed, remaining, reset_ms, retry_ms) = self
            .redis
            .run(|mut conn| async move {
                script
                    .key(bucket)
                    .arg(rate.quota)
                    .arg(window_ms)
                    .arg(cost)
                    .invoke_async::<(i64, i64, i64, i64)>(&mut conn)
                    .await
            })
            .await?;
        Some(Decision {
            policy,
            rate,
            allowed: allowed == 1,
            remaining: remaining.clamp(0, i64::from(rate.quota)) as u32,
            reset: Duration::from_millis(reset_ms.max(0) as u64),
            retry_after: Duration::from_millis(retry_ms.max(0) as u64),
        })
    }
}

/// Of the decisions made for one request, the one per policy its headers show:
/// a refusal over an allowance, else the fewest requests left (a policy with
/// two buckets, such as [`Policy::Password`], shows the tighter), else the latest.
pub fn tightest_per_policy(decisions: &[Decision]) -> Vec<Decision> {
    let mut tightest: Vec<Decision> = Vec::new();
    for d in decisions {
        match tightest.iter_mut().find(|t| t.policy == d.policy) {
            Some(t) if tightness(d) >= tightness(t) => *t = *d,
            Some(_) => {}
            None => tightest.push(*d),
        }
    }
    tightest
}

/// Refused before allowed, then fewer left before more.
fn tightness(decision: &Decision) -> (bool, std::cmp::Reverse<u32>) {
    (!decision.allowed, std::cmp::Reverse(decision.remaining))
}

/// The IETF `RateLimit-Policy` and `RateLimit` header values
/// (draft-ietf-httpapi-ratelimit-headers), one list item per policy applied.
/// Written with `itoa` rather than `write!`: these go on every response, and
/// the formatting machinery cost more than the rate-limit check itself.
pub fn header_values(decisions: &[Decision]) -> Option<(String, String)> {
    if decisions.is_empty() {
        return None;
    }
    let (mut policies, mut states) = (String::with_capacity(48), String::with_capacity(48));
    for (i, d) in decisions.iter().enumerate() {
        if i > 0 {
            policies.push_str(", ");
            states.push_str(", ");
        }
        let policy = d.policy.as_str();
        list_item(&mut policies, policy, ("q", d.rate.quota.into()), ("w", ceil_secs(d.rate.window)));
        list_item(&mut states, policy, ("r", d.remaining.into()), ("t", ceil_secs(d.reset)));
    }
    Some((policies, states))
}

/// `"policy";a=1;b=2`
fn list_item(out: &mut String, policy: &str, (a, a_value): (&str, u64), (b, b_value): (&str, u64)) {
    let mut number = itoa::Buffer::new();
    out.push('"');
    out.push_str(policy);
    out.push_str("\";");
    out.push_str(a);
    out.push('=');
    out.push_str(number.format(a_value));
    out.push(';');
    out.push_str(b);
    out.push('=');
    out.push_str(number.format(b_value));
}

pub fn ceil_secs(duration: Duration) -> u64 {
    duration.as_millis().div_ceil(1000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(rate: &str) -> RateLimitSettings {
        let rate = Rate::parse(rate);
        RateLimitSettings {
            rates: [rate, None, rate, None, rate],
            login_fields: vec!["login".into(), "register".into()],
            refresh_fields: vec!["refreshToken".into()],
            password_fields: vec!["changePassword".into(), "deleteAccount".into()],
            store: Store::Local,
        }
    }

    #[tokio::test]
    async fn the_quota_is_spent_then_refused_with_a_retry_time() {
        let limiter = RateLimiter::new(settings("3/1h"));
        for left in [2, 1, 0] {
            let d = limiter.check(Policy::Ip, "1.2.3.4", 1).await.unwrap();
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
        }
        let refused = limiter.check(Policy::Ip, "1.2.3.4", 1).await.unwrap();
        assert!(!refused.allowed);
        assert!(refused.retry_after > Duration::from_secs(1150) && refused.retry_after <= Duration::from_secs(1200));
        // Another key and another policy have their own buckets.
        assert!(limiter.check(Policy::Ip, "5.6.7.8", 1).await.unwrap().allowed);
        assert!(limiter.check(Policy::Login, "1.2.3.4", 1).await.unwrap().allowed);
        // A policy that is off decides nothing.
        assert_eq!(limiter.check(Policy::User, "u", 1).await, None);
    }

    #[tokio::test]
    async fn a_cost_above_the_quota_never_passes() {
        let limiter = RateLimiter::new(settings("3/1h"));
        let d = limiter.check(Policy::Login, "k", 4).await.unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Duration::from_secs(3600));
        // ...and costs nothing.
        assert_eq!(limiter.check(Policy::Login, "k", 3).await.unwrap().remaining, 0);
    }

    #[test]
    fn root_fields_cost_their_policy_once_per_occurrence() {
        let fields: Vec<String> =
            ["login", "me", "changePassword", "register", "deleteAccount", "changePassword"].map(String::from).into();
        let costs = settings("3/1h").field_costs(&fields);
        assert_eq!(costs, [(Policy::Login, 2), (Policy::Refresh, 0), (Policy::Password, 3)]);
    }

    #[test]
    fn headers_show_the_tightest_bucket_of_each_policy() {
        let rate = Rate { quota: 10, window: Duration::from_secs(900) };
        let d = |policy, allowed, remaining| Decision {
            policy,
            rate,
            allowed,
            remaining,
            reset: Duration::ZERO,
            retry_after: Duration::ZERO,
        };
        let shown = tightest_per_policy(&[
            d(Policy::Ip, true, 9),
            d(Policy::Password, true, 2),
            d(Policy::Password, true, 7),
            d(Policy::Ip, true, 8),
            d(Policy::Login, false, 0),
            d(Policy::Login, true, 0),
        ]);
        let summary: Vec<_> = shown.iter().map(|d| (d.policy, d.allowed, d.remaining)).collect();
        assert_eq!(
            summary,
            [(Policy::Ip, true, 8), (Policy::Password, true, 2), (Policy::Login, false, 0)],
            "the per-user bucket's 2 left, not the per-IP bucket's 7; a refusal over an allowance"
        );
    }

    #[test]
    fn headers_list_every_policy_applied() {
        let rate = Rate { quota: 10, window: Duration::from_secs(900) };
        let d = |policy, remaining| Decision {
            policy,
            rate,
            allowed: true,
            remaining,
            reset: Duration::from_millis(1500),
            retry_after: Duration::ZERO,
        };
        let (policy, state) = header_values(&[d(Policy::Ip, 9), d(Policy::Login, 3)]).unwrap();
        assert_eq!(policy, r#""ip";q=10;w=900, "login";q=10;w=900"#);
        assert_eq!(state, r#""ip";r=9;t=2, "login";r=3;t=2"#);
        assert_eq!(header_values(&[]), None);
    }
}
