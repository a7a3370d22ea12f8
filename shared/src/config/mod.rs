//! Settings shared by both binaries: command-line flags with environment fallbacks, the
//! aliases existing .NET deployments use, and an optional TOML file for provider details.

pub mod durations;
pub mod file;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use self::durations::DelayTiers;
use crate::http::client_ip::IpNetwork;
use crate::secret::Secret;
use crate::telemetry::LogFormat;

/// Database used when neither `PAYHOOK_DATABASE_URL` nor its alias is set.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://payhook.db";

/// Attempts per event when nothing is configured: the first try plus five retries, one per
/// default delay tier (5 s, 30 s, 2 min, 10 min, 1 h).
pub const DEFAULT_MAX_ATTEMPTS: i32 = 6;

/// Names accepted from the predecessor service's environment, each with payhook's own name.
/// payhook's own name wins when both are set.
pub const ENV_ALIASES: [(&str, &str); 4] = [
    (
        "ConnectionStrings__DefaultConnection",
        "PAYHOOK_DATABASE_URL",
    ),
    (
        "WebhookProcessorSettings__MaxRetries",
        "PAYHOOK_MAX_ATTEMPTS",
    ),
    (
        "WebhookProcessorSettings__ErrorRetryInterval",
        "PAYHOOK_RETRY_BASE_MS",
    ),
    (
        "WebhookProcessorSettings__ProcessingInterval",
        "PAYHOOK_POLL_INTERVAL_MS",
    ),
];

/// Invalid or inconsistent settings; startup stops with this message.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("cannot read {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("environment variable {name} is unset or holds no secret")]
    EmptyEnv { name: String },
}

