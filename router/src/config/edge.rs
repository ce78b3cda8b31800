//! What the edge is told: how bearer tokens are checked, the rate limits and
//! where their buckets live, and which proxies are believed about the client.

use std::net::IpAddr;
use std::time::Duration;

use platform::config::{Env, IdentitySettings, Secret};

/// Verifying bearer tokens at the edge, before any subgraph is called.
#[derive(Debug, Clone)]
pub struct EdgeAuthSettings {
    /// The auth service's JWKS; `None` (`JWKS_URL=none`) passes tokens through unchecked.
    pub jwks_url: Option<String>,
    pub identity: IdentitySettings,
}

impl EdgeAuthSettings {
    pub(super) fn from_env(env: &mut Env) -> Self {
        let raw = env.string("JWKS_URL", "http://127.0.0.1:4001/.well-known/jwks.json");
        let jwks_url = match raw.trim() {
            "" | "none" => None,
            url if url.starts_with("http://") || url.starts_with("https://") => Some(url.to_owned()),
            other => {
                env.invalid("JWKS_URL", "an http(s) URL, or none", Some(other));
                None
            }
        };
        Self { jwks_url, identity: IdentitySettings::from_env(env) }
    }
}

/// `quota` requests per `window`; a client may spend the whole quota at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub quota: u32,
    pub window: Duration,
}

impl Rate {
    /// `"10/15m"`, `"1200/1m"`, `"5/30s"`.
    pub fn parse(text: &str) -> Option<Rate> {
        let (quota, window) = text.trim().split_once('/')?;
        let quota: u32 = quota.trim().parse().ok().filter(|q| *q > 0)?;
        let window = humantime::parse_duration(window.trim()).ok()?;
        (window >= Duration::from_millis(1) && window <= Duration::from_secs(7 * 24 * 3600))
            .then_some(Rate { quota, window })
    }

    /// The time one request of the quota takes to come back.
    pub fn interval(&self) -> Duration {
        self.window / self.quota
    }
}

/// What a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Every request, per client IP.
    Ip,
    /// Every request with a verified token, per user.
    User,
    /// The `login` / `register` root fields, per client IP.
    Login,
    /// The `refreshToken` root field, per client IP.
    Refresh,
    /// The root fields that check a password (`changePassword`, `deleteAccount`),
    /// per client IP and, in a bucket of its own, per verified user.
    Password,
}

impl Policy {
    pub const ALL: [Policy; 5] = [Policy::Ip, Policy::User, Policy::Login, Policy::Refresh, Policy::Password];
    /// The policies charged per root field of an operation.
    pub const FIELDS: [Policy; 3] = [Policy::Login, Policy::Refresh, Policy::Password];

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Ip => "ip",
            Policy::User => "user",
            Policy::Login => "login",
            Policy::Refresh => "refresh",
            Policy::Password => "password",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Where the buckets live.
#[derive(Debug, Clone)]
pub enum Store {
    Local,
    /// Shared by every replica; local buckets stand in while Redis is unreachable.
    Redis {
        url: Secret,
        key_prefix: String,
        timeout: Duration,
    },
}

#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    /// One rate per policy, `None` where that policy is off.
    pub rates: [Option<Rate>; 5],
    /// Root fields charged to [`Policy::Login`] / [`Policy::Refresh`] /
    /// [`Policy::Password`], once per occurrence.
    pub login_fields: Vec<String>,
    pub refresh_fields: Vec<String>,
    pub password_fields: Vec<String>,
    pub store: Store,
}

impl RateLimitSettings {
    pub fn rate(&self, policy: Policy) -> Option<Rate> {
        self.rates[policy.index()]
    }

    /// Which policy, if any, charges a root field.
    pub fn field_policy(&self, field: &str) -> Option<Policy> {
        [
            (Policy::Login, &self.login_fields),
            (Policy::Refresh, &self.refresh_fields),
            (Policy::Password, &self.password_fields),
        ]
        .into_iter()
        .find_map(|(policy, fields)| fields.iter().any(|f| f == field).then_some(policy))
    }

