//! `switchboard-baseline`: the least a Rust HTTP server can do, for `bench/` to compare
//! switchboard against.
//!
//! hyper (HTTP/1.1 and HTTP/2) and rustls with ring, as switchboard uses them, answering every
//! request with `ok\n` from a plain accept loop: no supervisor, no gate, no router, no logs.
//! The difference between this and switchboard on the same workload is what switchboard's
//! supervisor and services cost.
//!
//! With `--app`, the same accept loop hands each connection to switchboard's own HTTP app
//! (its router, limits and connection clocks) instead: switchboard without its supervisor.
//! The difference between that and switchboard is what the supervisor's dispatch costs (the
//! gate, the connection's task, span, byte counts and fault check, its events).
//!
//! It allocates with mimalloc, as switchboard does, so that both differences are code.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use switchboard_core::{
    Budget, ConnInfo, ControlError, EventBus, PortControl, PortDirectory, PortStatus, Shutdown,
};
use switchboard_faults::{Toxic, ToxicControl};
use switchboard_http::{
    ControlSettings, HttpApp, HttpSettings, HttpbinSettings, MailWeb, MailpitSettings, Products,
    Shared, ToxiproxyApi, WireMock,
};
use switchboard_mail::{Chaos, MailStore, Triggers};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "switchboard-baseline", version, about)]
struct Args {
    /// Serve plain HTTP (HTTP/1.1 and h2c) on this address.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Serve HTTPS (HTTP/1.1 and h2 by ALPN) on this address; needs --cert and --key.
    #[arg(long, value_name = "ADDR", requires_all = ["cert", "key"])]
    https: Option<SocketAddr>,
    /// The server certificate chain, PEM.
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// The server certificate's private key, PEM.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Answer with switchboard's HTTP app instead of `ok\n`: every route it has, with an
    /// empty port table and an empty mailbox.
    #[arg(long)]
    app: bool,
}

/// What answers the requests.
#[derive(Clone)]
enum Responder {
    /// `ok\n` to everything.
    Hello,
    /// switchboard's HTTP app, bound directly.
    App(HttpApp),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let tls = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => match tls_acceptor(cert, key) {
            Ok(acceptor) => Some(acceptor),
            Err(error) => {
                eprintln!("error: cannot load the certificate: {error}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let responder = if args.app {
        Responder::App(app())
    } else {
        Responder::Hello
    };
    runtime.block_on(async move {
        let mut servers = Vec::new();
        for (addr, tls) in [(args.http, None), (args.https, tls)] {
            let Some(addr) = addr else { continue };
            match TcpListener::bind(addr).await {
                Ok(listener) => {
                    println!("listening on {}", listener.local_addr().unwrap_or(addr));
                    servers.push(tokio::spawn(accept_loop(listener, tls, responder.clone())));
                }
                Err(error) => {
                    eprintln!("error: cannot listen on {addr}: {error}");
                    return ExitCode::from(2);
                }
            }
        }
        if servers.is_empty() {
            eprintln!("error: nothing to serve; give --http ADDR and/or --https ADDR");
            return ExitCode::from(2);
        }
        for server in servers {
            let _ = server.await;
        }
        ExitCode::SUCCESS
    })
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, responder: Responder) {
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let shutdown = Shutdown::new(); // never requested: the process is killed
    let mut next_id = 0;
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        next_id += 1;
        let info = ConnInfo {
            id: next_id,
            service: if tls.is_some() { "https" } else { "http" },
            local: tcp.local_addr().unwrap_or(peer),
            peer,
            tls: None,
        };
        let (builder, tls, responder) = (builder.clone(), tls.clone(), responder.clone());
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            match tls {
                None => respond(&builder, responder, tcp, info, shutdown).await,
                Some(tls) => {
                    if let Ok(stream) = tls.accept(tcp).await {
                        respond(&builder, responder, stream, info, shutdown).await;
                    }
                }
            }
        });
    }
}