/// Settings read from flags and environment variables.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Address of the public webhook listener.
    #[arg(long, env = "PAYHOOK_LISTEN", default_value = "0.0.0.0:7002")]
    pub listen: SocketAddr,

    /// Address of the admin listener (health, metrics, monitoring API).
    #[arg(long, env = "PAYHOOK_ADMIN_LISTEN", default_value = "127.0.0.1:7003")]
    pub admin_listen: SocketAddr,

    /// Bearer token for the admin API; required when the admin listener is not on loopback.
    #[arg(long, env = "PAYHOOK_ADMIN_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub admin_token: Option<Secret>,

    /// Database URL: sqlite://FILE, postgres://..., mssql://... or an ADO.NET connection
    /// string [default: sqlite://payhook.db; alias: ConnectionStrings__DefaultConnection].
    #[arg(long, env = "PAYHOOK_DATABASE_URL", hide_env_values = true, value_parser = parse_secret)]
    pub database_url: Option<Secret>,

    /// RabbitMQ URL; when unset, the embedded queue runs workers inside the ingest process.
    #[arg(long, env = "PAYHOOK_AMQP_URL", hide_env_values = true, value_parser = parse_secret)]
    pub amqp_url: Option<Secret>,

    /// Comma-separated Stripe endpoint signing secrets (several during rotation).
    #[arg(
        long,
        env = "PAYHOOK_STRIPE_SECRETS",
        value_delimiter = ',',
        value_parser = parse_secret,
        hide_env_values = true
    )]
    pub stripe_secrets: Vec<Secret>,

    /// File with Stripe signing secrets, one per line (e.g. a Kubernetes secret mount).
    #[arg(long, env = "PAYHOOK_STRIPE_SECRETS_FILE")]
    pub stripe_secrets_file: Option<PathBuf>,

    /// Maximum age, and maximum clock skew into the future, of a Stripe signature, in seconds.
    #[arg(long, env = "PAYHOOK_STRIPE_TOLERANCE_SECONDS", default_value_t = 300)]
    pub stripe_tolerance_seconds: u64,

    /// Optional TOML file with further providers and settings.
    #[arg(long, env = "PAYHOOK_CONFIG")]
    pub config: Option<PathBuf>,

    /// Processing attempts per event before it becomes dead [default: 6; alias:
    /// WebhookProcessorSettings__MaxRetries].
    #[arg(long, env = "PAYHOOK_MAX_ATTEMPTS")]
    pub max_attempts: Option<i32>,

    /// Delay before the first retry, in milliseconds; later retries double it [default:
    /// 5000; alias: WebhookProcessorSettings__ErrorRetryInterval].
    #[arg(long, env = "PAYHOOK_RETRY_BASE_MS")]
    pub retry_base_ms: Option<u64>,

    /// Upper bound of a retry delay, in seconds.
    #[arg(long, env = "PAYHOOK_RETRY_MAX_SECONDS", default_value_t = 3600)]
    pub retry_max_seconds: u64,

    /// How often idle embedded workers look for due retries, in milliseconds [default: 500;
    /// alias: WebhookProcessorSettings__ProcessingInterval].
    #[arg(long, env = "PAYHOOK_POLL_INTERVAL_MS")]
    pub poll_interval_ms: Option<u64>,

    /// Number of embedded worker tasks (embedded queue only).
    #[arg(long, env = "PAYHOOK_WORKERS", default_value_t = 2)]
    pub workers: usize,

    /// Apply database migrations at start-up.
    #[arg(long, env = "PAYHOOK_MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,

    /// Maximum webhook body size, in bytes; larger bodies get 413.
    #[arg(long, env = "PAYHOOK_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Time allowed for reading a webhook body and answering, in seconds.
    #[arg(long, env = "PAYHOOK_REQUEST_TIMEOUT_SECONDS", default_value_t = 15)]
    pub request_timeout_seconds: u64,

    /// Time a client has to send the request headers, in seconds.
    #[arg(
        long,
        env = "PAYHOOK_HEADER_READ_TIMEOUT_SECONDS",
        default_value_t = 10
    )]
    pub header_read_timeout_seconds: u64,

    /// Maximum open connections on the public listener.
    #[arg(long, env = "PAYHOOK_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Comma-separated proxies (addresses or CIDR networks) whose X-Forwarded-For and
    /// Forwarded headers are trusted for the source IP.
    #[arg(long, env = "PAYHOOK_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// Maximum database connections per process.
    #[arg(long, env = "PAYHOOK_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,

    /// Log format: auto (JSON unless on a terminal), json or text.
    #[arg(long, env = "PAYHOOK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// PayPal webhook id (the 1 to 50 letters and digits PayPal shows for the webhook).
    /// Enables the `paypal` route with certificate verification against the system roots;
    /// use a `[[paypal]]` section of the config file for anything else.
    #[arg(long, env = "PAYHOOK_PAYPAL_WEBHOOK_ID")]
    pub paypal_webhook_id: Option<String>,

    /// PayPal environment of PAYHOOK_PAYPAL_WEBHOOK_ID: live or sandbox. It decides which
    /// certificate hosts and certificate names are accepted.
    #[arg(
        long,
        env = "PAYHOOK_PAYPAL_MODE",
        value_parser = ["live", "sandbox"],
        default_value = "live"
    )]
    pub paypal_mode: String,

    /// Comma-separated Standard Webhooks secrets (`whsec_` + base64; several during
    /// rotation). Enables the `standard` route with a 300 s timestamp tolerance.
    #[arg(
        long,
        env = "PAYHOOK_STANDARD_WEBHOOKS_SECRETS",
        value_delimiter = ',',
        value_parser = parse_secret,
        hide_env_values = true
    )]
    pub standard_webhooks_secrets: Vec<Secret>,

    /// Prefix of the RabbitMQ exchange and queue names (`<prefix>.events`, `<prefix>.work`,
    /// `<prefix>.retry.<delay>`, `<prefix>.dead`).
    #[arg(long, env = "PAYHOOK_AMQP_PREFIX", default_value = "payhook")]
    pub amqp_prefix: String,

    /// Comma-separated retry delays, shortest first, each a whole number with the unit ms,
    /// s, m or h. Failed attempt n waits the n-th delay (the last one once the list ends).
    #[arg(
        long,
        env = "PAYHOOK_AMQP_DELAY_TIERS",
        default_value = "5s,30s,2m,10m,1h"
    )]
    pub amqp_delay_tiers: DelayTiers,

    /// Maximum unacknowledged RabbitMQ deliveries per consumer process (at least 1). Twice
    /// the number of attempts at once, so the next deliveries wait in the process.
    #[arg(long, env = "PAYHOOK_AMQP_PREFETCH", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub amqp_prefetch: u16,

    /// Time one processing attempt may take, in seconds; a slower attempt counts as failed
    /// and is retried.
    #[arg(long, env = "PAYHOOK_HANDLER_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub handler_timeout_seconds: u64,

    /// How often the sweeper looks for events whose queue message is missing, in seconds.
    #[arg(long, env = "PAYHOOK_SWEEP_INTERVAL_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_interval_seconds: u64,

    /// Age, in seconds, at which a stored event whose publish failed is published again.
    #[arg(long, env = "PAYHOOK_UNPUBLISHED_GRACE_SECONDS", default_value_t = 15)]
    pub unpublished_grace_seconds: u64,

    /// Time, in seconds, after its last publish or past its retry time at which an
    /// unfinished event is presumed to have lost its message and is published again.
    #[arg(long, env = "PAYHOOK_STALE_AFTER_SECONDS", default_value_t = 900)]
    pub stale_after_seconds: u64,

    /// How long a consumer's claim on an event lasts, in seconds; after that another
    /// consumer may take the event over. Keep it above the handler timeout.
    #[arg(long, env = "PAYHOOK_LEASE_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub lease_seconds: u64,

    /// Events one consumer process handles at the same time (at least 1). An attempt mostly
    /// waits for the database, and the writes of attempts running together share one
    /// transaction, so many at once cost little.
    #[arg(long, env = "PAYHOOK_CONSUMERS", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    pub consumers: u64,

    /// Maximum size of a request head (request line and headers), in bytes; a larger head
    /// gets 431.
    #[arg(long, env = "PAYHOOK_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Maximum number of request headers; more get 431.
    #[arg(long, env = "PAYHOOK_MAX_HEADERS", default_value_t = 64)]
    pub max_headers: usize,

    /// Seconds an idle keep-alive connection stays open between requests.
    #[arg(long, env = "PAYHOOK_KEEP_ALIVE_TIMEOUT_SECONDS", default_value_t = 30)]
    pub keep_alive_timeout_seconds: u64,

    /// Maximum nesting depth of a webhook's JSON body; deeper bodies get 400
    /// `payload_too_deep`.
    #[arg(long, env = "PAYHOOK_MAX_JSON_DEPTH", default_value_t = 64)]
    pub max_json_depth: usize,

    /// Maximum size of an HTTP/2 request's header list, in bytes.
    #[arg(long, env = "PAYHOOK_H2_MAX_HEADER_LIST_BYTES", default_value_t = 16 * 1024)]
    pub h2_max_header_list_bytes: u32,

    /// Maximum concurrent streams per HTTP/2 connection.
    #[arg(long, env = "PAYHOOK_H2_MAX_CONCURRENT_STREAMS", default_value_t = 64)]
    pub h2_max_concurrent_streams: u32,

    /// Signature failures one source IP may cause in a burst before getting 429.
    #[arg(long, env = "PAYHOOK_SIGNATURE_FAILURE_BURST", default_value_t = 20)]
    pub signature_failure_burst: u32,

    /// Signature failures per minute one source IP may cause after its burst; 0 disables
    /// the limit.
    #[arg(
        long,
        env = "PAYHOOK_SIGNATURE_FAILURES_PER_MINUTE",
        default_value_t = 60
    )]
    pub signature_failures_per_minute: u32,

    /// Source IPs tracked by the signature failure limit; the least recently seen are
    /// evicted beyond this.
    #[arg(long, env = "PAYHOOK_RATE_LIMIT_MAX_IPS", default_value_t = 10_000)]
    pub rate_limit_max_ips: usize,

    /// Per-provider source IP allowlists: `provider=CIDR;CIDR,provider=CIDR`, e.g.
    /// `stripe=3.18.12.63/32;3.130.192.231/32`. Providers not listed accept any address.
    #[arg(long, env = "PAYHOOK_IP_ALLOWLIST", value_delimiter = ',')]
    pub ip_allowlist: Vec<String>,

    /// Keys for encrypting stored raw payloads: `id:base64key,id:base64key` with 32-byte
    /// AES-256 keys. The first key encrypts; every key decrypts.
    #[arg(
        long,
        env = "PAYHOOK_PAYLOAD_KEYS",
        value_delimiter = ',',
        value_parser = parse_secret,
        hide_env_values = true
    )]
    pub payload_keys: Vec<Secret>,

    /// File with payload keys, one `id:base64key` per line; appended after
    /// `PAYHOOK_PAYLOAD_KEYS`.
    #[arg(long, env = "PAYHOOK_PAYLOAD_KEYS_FILE")]
    pub payload_keys_file: Option<PathBuf>,
}

