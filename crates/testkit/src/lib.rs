//! Start a whole switchboard stack in-process, on ephemeral ports of 127.0.0.1, for tests:
//! point the client under test at it, make its ports refuse, slow down or reset, and read
//! back the mail it sent.
//!
//! Every port is bound to port 0 (the kernel picks a free one) on 127.0.0.1, so tests never
//! collide; the stack is listening when [`Stack::start`] (or [`StackBuilder::start`])
//! returns, so there is nothing to wait for. A stack with TLS services gets a fresh local CA
//! in a temporary directory; [`Stack::ca_pem`] is the certificate its clients must trust.
//! Dropping a [`Stack`] shuts it down in the background; [`Stack::shutdown`] waits for it.
//!
//! The stack is built by `switchboard-app`, exactly as the `switchboard` binary builds it.
//! To run the binary itself, see [`binary`].
//!
//! Layout: `lib.rs` (this file) builds and runs a [`Stack`]; `binary.rs` runs the built
//! binary as a child process; `client.rs` holds what a test's client does with a server
//! (read until close, connect from a chosen address), each wait bounded.
//!
//! # Read back the mail your app sent
//!
//! ```
//! use std::time::Duration;
//! use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
//! use switchboard_testkit::{Query, Stack};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let stack = Stack::start(&["smtp"]).await?;
//!
//! // The app's mailer, pointed at the stack.
//! let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
//!     .port(stack.addr("smtp").port())
//!     .build();
//! let email = Message::builder()
//!     .from("app@example.test".parse()?)
//!     .to("alice@example.test".parse()?)
//!     .subject("Welcome")
//!     .body("Hello, Alice".to_owned())?;
//! mailer.send(email).await?;
//!
//! // The test waits for it (no polling) and reads it.
//! let to_alice = Query::parse("to:alice@example.test")?;
//! let message = stack.mail().wait_for(&to_alice, Duration::from_secs(5)).await.expect("no mail");
//! assert_eq!(message.summary().subject, "Welcome");
//! stack.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Make a client meet a reset, and check that it retries
//!
//! ```
//! use std::io::ErrorKind;
//! use std::net::SocketAddr;
//! use std::time::Duration;
//! use switchboard_testkit::{Stack, Toxic};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::net::TcpStream;
//!
//! /// The client under test: retries a request whose connection is reset.
//! async fn fetch(addr: SocketAddr, attempts: usize) -> std::io::Result<String> {
//!     let mut last = None;
//!     for _ in 0..attempts {
//!         let mut stream = TcpStream::connect(addr).await?;
//!         stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
//!         let mut answer = String::new();
//!         match stream.read_to_string(&mut answer).await {
//!             Ok(_) => return Ok(answer),
//!             Err(e) if e.kind() == ErrorKind::ConnectionReset => last = Some(e),
//!             Err(e) => return Err(e),
//!         }
//!     }
//!     Err(last.expect("at least one attempt"))
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let stack = Stack::start(&["http"]).await?;
//! let reset = stack.add_toxic("http", Toxic::reset_peer(Duration::ZERO))?;
//!
//! // Every attempt is reset: the client gives up with the error instead of hanging.
//! let error = fetch(stack.addr("http"), 3).await.unwrap_err();
//! assert_eq!(error.kind(), ErrorKind::ConnectionReset);
//!
//! // The fault is gone: the same client succeeds.
//! stack.remove_toxic("http", &reset.name)?;
//! assert!(fetch(stack.addr("http"), 3).await?.ends_with("ok\n"));
//! # Ok(())
//! # }
//! ```
//!
//! # Make a port refuse connections, or slow it down
//!
//! ```
//! use std::io::ErrorKind;
//! use std::time::{Duration, Instant};
//! use switchboard_testkit::{Stack, Toxic};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::net::TcpStream;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let stack = Stack::start(&["http"]).await?;
//! let addr = stack.addr("http");
//!
//! // Closed: no socket listens, so the kernel refuses, as for any port nobody serves.
//! stack.close("http").await?;
//! let error = TcpStream::connect(addr).await.unwrap_err();
//! assert_eq!(error.kind(), ErrorKind::ConnectionRefused);
//!
//! // Open again, on the same port, and slow: every answer 200 ms late.
//! stack.open("http").await?;
//! stack.add_toxic("http", Toxic::latency(Duration::from_millis(200)))?;
//! let start = Instant::now();
//! let mut stream = TcpStream::connect(addr).await?;
//! stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
//! let mut answer = String::new();
//! stream.read_to_string(&mut answer).await?;
//! assert!(answer.ends_with("ok\n"));
//! assert!(start.elapsed() >= Duration::from_millis(200));
//! # Ok(())
//! # }
//! ```

