//! The `switchboard` command: parse the command line, set up logging, and hand over to the
//! app (`switchboard-app`), which wires the services to the supervisor. Everything
//! interesting lives in the library crates; see docs/ARCHITECTURE.md.
//!
//! Layout: `main.rs` (this file) the commands and their flags, and logging's set-up;
//! `log_text.rs` and `log_json.rs` the two log formats' writers; `ports.rs` the
//! `switchboard ports` command; `signal.rs` the signals that ask switchboard to stop.

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use switchboard_app::{App, AuthPolicy, Config, ConfigError, LogSettings, Preset};
use switchboard_core::Cidr;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

mod log_json;
mod log_text;
mod ports;
mod signal;

use crate::signal::shutdown_signal;

/// mimalloc rather than the C library's allocator: the dozen small allocations of a request
/// cost fewer instructions each, and carry no header (bench/README.md, "the allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for bad usage, bad configuration, or a port that cannot be bound.
const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(name = "switchboard", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Listen on every port of the port table until Ctrl-C or SIGTERM.
    ///
    /// Without flags: http on 80, https on 443, smtp on 25 and Toxiproxy's API on 8474, on
    /// every address (IPv4 and IPv6). Ports below 1024 need root or CAP_NET_BIND_SERVICE; use
    /// --port-offset 8000 to run without either.
    Serve(ServeArgs),
    /// Connect to ports of HOST and say what answered, or why nothing did.
    ///
    /// Each port is tried at every address the name resolves to: open (with what answered:
    /// a banner, an HTTP response, a TLS handshake), refused, timeout or unreachable.
    Probe(ProbeArgs),
    /// Show the kernel's table of listening sockets (from /proc/net/tcp and tcp6): where
    /// ports live, and which program holds each.
    Ports,
    /// Create or renew the local CA and server certificate, and show what they hold.
    ///
    /// The CA is created once and kept (unless --renew-ca); the server certificate is
    /// renewed when it has expired, expires within 30 days, or lacks a requested name.
    Certs(CertsArgs),
}

#[derive(clap::Args, Debug)]
struct CertsArgs {
    /// The certificates directory.
    #[arg(long, value_name = "DIR", default_value = switchboard_certs::DEFAULT_DIR)]
    dir: PathBuf,
    /// A name the server certificate must carry, besides localhost, 127.0.0.1, ::1 and this
    /// machine's host name (repeat for more).
    #[arg(long = "name", value_name = "HOST")]
    names: Vec<String>,
    /// Replace the CA with a new one, limited to local names (localhost, .test, .internal,
    /// private addresses) and the --name ones. Clients must then trust the new ca.pem.
    #[arg(long)]
    renew_ca: bool,
}

/// `switchboard serve`'s flags. Each also reads a variable, `SWITCHBOARD_<FLAG>` (shown in
/// `--help`), for test rigs that configure by environment; a flag wins over its variable,
/// and both over the config file.
#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// A TOML file with [[port]] tables and settings. Its ports replace the built-in table,
    /// unless it says `builtin_ports = true` (then they are added to it).
    #[arg(long, value_name = "FILE", env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// A whole config file's text, for where no file can be mounted (CI service containers).
    #[arg(
        long,
        value_name = "TOML",
        env = "SWITCHBOARD_CONFIG_TOML",
        hide_env_values = true
    )]
    config_toml: Option<String>,
    /// Listen only on these addresses (repeat the flag or separate with commas),
    /// e.g. --bind 127.0.0.1 --bind ::1. Default: every address.
    #[arg(
        long,
        value_name = "ADDR",
        value_delimiter = ',',
        env = "SWITCHBOARD_BIND"
    )]
    bind: Vec<IpAddr>,
    /// Add N to every port below 1024, for running without privileges: --port-offset 8000
    /// serves 80 on 8080 and 25 on 8025. Ports of 1024 and above keep their numbers.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        env = "SWITCHBOARD_PORT_OFFSET"
    )]
    port_offset: u16,
    /// A ready-made table: `mailpit` adds SMTP on 1025 and HTTP on 8025, Mailpit's ports.
    #[arg(long, value_enum, env = "SWITCHBOARD_PRESET")]
    preset: Option<PresetArg>,
    /// Where the local CA and server certificate are kept [default: ./certs].
    #[arg(long, value_name = "DIR", env = "SWITCHBOARD_CERTS")]
    certs: Option<PathBuf>,
    /// A name the server certificate must carry, e.g. the name clients use to reach this
    /// machine (repeat for more, or separate with commas).
    #[arg(
        long = "name",
        value_name = "HOST",
        value_delimiter = ',',
        env = "SWITCHBOARD_NAME"
    )]
    names: Vec<String>,
    /// Keep captured mail in this directory, and load what it holds at start-up: a message
    /// acknowledged with 250 survives a restart or a crash.
    #[arg(long, value_name = "DIR", env = "SWITCHBOARD_MAIL_DIR")]
    mail_dir: Option<PathBuf>,
    /// Log lines for people (text) or for machines (json, one object per line).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "SWITCHBOARD_LOG_FORMAT")]
    log_format: LogFormat,
    /// `[smtp] auth`: whether SMTP clients may (optional), must (required) or cannot (off)
    /// authenticate.
    #[arg(long, value_name = "MODE", value_parser = ["optional", "required", "off"], env = "SWITCHBOARD_SMTP_AUTH")]
    smtp_auth: Option<String>,
    /// `[mail] max_messages`: most messages kept; the oldest goes when a new one arrives.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), env = "SWITCHBOARD_MAIL_MAX_MESSAGES")]
    mail_max_messages: Option<u64>,
    /// `[control] allow`: the addresses and ranges that may use the control API (separate
    /// with commas), e.g. 127.0.0.0/8,172.16.0.0/12.
    #[arg(
        long,
        value_name = "CIDR",
        value_delimiter = ',',
        env = "SWITCHBOARD_CONTROL_ALLOW"
    )]
    control_allow: Vec<Cidr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PresetArg {
    /// SMTP on 1025 and HTTP on 8025, as Mailpit: a compose file can swap the image.
    Mailpit,
}

