//! `switchboard-baseline`: the least a Rust HTTP server can do, for `bench/` to compare
//! switchboard against.
//!
//! hyper (HTTP/1.1 and HTTP/2) and rustls with ring, as switchboard uses them, answering every
//! request with `ok\n` from a plain accept loop: no supervisor, no gate, no router, no logs.
//! The difference between this and switchboard on the same workload is what switchboard's
//! supervisor and services cost.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

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
    runtime.block_on(async move {
        let mut servers = Vec::new();
        for (addr, tls) in [(args.http, None), (args.https, tls)] {
            let Some(addr) = addr else { continue };
            match TcpListener::bind(addr).await {
                Ok(listener) => {
                    println!("listening on {}", listener.local_addr().unwrap_or(addr));
                    servers.push(tokio::spawn(accept_loop(listener, tls)));
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

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>) {
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let builder = builder.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(hello);
            match tls {
                None => {
                    let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                }
                Some(tls) => {
                    if let Ok(stream) = tls.accept(tcp).await {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            }
        });
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