// A test harness reports misuse (a service that does not exist) by panicking, as assert! does.
#![allow(clippy::panic)]

pub mod binary;
pub mod client;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use switchboard_app::{App, Listening};
pub use switchboard_app::{AuthPolicy, Config, Control, Error, PortSpec, Stopped};
use switchboard_core::{ControlError, EventBus, PortControl, PortDirectory, PortStatus, Protocol};
pub use switchboard_faults::Toxic;
use switchboard_faults::ToxicControl;
use switchboard_mail::Chaos;
pub use switchboard_mail::{MailStore, Query, StoredMessage, Trigger, Triggers};
pub use switchboard_stubs::Stubs;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What to start: services on ephemeral ports, and settings.
#[derive(Debug)]
pub struct StackBuilder {
    config: Config,
}

/// Where a stack keeps its certificates.
#[derive(Debug)]
enum CertsDir {
    /// Removed when the stack is dropped.
    Temporary(tempfile::TempDir),
    Given(PathBuf),
}

impl CertsDir {
    fn path(&self) -> &Path {
        match self {
            CertsDir::Temporary(dir) => dir.path(),
            CertsDir::Given(path) => path,
        }
    }
}

impl StackBuilder {
    /// Add a port for the service called `name` (e.g. `"http"`, `"echo"`).
    ///
    /// # Panics
    /// If switchboard has no service of that name.
    pub fn service(mut self, name: &str) -> Self {
        let Some(service) = switchboard_app::service_names().find(|s| *s == name) else {
            panic!("switchboard has no service called {name:?}");
        };
        let mut spec = PortSpec::new(0, service, self.config.supervisor.max_connections);
        spec.bind = vec![[127, 0, 0, 1].into()];
        self.config.ports.push(spec);
        self
    }

    /// Add a UDP port for the service called `name` (`"echo"`, `"daytime"`, …).
    pub fn udp_service(self, name: &str) -> Self {
        self.service(name).port(|row| row.protocol = Protocol::Udp)
    }

    /// Change the port of the service added last (its rules, limits, toxics) before the
    /// stack starts.
    pub fn port(mut self, change: impl FnOnce(&mut PortSpec)) -> Self {
        if let Some(spec) = self.config.ports.last_mut() {
            change(spec);
        }
        self
    }

    /// Change settings (timeouts, limits, …) before the stack starts.
    pub fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    /// Keep the CA and server certificate in `dir` (created if needed) instead of a
    /// temporary directory, e.g. to start a second stack with the same CA.
    pub fn certs_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.tls.dir = Some(dir.into());
        self
    }

    /// Bind every port and start serving. When this returns, every port accepts
    /// connections.
    pub async fn start(mut self) -> Result<Stack, Error> {
        let certs = match &self.config.tls.dir {
            Some(dir) => CertsDir::Given(dir.clone()),
            None => {
                let dir = tempfile::tempdir().map_err(|source| {
                    Error::Certs(switchboard_certs::CertError::Write {
                        path: std::env::temp_dir(),
                        source,
                    })
                })?;
                self.config.tls.dir = Some(dir.path().to_owned());
                CertsDir::Temporary(dir)
            }
        };
        let app = App::bind(self.config)?;
        // Present once a TLS service is in the table (the app created it).
        let ca_pem = std::fs::read_to_string(certs.path().join("ca.pem")).ok();
        let listening = app.listening();
        let events = app.events().clone();
        let mail = app.mail().clone();
        let stubs = app.stubs().clone();
        let control = app.control();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run(async {
            // A dropped sender (the Stack was dropped) also means stop.
            let _ = stopped.await;
        }));
        Ok(Stack {
            listening,
            events,
            mail,
            stubs,
            control,
            ca_pem,
            _certs: certs,
            stop: Some(stop),
            task,
        })
    }
}

/// A running switchboard.
pub struct Stack {
    listening: Vec<Listening>,
    events: EventBus,
    mail: MailStore,
    stubs: Stubs,
    control: Arc<Control>,
    ca_pem: Option<String>,
    _certs: CertsDir,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Stopped>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("listening", &self.listening)
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Start a stack with these services and default settings; shorthand for
    /// `Stack::builder().service(a).service(b).start()`.
    pub async fn start(services: &[&str]) -> Result<Stack, Error> {
        services
            .iter()
            .fold(Stack::builder(), |builder, name| builder.service(name))
            .start()
            .await
    }