fn parse_secret(value: &str) -> Result<Secret, String> {
    Ok(Secret::new(value.trim()))
}

impl Settings {
    /// Fills unset settings from the predecessor's environment names, read through `lookup`
    /// (normally `std::env::var`), so existing deployments keep working.
    pub fn apply_aliases(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if self.database_url.is_none() {
            self.database_url = lookup(ENV_ALIASES[0].0)
                .filter(|v| !v.trim().is_empty())
                .map(|v| Secret::new(v.trim()));
        }
        if self.max_attempts.is_none()
            && let Some(value) = lookup(ENV_ALIASES[1].0)
        {
            self.max_attempts = Some(parse_alias(ENV_ALIASES[1].0, &value)?);
        }
        if self.retry_base_ms.is_none()
            && let Some(value) = lookup(ENV_ALIASES[2].0)
        {
            self.retry_base_ms = Some(parse_alias(ENV_ALIASES[2].0, &value)?);
        }
        if self.poll_interval_ms.is_none()
            && let Some(value) = lookup(ENV_ALIASES[3].0)
        {
            self.poll_interval_ms = Some(parse_alias(ENV_ALIASES[3].0, &value)?);
        }
        Ok(())
    }

    /// Checks every setting whose value is validated lazily, so that a bad value stops
    /// start-up before anything runs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.max_attempts()?;
        self.admin_token()?;
        self.trusted_proxies()?;
        self.stripe_secrets()?;
        if let Some(url) = &self.amqp_url {
            let url = url.expose().trim();
            let scheme = url.split_once("://").map(|(scheme, _)| scheme);
            if !matches!(scheme, Some("amqp" | "amqps")) {
                return Err(ConfigError::Invalid {
                    name: "PAYHOOK_AMQP_URL",
                    reason: "expected an amqp:// or amqps:// URL, e.g. \
                             amqp://user:password@host:5672/%2f"
                        .to_string(),
                });
            }
        }
        Ok(())
    }

    /// Returns the database URL, falling back to the embedded SQLite file.
    pub fn database_url(&self) -> &str {
        self.database_url
            .as_ref()
            .map(Secret::expose)
            .filter(|url| !url.is_empty())
            .unwrap_or(DEFAULT_DATABASE_URL)
    }

    /// Returns the attempts per event, validated to be at least 1.
    pub fn max_attempts(&self) -> Result<i32, ConfigError> {
        let value = self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if value < 1 {
            return Err(ConfigError::Invalid {
                name: "PAYHOOK_MAX_ATTEMPTS",
                reason: format!("{value} is less than 1"),
            });
        }
        Ok(value)
    }

    /// Returns the delay before the first retry.
    pub fn retry_base_delay(&self) -> Duration {
        Duration::from_millis(self.retry_base_ms.unwrap_or(5000))
    }

    /// Returns the idle polling interval of embedded workers.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.unwrap_or(500).max(10))
    }

    /// Returns the admin token, enforcing that a non-loopback admin listener has one.
    pub fn admin_token(&self) -> Result<Option<Secret>, ConfigError> {
        let token = self
            .admin_token
            .as_ref()
            .map(|t| t.expose().trim())
            .filter(|t| !t.is_empty())
            .map(Secret::new);
        if token.is_none() && !self.admin_listen.ip().is_loopback() {
            return Err(ConfigError::Invalid {
                name: "PAYHOOK_ADMIN_TOKEN",
                reason: format!(
                    "required because the admin listener {} is not on loopback",
                    self.admin_listen
                ),
            });
        }
        Ok(token)
    }

    /// Returns every configured Stripe secret, from the flag and from the secrets file.
    pub fn stripe_secrets(&self) -> Result<Vec<Secret>, ConfigError> {
        let mut secrets = Vec::with_capacity(self.stripe_secrets.len());
        for (index, secret) in self.stripe_secrets.iter().enumerate() {
            let secret = secret.expose().trim();
            if secret.is_empty() {
                return Err(ConfigError::Invalid {
                    name: "PAYHOOK_STRIPE_SECRETS",
                    reason: format!(
                        "item {} is empty; remove the stray comma or set the secret",
                        index + 1
                    ),
                });
            }
            secrets.push(Secret::new(secret));
        }
        if let Some(path) = &self.stripe_secrets_file {
            secrets.extend(read_secret_lines(path)?);
        }
        Ok(secrets)
    }

    /// Parses the trusted proxy networks.
    pub fn trusted_proxies(&self) -> Result<Vec<IpNetwork>, ConfigError> {
        self.trusted_proxies
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.parse()
                    .map_err(
                        |e: crate::http::client_ip::InvalidNetwork| ConfigError::Invalid {
                            name: "PAYHOOK_TRUSTED_PROXIES",
                            reason: e.to_string(),
                        },
                    )
            })
            .collect()
    }
}