#[derive(clap::Args, Debug)]
struct ProbeArgs {
    /// A name or address; only this host is ever contacted.
    host: String,
    /// Ports to try.
    #[arg(default_values_t = [21, 22, 25, 80, 443])]
    ports: Vec<u16>,
    /// How long to wait for each connection and answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    timeout: u64,
    /// Retry for up to SECS seconds until every port is open; exit 0 if they all opened,
    /// 1 if not (for health checks and scripts).
    #[arg(long, value_name = "SECS")]
    wait: Option<f64>,
    /// Print a JSON array (protocol, port, address, state, service, usual, detail) instead
    /// of a table.
    #[arg(long)]
    json: bool,
    /// Send a UDP datagram to each port instead of connecting: open (an answer came),
    /// closed (the kernel answered "port unreachable") or open|filtered (silence).
    #[arg(long)]
    udp: bool,
    /// Knock from this address of this machine instead of the one the route picks (like
    /// nmap -S or curl --interface): to try a rule that admits some sources only.
    #[arg(long, value_name = "ADDR")]
    from: Option<std::net::IpAddr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse(); // usage errors exit with code 2
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Certs(args) => certs(args),
        Command::Probe(args) => probe(args),
        Command::Ports => ports::print(),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    // The configuration first: it says how long the log queue is.
    let config = load_config(&args);
    let queue_lines = config.as_ref().map_or_else(
        |_| LogSettings::default().queue_lines,
        |(c, _)| c.log.queue_lines,
    );
    let _flush_logs_on_exit = init_logging(args.log_format, queue_lines);
    let config = match config {
        Ok((config, moved)) => {
            for (from, to) in moved {
                tracing::info!(
                    from,
                    to,
                    "port {from} → {to} (--port-offset {})",
                    args.port_offset
                );
            }
            config
        }
        Err(error) => return fatal(args.log_format, &error),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fatal(args.log_format, &error),
    };
    runtime.block_on(async {
        // Signal handlers first, so that a signal right after "ready" is never fatal.
        let stop = stop_requested();
        let app = match App::bind(config) {
            Ok(app) => app,
            Err(error) => return fatal(args.log_format, &error),
        };
        let sockets = app.listening().len();
        // The readiness signal: after this line every port accepts connections.
        tracing::info!(
            ready = true,
            sockets,
            "ready: {sockets} socket(s) listening; stop with Ctrl-C"
        );
        app.run(stop).await;
        ExitCode::SUCCESS
    })
}

/// The configuration: the file (or inline text), then the flags and variables over it.
/// Also returns the ports `--port-offset` moved, for the log.
fn load_config(args: &ServeArgs) -> Result<(Config, Vec<(u16, u16)>), ConfigError> {
    let mut config = match (&args.config, &args.config_toml) {
        (Some(_), Some(_)) => return Err(ConfigError::TwoSources),
        (Some(path), None) => Config::from_file(path)?,
        (None, Some(text)) => Config::from_toml(text, "SWITCHBOARD_CONFIG_TOML")?,
        (None, None) => Config::default(),
    };
    let moved = config.apply_port_offset(args.port_offset)?;
    if let Some(PresetArg::Mailpit) = args.preset {
        config.apply_preset(Preset::Mailpit);
    }
    if !args.bind.is_empty() {
        config.apply_bind(&args.bind);
    }
    if let Some(dir) = &args.certs {
        config.apply_certs_dir(dir);
    }
    config.add_certificate_names(&args.names);
    if let Some(dir) = &args.mail_dir {
        config.apply_mail_dir(dir);
    }
    if let Some(mode) = &args.smtp_auth {
        config.smtp.auth = match mode.as_str() {
            "required" => AuthPolicy::Required,
            "off" => AuthPolicy::Off,
            _ => AuthPolicy::Optional,
        };
    }
    if let Some(max) = args.mail_max_messages {
        config.mail.max_messages = usize::try_from(max).unwrap_or(usize::MAX);
    }
    if !args.control_allow.is_empty() {
        config.control.allow = args.control_allow.clone();
    }
    Ok((config, moved))
}