    /// An empty stack to add services to; settings start at their defaults.
    pub fn builder() -> StackBuilder {
        let mut config = Config::default();
        config.ports.clear();
        StackBuilder { config }
    }

    /// The address of the first port serving `service`.
    ///
    /// # Panics
    /// If the stack has no port for that service.
    pub fn addr(&self, service: &str) -> SocketAddr {
        match self.addrs(service).first() {
            Some(addr) => *addr,
            None => panic!("this stack has no port for the {service:?} service"),
        }
    }

    /// The addresses of every TCP port serving `service`, in the order they were added.
    pub fn addrs(&self, service: &str) -> Vec<SocketAddr> {
        self.addrs_of(service, Protocol::Tcp)
    }

    /// The address of the first UDP port serving `service`.
    ///
    /// # Panics
    /// If the stack has no UDP port for that service.
    pub fn udp_addr(&self, service: &str) -> SocketAddr {
        match self.addrs_of(service, Protocol::Udp).first() {
            Some(addr) => *addr,
            None => panic!("this stack has no UDP port for the {service:?} service"),
        }
    }

    fn addrs_of(&self, service: &str, protocol: Protocol) -> Vec<SocketAddr> {
        self.listening
            .iter()
            .filter(|l| l.service == service && l.protocol == protocol)
            .map(|l| l.addr)
            .collect()
    }

    /// `http://<addr>{path}` for the first port of `service`; `https://` for `"https"`.
    pub fn url(&self, service: &str, path: &str) -> String {
        let scheme = if service == "https" { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr(service))
    }

    /// The local CA's certificate (PEM) that clients must trust to reach the stack's TLS
    /// services.
    ///
    /// # Panics
    /// If the stack has no TLS service.
    pub fn ca_pem(&self) -> &str {
        match &self.ca_pem {
            Some(pem) => pem,
            None => panic!("this stack has no TLS service, so no CA"),
        }
    }

    /// The captured mail: read what the SMTP service received, or wait for it with
    /// [`MailStore::wait_for`].
    pub fn mail(&self) -> &MailStore {
        &self.mail
    }

    /// The stubs of the stack's `stubs` rows: add one with [`Stubs::add`] (WireMock's
    /// JSON), check how the client called with [`Stubs::find`].
    pub fn stubs(&self) -> &Stubs {
        &self.stubs
    }

    /// Every row of the port table, as `/api/ports` shows them.
    pub fn ports(&self) -> Vec<PortStatus> {
        PortDirectory::ports(self.control.table())
    }

    /// Close the port of `service`: new connections are refused (by the kernel: there is no
    /// socket); open ones go on.
    pub async fn close(&self, service: &str) -> Result<(), ControlError> {
        self.control.close_port(self.addr(service).port()).await
    }

    /// Listen on the port of `service` again, on the same address and port.
    pub async fn open(&self, service: &str) -> Result<(), ControlError> {
        self.control.open_port(self.addr(service).port()).await
    }

    /// Add a fault to the port of `service`. It applies to new connections, and to open
    /// ones from their next read or write.
    pub fn add_toxic(&self, service: &str, toxic: Toxic) -> Result<Toxic, ControlError> {
        self.control
            .table()
            .add_toxic(self.addr(service).port(), toxic)
    }

    pub fn remove_toxic(&self, service: &str, name: &str) -> Result<(), ControlError> {
        self.control
            .table()
            .remove_toxic(self.addr(service).port(), name)
    }

    /// Remove every toxic, open every closed port, and restore the chaos triggers.
    pub async fn reset(&self) -> Result<(), ControlError> {
        self.control.reset().await
    }

    /// The SMTP chaos triggers (Mailpit's model): set them to make MAIL, RCPT, AUTH or the
    /// message fail with a given code.
    pub fn chaos(&self) -> &Chaos {
        self.control.chaos()
    }

    /// The stack's event stream: subscribe to watch connections and ports.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Begin a graceful shutdown without waiting for it; [`Stack::shutdown`] waits.
    pub fn request_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shut down gracefully (if that was not asked already) and wait until the stack has
    /// stopped.
    pub async fn shutdown(mut self) -> Stopped {
        self.request_shutdown();
        match (&mut self.task).await {
            Ok(stopped) => stopped,
            Err(error) => panic!("the supervisor task failed: {error}"),
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.request_shutdown();
    }
}
