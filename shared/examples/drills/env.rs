//! The services of one drill: its database on the drill PostgreSQL, its queue prefix on the
//! drill RabbitMQ node, and the payhook processes it starts and kills.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use payhook::queue::rabbitmq::{RabbitConfig, RabbitPublisher, TopologyNames};
use payhook::secret::Secret;
use payhook::storage::StoreOptions;
use tokio_postgres::NoTls;

use crate::Options;

/// Signing secret of the `stripe` route in every drill.
pub const STRIPE_SECRET: &str = "whsec_payhook_drill";
/// Signing secret of the config-defined `drillpay` route.
pub const DRILLPAY_SECRET: &str = "drillpay-secret";
/// Maximum wait for a started process to listen, or for a stopped one to exit.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings every drill process gets unless the drill runner's own environment sets them, so
/// an operator can run a drill with a protection turned off, e.g.
/// `PAYHOOK_SWEEP_INTERVAL_SECONDS=100000`.
const TUNABLE_DEFAULTS: &[(&str, &str)] = &[
    ("PAYHOOK_AMQP_DELAY_TIERS", "1s,2s"),
    ("PAYHOOK_SWEEP_INTERVAL_SECONDS", "1"),
    ("PAYHOOK_UNPUBLISHED_GRACE_SECONDS", "2"),
    ("PAYHOOK_MAX_ATTEMPTS", "5"),
    ("PAYHOOK_LEASE_SECONDS", "4"),
    ("PAYHOOK_HANDLER_TIMEOUT_SECONDS", "3"),
    ("PAYHOOK_LOG_FORMAT", "json"),
    ("RUST_LOG", "info"),
];

/// One drill's database, queue prefix, log directory and child processes.
pub struct DrillEnv {
    pub name: String,
    pub options: Options,
    pub database_url: String,
    pub prefix: String,
    pub log_dir: PathBuf,
    /// Settings passed to every process, after the tunable defaults.
    pub settings: Vec<(String, String)>,
    started: Mutex<usize>,
}

