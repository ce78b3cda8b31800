//! One circuit breaker per subgraph: after `failures` failures in a row the
//! circuit opens and calls fail fast; after `cool_down` one probe is let
//! through (half-open); its success closes the circuit, its failure reopens it.

use std::sync::Mutex;
use std::time::Instant;

use rustc_hash::FxHashMap;

use crate::config::BreakerSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is in flight; everything else fails fast until it settles.
    HalfOpen,
}

impl State {
    /// The gauge's value: 0 closed, 1 half-open, 2 open.
    fn gauge(self) -> f64 {
        match self {
            State::Closed { .. } => 0.0,
            State::HalfOpen => 1.0,
            State::Open { .. } => 2.0,
        }
    }
}

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Call,
    /// The half-open probe: its outcome decides the circuit.
    Probe,
    Refused,
}

pub struct Breakers {
    settings: BreakerSettings,
    states: Mutex<FxHashMap<String, State>>,
}

impl Breakers {
    pub fn new(settings: BreakerSettings) -> Self {
        Self { settings, states: Mutex::new(FxHashMap::default()) }
    }

    pub fn permit(&self, subgraph: &str) -> Permit {
        if self.settings.failures.is_none() {
            return Permit::Call;
        }
        let mut states = self.states.lock().expect("breaker lock");
        match states.get(subgraph).copied() {
            None | Some(State::Closed { .. }) => Permit::Call,
            Some(State::HalfOpen) => Permit::Refused,
            Some(State::Open { until }) if Instant::now() < until => Permit::Refused,
            Some(State::Open { .. }) => {
                set(&mut states, subgraph, State::HalfOpen);
                tracing::info!(subgraph, "circuit half-open: probing the subgraph");
                Permit::Probe
            }
        }
    }

    pub fn record(&self, subgraph: &str, permit: Permit, ok: bool) {
        let Some(threshold) = self.settings.failures else { return };
        let mut states = self.states.lock().expect("breaker lock");
        let current = states.get(subgraph).copied().unwrap_or(State::Closed { failures: 0 });
        let next = match (current, ok) {
            (State::Closed { failures: 0 }, true) => return,
            (State::Closed { .. }, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 >= threshold => {
                tracing::warn!(subgraph, failures = failures + 1, "circuit open: failing fast for a while");
                State::Open { until: Instant::now() + self.settings.cool_down }
            }
            (State::Closed { failures }, false) => State::Closed { failures: failures + 1 },
            // Only the probe's outcome moves a half-open circuit.
            (State::HalfOpen, true) if permit == Permit::Probe => {
                tracing::info!(subgraph, "circuit closed: the subgraph answers again");
                State::Closed { failures: 0 }
            }
            (State::HalfOpen, false) if permit == Permit::Probe => {
                State::Open { until: Instant::now() + self.settings.cool_down }
            }
            // Calls that began before the circuit opened settle into whatever it is now.
            (state, _) => state,
        };
        set(&mut states, subgraph, next);
    }
}

impl Breakers {
    /// `closed`, `half_open` or `open` (a circuit never tripped is closed).
    pub fn state_name(&self, subgraph: &str) -> &'static str {
        match self.states.lock().expect("breaker lock").get(subgraph) {
            None | Some(State::Closed { .. }) => "closed",
            Some(State::HalfOpen) => "half_open",
            Some(State::Open { .. }) => "open",
        }
    }

    /// A probe that ended without an outcome (its request was cancelled): the
    /// next call probes instead, or the circuit would stay half-open for good.
    pub fn abandon(&self, subgraph: &str) {
        let mut states = self.states.lock().expect("breaker lock");
        if states.get(subgraph) == Some(&State::HalfOpen) {
            set(&mut states, subgraph, State::Open { until: Instant::now() });
        }
    }
}

/// Abandons the probe it holds unless disarmed once the outcome is recorded.
pub struct ProbeGuard<'a> {
    pub breakers: &'a Breakers,
    pub subgraph: &'a str,
    pub armed: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.breakers.abandon(self.subgraph);
        }
    }
}

fn set(states: &mut FxHashMap<String, State>, subgraph: &str, state: State) {
    metrics::gauge!("subgraph_circuit_state", "subgraph" => subgraph.to_owned()).set(state.gauge());
    match states.get_mut(subgraph) {
        Some(slot) => *slot = state,
        None => {
            states.insert(subgraph.to_owned(), state);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn breakers(cool_down: Duration) -> Breakers {
        Breakers::new(BreakerSettings { failures: Some(3), cool_down })
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breakers(Duration::from_secs(60));
        for _ in 0..2 {
            b.record("a", Permit::Call, false);
        }
        b.record("a", Permit::Call, true); // a success resets the count
        for _ in 0..2 {
            b.record("a", Permit::Call, false);
            assert_eq!(b.permit("a"), Permit::Call);
        }
        b.record("a", Permit::Call, false);
        assert_eq!(b.permit("a"), Permit::Refused);
        assert_eq!(b.permit("b"), Permit::Call, "circuits are per subgraph");
    }

    #[test]
    fn one_probe_after_the_cool_down_decides() {
        let b = breakers(Duration::ZERO);
        for _ in 0..3 {
            b.record("a", Permit::Call, false);
        }
        assert_eq!(b.permit("a"), Permit::Probe);
        assert_eq!(b.permit("a"), Permit::Refused, "one probe at a time");
        b.record("a", Permit::Call, true); // a straggler does not close it
        assert_eq!(b.permit("a"), Permit::Refused);
        b.record("a", Permit::Probe, false);
        assert_eq!(b.permit("a"), Permit::Probe, "reopened, and with no cool-down, probed again");
        b.record("a", Permit::Probe, true);
        assert_eq!(b.permit("a"), Permit::Call);
    }

    #[test]
    fn a_cancelled_probe_lets_the_next_call_probe() {
        let b = breakers(Duration::ZERO);
        for _ in 0..3 {
            b.record("a", Permit::Call, false);
        }
        {
            assert_eq!(b.permit("a"), Permit::Probe);
            let _guard = ProbeGuard { breakers: &b, subgraph: "a", armed: true };
            // dropped without an outcome, as when the client goes away mid-request
        }
        assert_eq!(b.permit("a"), Permit::Probe);
    }

    #[test]
    fn disabled_never_refuses() {
        let b = Breakers::new(BreakerSettings { failures: None, cool_down: Duration::ZERO });
        for _ in 0..10 {
            b.record("a", Permit::Call, false);
        }
        assert_eq!(b.permit("a"), Permit::Call);
    }
}
