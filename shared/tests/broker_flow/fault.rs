//! A Stripe handler with injected faults, registered under `stripe` in a test consumer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use payhook::providers::stripe::StripeHandler;
use payhook::providers::{ExtractError, Extraction, Handler};

/// Number of injected failures meaning "fail every time".
pub const ALWAYS: u32 = u32::MAX;

/// Which events fail and how often, every call made, and a gate that can hold calls.
#[derive(Default)]
pub struct FaultPlan {
    failures: Mutex<HashMap<String, u32>>,
    stalls: Mutex<HashMap<String, (Duration, u32)>>,
    calls: Mutex<Vec<String>>,
    gate_closed: Mutex<bool>,
    gate_changed: Condvar,
    held: AtomicUsize,
}

impl FaultPlan {
    /// Makes the next `times` calls for `event_id` fail ([`ALWAYS`] for every call).
    pub fn fail(&self, event_id: &str, times: u32) {
        self.failures
            .lock()
            .unwrap()
            .insert(event_id.to_owned(), times);
    }

    /// Makes the next `times` calls for `event_id` block their thread for `pause` first, like
    /// a handler stuck on a slow dependency.
    pub fn stall(&self, event_id: &str, pause: Duration, times: u32) {
        self.stalls
            .lock()
            .unwrap()
            .insert(event_id.to_owned(), (pause, times));
    }

    fn take_stall(&self, event_id: &str) -> Option<Duration> {
        let mut stalls = self.stalls.lock().unwrap();
        let (pause, left) = stalls.get_mut(event_id)?;
        if *left == 0 {
            return None;
        }
        *left -= 1;
        Some(*pause)
    }

    /// Returns how many calls the handler received for `event_id`.
    pub fn calls_for(&self, event_id: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|id| *id == event_id)
            .count()
    }

    /// Returns the event ids of every call, in call order.
    pub fn call_order(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// Makes later calls block until [`FaultPlan::open_gate`].
    pub fn close_gate(&self) {
        *self.gate_closed.lock().unwrap() = true;
    }

    /// Releases every blocked call.
    pub fn open_gate(&self) {
        *self.gate_closed.lock().unwrap() = false;
        self.gate_changed.notify_all();
    }

    /// Returns how many calls are blocked at the gate now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    fn wait_at_gate(&self) {
        let mut closed = self.gate_closed.lock().unwrap();
        if !*closed {
            return;
        }
        self.held.fetch_add(1, Ordering::SeqCst);
        while *closed {
            closed = self.gate_changed.wait(closed).unwrap();
        }
        self.held.fetch_sub(1, Ordering::SeqCst);
    }

    /// Returns true when this call must fail, using up one injected failure.
    fn take_failure(&self, event_id: &str) -> bool {
        let mut failures = self.failures.lock().unwrap();
        match failures.get_mut(event_id) {
            Some(0) | None => false,
            Some(left) => {
                if *left != ALWAYS {
                    *left -= 1;
                }
                true
            }
        }
    }
}

/// Runs the real Stripe handler unless the plan injects a failure for the event.
pub struct FaultyStripe {
    pub plan: Arc<FaultPlan>,
}

impl Handler for FaultyStripe {
    fn extract(&self, event_type: &str, payload: &str) -> Result<Extraction, ExtractError> {
        let event_id = serde_json::from_str::<serde_json::Value>(payload)
            .ok()
            .and_then(|value| value["id"].as_str().map(str::to_owned))
            .unwrap_or_default();
        self.plan.calls.lock().unwrap().push(event_id.clone());
        self.plan.wait_at_gate();
        if let Some(pause) = self.plan.take_stall(&event_id) {
            std::thread::sleep(pause);
        }
        if self.plan.take_failure(&event_id) {
            return Err(ExtractError::InvalidField {
                field: "id".to_owned(),
                reason: format!("injected test fault for {event_id}"),
            });
        }
        StripeHandler.extract(event_type, payload)
    }
}

/// Returns a handler map with the faulty Stripe handler and its plan.
pub fn faulty_handlers() -> (HashMap<String, Arc<dyn Handler>>, Arc<FaultPlan>) {
    let plan = Arc::new(FaultPlan::default());
    let handler: Arc<dyn Handler> = Arc::new(FaultyStripe { plan: plan.clone() });
    (HashMap::from([("stripe".to_owned(), handler)]), plan)
}