impl DrillEnv {
    /// Creates the drill's database (dropping a leftover one) and migrates it.
    pub async fn new(name: &str, options: &Options) -> anyhow::Result<DrillEnv> {
        let database = format!("drill_{}", name.replace('-', "_"));
        let admin = connect(&options.postgres_url).await?;
        for statement in [
            format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
            format!("CREATE DATABASE {database}"),
        ] {
            admin
                .batch_execute(&statement)
                .await
                .with_context(|| format!("{statement} failed"))?;
        }
        let mut url = url::Url::parse(&options.postgres_url).context("invalid PostgreSQL URL")?;
        url.set_path(&format!("/{database}"));
        let database_url = url.to_string();
        let store = payhook::storage::connect(&database_url, &StoreOptions::default()).await?;
        store
            .migrate()
            .await
            .context("migrating the drill database failed")?;

        let log_dir = options.work_dir.join(name);
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("creating {} failed", log_dir.display()))?;
        let prefix = format!("drill-{name}-{:08x}", fastrand::u32(..));
        let mut settings: Vec<(String, String)> = TUNABLE_DEFAULTS
            .iter()
            .filter(|(key, _)| std::env::var_os(key).is_none())
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        settings.extend(
            [
                ("PAYHOOK_DATABASE_URL", database_url.as_str()),
                ("PAYHOOK_AMQP_URL", options.amqp_url.as_str()),
                ("PAYHOOK_AMQP_PREFIX", prefix.as_str()),
                ("PAYHOOK_STRIPE_SECRETS", STRIPE_SECRET),
            ]
            .map(|(key, value)| (key.to_owned(), value.to_owned())),
        );
        Ok(DrillEnv {
            name: name.to_owned(),
            options: options.clone(),
            database_url,
            prefix,
            log_dir,
            settings,
            started: Mutex::new(0),
        })
    }

    /// Opens a new connection to the drill database.
    pub async fn db(&self) -> anyhow::Result<tokio_postgres::Client> {
        connect(&self.database_url).await
    }

    /// Returns the queue names of this drill's prefix.
    pub fn names(&self) -> TopologyNames {
        TopologyNames::new(&self.rabbit_config())
    }

    fn rabbit_config(&self) -> RabbitConfig {
        let mut config = RabbitConfig::new(Secret::new(self.options.amqp_url.clone()));
        config.prefix = self.prefix.clone();
        config.delay_tiers = vec![Duration::from_secs(1), Duration::from_secs(2)];
        config
    }

    /// Returns the ready messages in `queue`.
    pub async fn depth(&self, queue: &str) -> anyhow::Result<u32> {
        let publisher = RabbitPublisher::new(self.rabbit_config());
        let depths = publisher.queue_depths().await;
        publisher.close().await;
        let depths = depths.context("reading queue depths failed")?;
        Ok(depths
            .iter()
            .find(|depth| depth.queue == queue)
            .map_or(0, |depth| depth.messages))
    }

    /// Starts `payhook-ingest run` on free loopback ports and waits until it listens.
    pub async fn start_ingest(&self, extra: &[(&str, &str)]) -> anyhow::Result<Service> {
        let public = free_port()?;
        self.start_ingest_on(public, extra).await
    }

    /// Starts `payhook-ingest run` with its public listener on `public`.
    pub async fn start_ingest_on(
        &self,
        public: SocketAddr,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Service> {
        let admin = free_port()?;
        let mut settings = vec![
            ("PAYHOOK_LISTEN".to_owned(), public.to_string()),
            ("PAYHOOK_ADMIN_LISTEN".to_owned(), admin.to_string()),
        ];
        settings.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut service = self.spawn("ingest", &self.options.ingest_bin, &["run"], &settings)?;
        service.public = Some(public);
        service.admin = Some(admin);
        wait_listening(&mut service, public).await?;
        Ok(service)
    }

    /// Starts `payhook-consumer run`.
    pub fn start_consumer(&self, extra: &[(&str, &str)]) -> anyhow::Result<Service> {
        let settings = consumer_settings(extra)?;
        self.spawn("consumer", &self.options.consumer_bin, &["run"], &settings)
    }

    /// Starts this program's `slow-consumer` command: a consumer whose handler sleeps first
    /// for chosen events.
    pub fn start_slow_consumer(&self, extra: &[(&str, &str)]) -> anyhow::Result<Service> {
        let settings = consumer_settings(extra)?;
        let program = std::env::current_exe().context("locating the drill program failed")?;
        self.spawn("slow-consumer", &program, &["slow-consumer"], &settings)
    }

    /// Runs `payhook-consumer` with an operator command and returns its output.
    pub fn run_operator(&self, args: &[&str], extra: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut command = Command::new(&self.options.consumer_bin);
        command.args(args);
        for (key, value) in self.settings.iter() {
            command.env(key, value);
        }
        for (key, value) in extra {
            command.env(key, value);
        }
        let output = command
            .output()
            .with_context(|| format!("running payhook-consumer {args:?} failed"))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!(
                "payhook-consumer {args:?} exited with {}: {stdout}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(stdout)
    }

    /// Runs the fault-control script with `action`, e.g. `broker-stop` or `db-start`.
    pub fn control(&self, action: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        let output = Command::new(&self.options.control)
            .arg(action)
            .output()
            .with_context(|| format!("running the control script for {action} failed"))?;
        if !output.status.success() {
            bail!(
                "control {action} exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        println!(
            "  [{}] {action} done in {:.1}s",
            self.name,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    fn spawn(
        &self,
        role: &str,
        program: &Path,
        args: &[&str],
        extra: &[(String, String)],
    ) -> anyhow::Result<Service> {
        let number = {
            let mut started = self.started.lock().unwrap();
            *started += 1;
            *started
        };
        let log_path = self.log_dir.join(format!("{number:02}-{role}.log"));
        let log = File::create(&log_path)
            .with_context(|| format!("creating {} failed", log_path.display()))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (key, value) in self.settings.iter().chain(extra) {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {} failed", program.display()))?;
        Ok(Service {
            role: format!("{role} #{number}"),
            child,
            log_path,
            public: None,
            admin: None,
        })
    }
}

/// Returns `extra` plus a free admin address, in case the consumer serves one.
fn consumer_settings(extra: &[(&str, &str)]) -> anyhow::Result<Vec<(String, String)>> {
    let mut settings = vec![("PAYHOOK_ADMIN_LISTEN".to_owned(), free_port()?.to_string())];
    settings.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Ok(settings)
}

/// A payhook process started by a drill. Dropping it kills the process.
pub struct Service {
    pub role: String,
    child: Child,
    pub log_path: PathBuf,
    pub public: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
}

impl Service {
    /// Returns the operating system's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails when the process has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited with {status}; see {}",
                self.role,
                self.log_path.display()
            ),
        }
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().context("SIGKILL failed")?;
        self.child.wait()?;
        Ok(())
    }

    /// Sends `signal` (a name such as `TERM`, `STOP` or `CONT`) with kill(1).
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .context("running kill failed")?;
        if !status.success() {
            bail!("kill -{signal} {} failed", self.pid());
        }
        Ok(())
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.signal("TERM")?;
        let started = Instant::now();
        while started.elapsed() < PROCESS_TIMEOUT {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("{} exited with {status} after SIGTERM", self.role);
                }
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "{} did not exit within {PROCESS_TIMEOUT:?} of SIGTERM",
            self.role
        )
    }

    /// Returns the URL the webhook routes of this ingest start with.
    pub fn webhooks_url(&self) -> String {
        let public = self.public.expect("not an ingest process");
        format!("http://{public}/api/webhooks")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn wait_listening(service: &mut Service, address: SocketAddr) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < PROCESS_TIMEOUT {
        service.ensure_running()?;
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "{} did not listen on {address} within {PROCESS_TIMEOUT:?}",
        service.role
    )
}

/// Returns a loopback address whose port was free a moment ago.
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port failed")?;
    Ok(listener.local_addr()?)
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .context("connecting to the drill PostgreSQL failed")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}