impl Settings {
    /// Returns the time one processing attempt may take.
    pub fn handler_timeout(&self) -> Duration {
        Duration::from_secs(self.handler_timeout_seconds)
    }

    /// Returns the interval between two sweeper rounds.
    pub fn sweep_interval(&self) -> Duration {
        Duration::from_secs(self.sweep_interval_seconds)
    }

    /// Returns how long a consumer's claim on an event lasts.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }
}

fn parse_alias<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::Invalid {
        name,
        reason: format!("{value:?} is not a valid number"),
    })
}

/// Reads one secret per non-empty line; lines starting with `#` are comments.
pub fn read_secret_lines(path: &std::path::Path) -> Result<Vec<Secret>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(Secret::new)
        .collect())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }

    fn parse(args: &[&str]) -> Settings {
        let mut all = vec!["payhook"];
        all.extend_from_slice(args);
        Cli::parse_from(all).settings
    }

    #[test]
    fn aliases_fill_unset_settings() {
        let mut settings = parse(&[]);
        let lookup = |name: &str| match name {
            "ConnectionStrings__DefaultConnection" => Some("Server=db;Database=W".to_string()),
            "WebhookProcessorSettings__MaxRetries" => Some("10".to_string()),
            _ => None,
        };

        settings.apply_aliases(lookup).unwrap();

        assert_eq!(settings.database_url(), "Server=db;Database=W");
        assert_eq!(settings.max_attempts().unwrap(), 10);
    }

    #[test]
    fn own_names_win_over_aliases() {
        let mut settings = parse(&["--database-url", "postgres://x", "--max-attempts", "3"]);
        let lookup = |name: &str| match name {
            "ConnectionStrings__DefaultConnection" => Some("Server=db".to_string()),
            "WebhookProcessorSettings__MaxRetries" => Some("10".to_string()),
            _ => None,
        };

        settings.apply_aliases(lookup).unwrap();

        assert_eq!(settings.database_url(), "postgres://x");
        assert_eq!(settings.max_attempts().unwrap(), 3);
    }

    #[test]
    fn invalid_alias_value_is_rejected() {
        let mut settings = parse(&[]);
        let lookup = |name: &str| {
            (name == "WebhookProcessorSettings__MaxRetries").then(|| "ten".to_string())
        };

        let error = settings.apply_aliases(lookup).unwrap_err();

        assert!(
            error
                .to_string()
                .contains("WebhookProcessorSettings__MaxRetries"),
            "{error}"
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let settings = parse(&[
            "--database-url",
            "postgres://app:db-password@db/payhook",
            "--amqp-url",
            "amqp://app:broker-password@mq",
            "--stripe-secrets",
            "whsec_stripe_value",
            "--admin-token",
            "admin-token-value",
        ]);

        let debug = format!("{settings:?}");

        for secret in [
            "db-password",
            "broker-password",
            "whsec_stripe_value",
            "admin-token-value",
        ] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert_eq!(
            settings.database_url(),
            "postgres://app:db-password@db/payhook"
        );
    }

    #[test]
    fn validate_rejects_bad_values_early() {
        let cases: [(&[&str], &str); 4] = [
            (&["--max-attempts", "0"], "PAYHOOK_MAX_ATTEMPTS"),
            (&["--admin-listen", "0.0.0.0:7003"], "PAYHOOK_ADMIN_TOKEN"),
            (&["--stripe-secrets", "whsec_a,"], "PAYHOOK_STRIPE_SECRETS"),
            (&["--amqp-url", "http://mq:5672"], "PAYHOOK_AMQP_URL"),
        ];

        for (args, name) in cases {
            let error = parse(args).validate().unwrap_err();
            assert!(error.to_string().contains(name), "{args:?}: {error}");
        }
        assert!(
            parse(&["--amqp-url", "amqp://guest:guest@127.0.0.1:5672/%2f"])
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn public_admin_listener_requires_token() {
        let settings = parse(&["--admin-listen", "0.0.0.0:7003"]);

        assert!(settings.admin_token().is_err());
        let settings = parse(&["--admin-listen", "0.0.0.0:7003", "--admin-token", "t0k"]);
        assert!(settings.admin_token().unwrap().is_some());
    }

    #[test]
    fn defaults_use_embedded_sqlite() {
        let settings = parse(&[]);

        assert_eq!(settings.database_url(), DEFAULT_DATABASE_URL);
        assert!(
            !format!("{settings:?}").contains("sqlite"),
            "Debug output must not show connection strings"
        );
        assert_eq!(settings.max_attempts().unwrap(), DEFAULT_MAX_ATTEMPTS);
        assert!(settings.amqp_url.is_none());
    }

    #[test]
    fn broker_settings_have_defaults() {
        let settings = parse(&[]);

        assert_eq!(settings.amqp_prefix, "payhook");
        assert_eq!(settings.amqp_delay_tiers.to_string(), "5s,30s,2m,10m,1h");
        assert_eq!(settings.amqp_prefetch, 64);
        assert_eq!(settings.handler_timeout(), Duration::from_secs(30));
        assert_eq!(settings.lease(), Duration::from_secs(60));
        assert_eq!(settings.consumers, 32);
    }

    #[test]
    fn invalid_delay_tiers_fail_parsing() {
        let result = Cli::try_parse_from(["payhook", "--amqp-delay-tiers", "5s,2x"]);

        let error = result.err().expect("5s,2x was accepted").to_string();
        assert!(error.contains("--amqp-delay-tiers"), "{error}");
        assert!(error.contains("unknown unit \"x\""), "{error}");
    }

    #[test]
    fn zero_prefetch_fails_parsing() {
        let result = Cli::try_parse_from(["payhook", "--amqp-prefetch", "0"]);

        assert!(
            result.is_err(),
            "prefetch 0 means unlimited and must be rejected"
        );
    }
}