async fn respond<S>(
    builder: &auto::Builder<TokioExecutor>,
    responder: Responder,
    stream: S,
    info: ConnInfo,
    shutdown: Shutdown,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match responder {
        Responder::Hello => {
            let service = hyper::service::service_fn(hello);
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
        Responder::App(app) => {
            let _ = app.serve(stream, (info, Budget::default()), shutdown).await;
        }
    }
}

/// switchboard's HTTP app with its default settings, showing an empty port table.
fn app() -> HttpApp {
    let ports = Arc::new(NoPorts);
    let (mail, events) = (MailStore::in_memory(1000), EventBus::new());
    let mailpit = MailWeb::new(
        mail.clone(),
        Chaos::new(Triggers::default()),
        events.clone(),
        ports.clone(),
        MailpitSettings::default(),
    );
    let toxiproxy = ToxiproxyApi::new(ports.clone(), ports.clone(), ports.clone());
    let shared = Shared {
        ports: ports.clone(),
        control: ports.clone(),
        toxics: ports,
        mail,
        events,
        control_settings: ControlSettings::default(),
        server_names: Vec::new(),
        local_ca: None,
    };
    let httpbin = HttpbinSettings::default();
    let wiremock = WireMock::new(
        switchboard_stubs::Stubs::empty(),
        EventBus::new(),
        HttpSettings::default().max_body_bytes,
        httpbin.max_delay,
    );
    let products = Products {
        httpbin,
        mailpit,
        toxiproxy,
        wiremock,
    };
    HttpApp::new(shared, HttpSettings::default(), products)
}

/// The port table of a server that has no supervisor: empty, and nothing to control.
struct NoPorts;

impl PortDirectory for NoPorts {
    fn ports(&self) -> Vec<PortStatus> {
        Vec::new()
    }
}

#[async_trait]
impl PortControl for NoPorts {
    async fn close_port(&self, port: u16) -> Result<(), ControlError> {
        Err(ControlError::NoSuchPort(port))
    }
    async fn open_port(&self, port: u16) -> Result<(), ControlError> {
        Err(ControlError::NoSuchPort(port))
    }
    async fn close_port_for(&self, port: u16, _: std::time::Duration) -> Result<(), ControlError> {
        Err(ControlError::NoSuchPort(port))
    }
    async fn reset_next(&self, port: u16, _: u32) -> Result<(), ControlError> {
        Err(ControlError::NoSuchPort(port))
    }
    async fn reset(&self) -> Result<(), ControlError> {
        Ok(())
    }
    async fn add_port(&self, _: Value) -> Result<PortStatus, ControlError> {
        Err(ControlError::Invalid(
            "the baseline server has no supervisor to add ports to".into(),
        ))
    }
    async fn check_port(&self, row: Value) -> Result<(), ControlError> {
        self.add_port(row).await.map(drop)
    }
    async fn remove_port(&self, port: u16) -> Result<(), ControlError> {
        Err(ControlError::NoSuchPort(port))
    }
    async fn disable_port(&self, port: u16) -> Result<(), ControlError> {
        Err(ControlError::NoSuchPort(port))
    }
}

impl ToxicControl for NoPorts {
    fn toxics(&self, port: u16) -> Result<Vec<Toxic>, ControlError> {
        Err(ControlError::NoSuchPort(port))
    }
    fn add_toxic(&self, port: u16, _: Toxic) -> Result<Toxic, ControlError> {
        Err(ControlError::NoSuchPort(port))
    }
    fn update_toxic(&self, port: u16, _: &str, _: &Value) -> Result<Toxic, ControlError> {
        Err(ControlError::NoSuchPort(port))
    }
    fn remove_toxic(&self, port: u16, _: &str) -> Result<(), ControlError> {
        Err(ControlError::NoSuchPort(port))
    }
}

async fn hello(
    _request: http::Request<Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let mut response = http::Response::new(Full::new(Bytes::from_static(b"ok\n")));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, Box<dyn std::error::Error>> {
    let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