fn probe(args: ProbeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fatal(LogFormat::Text, &error),
    };
    let knock = switchboard_probe::Knock {
        timeout: std::time::Duration::from_millis(args.timeout.max(1)),
        from: args.from,
    };
    runtime.block_on(async {
        let addresses = match switchboard_probe::resolve(&args.host).await {
            Ok(addresses) if !addresses.is_empty() => addresses,
            Ok(_) => return fatal(LogFormat::Text, &format!("{} has no addresses", args.host)),
            Err(error) => {
                return fatal(
                    LogFormat::Text,
                    &format!("cannot resolve {}: {error}; check the name", args.host),
                );
            }
        };
        let deadline = args.wait.map(|secs| {
            tokio::time::Instant::now() + std::time::Duration::from_secs_f64(secs.max(0.0))
        });
        loop {
            let findings = match args.udp {
                true => switchboard_probe::probe_all_udp(&addresses, &args.ports, knock).await,
                false => {
                    switchboard_probe::probe_all(&args.host, &addresses, &args.ports, knock).await
                }
            };
            let all_open = args.ports.iter().all(|port| {
                findings
                    .iter()
                    .any(|f| f.port == *port && f.state == switchboard_probe::State::Open)
            });
            let waiting = deadline.is_some_and(|d| tokio::time::Instant::now() < d);
            if all_open || !waiting {
                if args.json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&findings).unwrap_or_default()
                    );
                } else {
                    print!(
                        "{}",
                        switchboard_probe::render_text(&args.host, &addresses, &findings)
                    );
                }
                return match (args.wait, all_open) {
                    (Some(_), false) => ExitCode::from(1),
                    _ => ExitCode::SUCCESS,
                };
            }
            // Waiting for ports to open, as a health check does: try again shortly.
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    })
}

fn certs(args: CertsArgs) -> ExitCode {
    let _flush_logs_on_exit = init_logging(LogFormat::Text, LogSettings::default().queue_lines);
    let made = match args.renew_ca {
        true => switchboard_certs::renew_ca(&args.dir, &args.names),
        false => switchboard_certs::ensure(&args.dir, &args.names),
    };
    match made {
        Ok(ca) => {
            print!("{}", ca.report());
            ExitCode::SUCCESS
        }
        Err(error) => fatal(LogFormat::Text, &error),
    }
}

/// The first SIGINT or SIGTERM starts a graceful shutdown; a second one ends the process at
/// once, for when someone does not want to wait for the deadline.
fn stop_requested() -> impl std::future::Future<Output = ()> {
    let first = shutdown_signal();
    async {
        first.await;
        let second = shutdown_signal();
        tokio::spawn(async {
            second.await;
            tracing::warn!("second signal: exiting without waiting for open connections");
            std::process::exit(130);
        });
    }
}

/// Log to standard error, filtered by `RUST_LOG` (default `info`).
///
/// Lines are written by a background thread, so a reader that stops reading (a full pipe,
/// a stalled terminal) never stalls the server; if it falls far behind, lines are dropped
/// rather than connections. The returned guard flushes what is queued when it is dropped.
fn init_logging(
    format: LogFormat,
    queue_lines: usize,
) -> tracing_appender::non_blocking::WorkerGuard {
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    let (filter, invalid) = match log_filter(&directives) {
        Ok(filter) => (filter, None),
        Err(error) => (LogFilter::default(), Some(error)),
    };
    let (writer, guard) = log_queue(queue_lines, std::io::stderr());
    let lines = match format {
        LogFormat::Text => {
            // Colour only for a person at a terminal, never into files or pipes.
            let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(ansi)
                .fmt_fields(log_text::Fields)
                .event_format(log_text::Line::new(log_text::UtcTime))
                .boxed()
        }
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(log_json::JsonLines(writer))
            .json()
            .with_ansi(false)
            .boxed(),
    };
    let filter = match filter {
        LogFilter::Targets(targets) => targets.boxed(),
        LogFilter::Spans(filter) => filter.boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .init();
    if let Some(error) = invalid {
        tracing::warn!("RUST_LOG={directives:?} is not a log filter ({error}); logging at info");
    }
    guard
}

/// The queue between the tasks that log and the thread that writes: `[log] queue_lines` long
/// (the writer's default allocates 4 MB; see LogSettings). When it is full, new lines are
/// dropped and counted, so a stalled reader never stalls a connection.
fn log_queue<W: std::io::Write + Send + 'static>(
    queue_lines: usize,
    out: W,
) -> (
    tracing_appender::non_blocking::NonBlocking,
    tracing_appender::non_blocking::WorkerGuard,
) {
    tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(queue_lines)
        .lossy(true)
        .finish(out)
}

