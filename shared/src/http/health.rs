//! Readiness checks of dependencies other than the database, reported by `/health/ready`.

use std::time::Duration;

use async_trait::async_trait;

use crate::queue::rabbitmq::RabbitPublisher;

/// Maximum time one readiness check may take before the dependency counts as down.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A dependency the service needs in order to be ready.
#[async_trait]
pub trait HealthCheck: Send + Sync + 'static {
    /// Key of the dependency in the readiness response and the `dependency` metric label.
    fn name(&self) -> &'static str;

    /// Returns `Err` with a reason, safe to log, when the dependency is unusable.
    async fn check(&self) -> Result<(), String>;
}

/// Reports the broker as up when the publisher is connected and every queue of the
/// topology exists.
pub struct BrokerHealth(pub RabbitPublisher);

#[async_trait]
impl HealthCheck for BrokerHealth {
    fn name(&self) -> &'static str {
        "broker"
    }

    async fn check(&self) -> Result<(), String> {
        self.0
            .queue_depths()
            .await
            .map(|_| ())
            .map_err(|error| error.to_string())
    }
}

/// Reports the consumer as up while it is attached to the work queue.
pub struct ConsumingHealth(pub std::sync::Arc<std::sync::atomic::AtomicBool>);

#[async_trait]
impl HealthCheck for ConsumingHealth {
    fn name(&self) -> &'static str {
        "consumer"
    }

    async fn check(&self) -> Result<(), String> {
        if self.0.load(std::sync::atomic::Ordering::Relaxed) {
            Ok(())
        } else {
            Err("not attached to the work queue".to_string())
        }
    }
}

/// Runs one check within [`CHECK_TIMEOUT`].
pub async fn run_check(check: &dyn HealthCheck) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
        Ok(result) => result,
        Err(_) => Err(format!("check timed out after {CHECK_TIMEOUT:?}")),
    }
}