    /// What an operation's root fields cost each of the [`Policy::FIELDS`]: one per occurrence.
    pub fn field_costs(&self, root_fields: &[String]) -> [(Policy, u32); Policy::FIELDS.len()] {
        let mut costs = Policy::FIELDS.map(|policy| (policy, 0));
        for policy in root_fields.iter().filter_map(|field| self.field_policy(field)) {
            if let Some((_, cost)) = costs.iter_mut().find(|(p, _)| *p == policy) {
                *cost += 1;
            }
        }
        costs
    }
}

/// An address block, `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    network: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(text: &str) -> Option<IpNet> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr.parse::<IpAddr>().ok()?, Some(prefix.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpNet { network: addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

pub(super) fn rate_limits_from_env(env: &mut Env) -> Option<RateLimitSettings> {
    if !env.bool("RATE_LIMIT_ENABLED", true) {
        return None;
    }
    let rate = |env: &mut Env, name: &str, default: &str| {
        let raw = env.string(name, default);
        if matches!(raw.trim(), "" | "none" | "off") {
            return None;
        }
        let parsed = Rate::parse(&raw);
        if parsed.is_none() {
            env.invalid(name, "<count>/<window> like 10/15m, or none", Some(&raw));
        }
        parsed
    };
    let mut rates = [None; Policy::ALL.len()];
    rates[Policy::Ip as usize] = rate(env, "RATE_LIMIT_IP", "1200/1m");
    rates[Policy::User as usize] = rate(env, "RATE_LIMIT_USER", "600/1m");
    rates[Policy::Login as usize] = rate(env, "RATE_LIMIT_LOGIN", "10/15m");
    rates[Policy::Refresh as usize] = rate(env, "RATE_LIMIT_REFRESH", "30/15m");
    rates[Policy::Password as usize] = rate(env, "RATE_LIMIT_PASSWORD", "10/15m");
    let fields = |env: &mut Env, name: &str, default: &str| -> Vec<String> {
        env.string(name, default).split(',').map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()).collect()
    };
    let login_fields = fields(env, "RATE_LIMIT_LOGIN_FIELDS", "login,register");
    let refresh_fields = fields(env, "RATE_LIMIT_REFRESH_FIELDS", "refreshToken");
    let password_fields = fields(env, "RATE_LIMIT_PASSWORD_FIELDS", "changePassword,deleteAccount");
    let store = match env.string("RATE_LIMIT_STORE", "local").trim() {
        "redis" => Store::Redis {
            url: env.secret_or("RATE_LIMIT_REDIS_URL", "redis://127.0.0.1:6379"),
            key_prefix: env.string("RATE_LIMIT_KEY_PREFIX", "taskgraph:ratelimit"),
            timeout: env.duration(
                "RATE_LIMIT_REDIS_TIMEOUT",
                "50ms",
                Duration::from_millis(1),
                Duration::from_secs(10),
            ),
        },
        "local" => Store::Local,
        other => {
            env.invalid("RATE_LIMIT_STORE", "local or redis", Some(other));
            Store::Local
        }
    };
    Some(RateLimitSettings { rates, login_fields, refresh_fields, password_fields, store })
}

/// `TRUSTED_PROXIES`: the peers whose `X-Forwarded-For` is believed.
pub(super) fn trusted_proxies_from_env(env: &mut Env) -> Vec<IpNet> {
    let raw = env.string("TRUSTED_PROXIES", "");
    let mut nets = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match IpNet::parse(item) {
            Some(net) => nets.push(net),
            None => env.invalid("TRUSTED_PROXIES", "a comma-separated list of IPs or CIDR blocks", Some(item)),
        }
    }
    nets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rates_parse_count_and_window() {
        assert_eq!(Rate::parse("10/15m"), Some(Rate { quota: 10, window: Duration::from_secs(900) }));
        assert_eq!(Rate::parse(" 1200 / 1m "), Some(Rate { quota: 1200, window: Duration::from_secs(60) }));
        for bad in ["", "10", "0/1m", "-1/1m", "10/", "10/forever", "x/1m", "10/0s"] {
            assert_eq!(Rate::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn blocks_contain_what_they_should() {
        let net = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(IpNet::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(IpNet::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(!IpNet::parse("127.0.0.1").unwrap().contains(ip("127.0.0.2")));
        for bad in ["", "10.0.0.0/33", "::/129", "nope", "10.0.0.0/x"] {
            assert_eq!(IpNet::parse(bad), None, "{bad}");
        }
    }
}