/// What `RUST_LOG` filters with.
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "made once, at start-up")]
enum LogFilter {
    /// A list of `target=level` (or just a level): the usual case.
    Targets(Targets),
    /// Directives that name spans or field values. [`EnvFilter`] looks every span it is told
    /// about up under a lock, on each poll of a connection's task (callgrind): it is only
    /// used when it is needed.
    Spans(EnvFilter),
}

impl Default for LogFilter {
    /// `info` and above: for no `RUST_LOG`, and for one that is not a filter.
    fn default() -> Self {
        LogFilter::Targets(Targets::new().with_default(Level::INFO))
    }
}

/// The filter `RUST_LOG` asks for, the default when it is unset or empty.
fn log_filter(directives: &str) -> Result<LogFilter, String> {
    if directives.trim().is_empty() {
        return Ok(LogFilter::default());
    }
    // Span and field directives are written in brackets (`[conn{service=smtp}]=debug`).
    if !directives.contains('[')
        && let Ok(targets) = directives.parse::<Targets>()
    {
        return Ok(LogFilter::Targets(targets));
    }
    EnvFilter::try_new(directives)
        .map(LogFilter::Spans)
        .map_err(|error| error.to_string())
}

fn fatal(format: LogFormat, error: &dyn std::fmt::Display) -> ExitCode {
    match format {
        LogFormat::Text => eprintln!("error: {error}"),
        LogFormat::Json => tracing::error!(%error, "cannot start"),
    }
    ExitCode::from(EXIT_USAGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// A writer that blocks until the test lets it go: a terminal nobody reads.
    struct Stalled(std::sync::mpsc::Receiver<()>);

    impl std::io::Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_log_queue_drops_lines_instead_of_blocking() {
        use std::io::Write as _;
        let (release, stalled) = std::sync::mpsc::channel();
        let (mut writer, guard) = log_queue(4, Stalled(stalled));
        let counter = writer.error_counter();
        // The writing thread holds at most one line; the queue four. Everything past that
        // must be dropped at once, not wait for the reader.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for n in 0..50 {
                writer.write_all(format!("line {n}\n").as_bytes()).unwrap();
            }
            let _ = done.send(());
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a write waited for the stalled reader");
        let dropped = counter.dropped_lines();
        assert!((45..=46).contains(&dropped), "{dropped} lines dropped");
        drop(release);
        drop(guard);
    }

    #[test]
    fn log_filters_take_the_cheap_form_when_they_can() {
        for plain in ["", "info", "warn", "switchboard_http=debug,warn", "debug"] {
            assert!(
                matches!(log_filter(plain), Ok(LogFilter::Targets(_))),
                "{plain:?}"
            );
        }
        for spans in ["[conn]=debug", "[conn{service=smtp}]=debug", "h[{x}]=info"] {
            assert!(
                matches!(log_filter(spans), Ok(LogFilter::Spans(_))),
                "{spans:?}"
            );
        }
        let error = log_filter("=x=y[").unwrap_err();
        assert!(!error.is_empty());
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_flags_parse() {
        let cli = Cli::try_parse_from([
            "switchboard",
            "serve",
            "--bind",
            "127.0.0.1,::1",
            "--port-offset",
            "8000",
            "--log-format",
            "json",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("parsed as another command");
        };
        assert_eq!(args.bind.len(), 2);
        assert_eq!(args.port_offset, 8000);
        assert_eq!(args.log_format, LogFormat::Json);
        let (config, moved) = load_config(&args).unwrap();
        assert_eq!(config.ports[0].port, 8080);
        assert_eq!(moved, [(80, 8080), (443, 8443), (25, 8025)]);
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let err =
            Cli::try_parse_from(["switchboard", "serve", "--port-offset", "70000"]).unwrap_err();
        assert_eq!(err.exit_code(), i32::from(EXIT_USAGE));
        let err = Cli::try_parse_from(["switchboard", "serve", "--bind", "localhost"]).unwrap_err();
        assert_eq!(err.exit_code(), i32::from(EXIT_USAGE));
    }
}
