//! The UDP and TCP front ends around the sans-IO core, and the daemon's life cycle.
//!
//! Shape: `workers` threads, each running its own current-thread tokio
//! runtime. Every worker has its own UDP socket and TCP listener per listen
//! address (bound with `SO_REUSEPORT` when there is more than one worker, so
//! the kernel spreads queries and connections across workers), its own receive
//! and response buffers, and reads the published zone set with one lock-free
//! `ArcSwap::load` per query. Nothing is shared between workers on the query
//! path but that pointer and relaxed counters.
//!
//! The main thread binds the sockets (so a bind failure is reported before
//! anything starts), loads the zones, starts the workers and then waits for
//! signals: SIGHUP reloads the zones ([`reload`]), SIGTERM and SIGINT stop.

pub mod catalog;
pub mod reload;
pub mod secondaries;
pub mod tcp;
pub mod transfer;
pub mod udp;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::IpAddr;
use tokio::signal::unix::{SignalKind, signal};

use tokio::sync::{mpsc, watch};

use crate::config::{Config, ServerConfig};
use crate::dns::{self, Transport};
use crate::zone::ZoneSet;

/// Backlog of each TCP listener.
const TCP_BACKLOG: i32 = 1024;
/// Receive buffer asked for each UDP socket, to absorb bursts (best effort).
const UDP_RECEIVE_BUFFER: usize = 1 << 20;

/// What answers queries: the DNS core over the published zone set in the
/// daemon ([`ZoneResponder`]), a stand-in in tests and benchmarks.
pub trait Responder: Send + Sync + 'static {
    /// Writes the response to `query` at the start of `out` and returns its
    /// length, or `None` to stay silent. Same contract as [`dns::respond`].
    fn respond(&self, query: &[u8], transport: Transport, out: &mut [u8]) -> Option<usize>;

    /// [`Responder::respond`] knowing the client's address, which NOTIFY
    /// needs (only listed masters may send one).
    fn respond_from(
        &self,
        query: &[u8],
        transport: Transport,
        peer: IpAddr,
        out: &mut [u8],
    ) -> Option<usize> {
        let _ = peer;
        self.respond(query, transport, out)
    }
}

/// The production [`Responder`]: [`dns::respond`] over the current zone set.
#[derive(Debug, Clone)]
pub struct ZoneResponder {
    zones: Arc<ArcSwap<ZoneSet>>,
}

impl ZoneResponder {
    /// Answers from whatever zone set is published in `zones` at query time.
    pub fn new(zones: Arc<ArcSwap<ZoneSet>>) -> ZoneResponder {
        ZoneResponder { zones }
    }
}

impl Responder for ZoneResponder {
    fn respond(&self, query: &[u8], transport: Transport, out: &mut [u8]) -> Option<usize> {
        // A lock-free load: no reference count is touched in the common case.
        let zones = self.zones.load();
        dns::respond(query, transport, &zones, out)
    }

    fn respond_from(
        &self,
        query: &[u8],
        transport: Transport,
        peer: IpAddr,
        out: &mut [u8],
    ) -> Option<usize> {
        let zones = self.zones.load();
        dns::respond_from(query, transport, Some(peer), &zones, out)
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A socket could not be created or bound for a reason other than the
    /// address being absent from this machine (in use, permission denied).
    #[error("cannot listen on {proto} {address}: {source}")]
    Bind {
        /// "UDP" or "TCP".
        proto: &'static str,
        /// The configured address.
        address: SocketAddr,
        /// The system's error.
        source: io::Error,
    },
    /// None of the configured addresses exists on this machine.
    #[error("none of the listen addresses could be bound")]
    NoAddress,
    /// A runtime, thread or signal handler could not be set up.
    #[error("cannot set up {what}: {source}")]
    Setup {
        /// What was being set up.
        what: &'static str,
        /// The system's error.
        source: io::Error,
    },
    /// A worker thread stopped unexpectedly.
    #[error("worker {worker} stopped: {reason}")]
    WorkerFailed {
        /// The worker's index.
        worker: usize,
        /// What happened, as logged.
        reason: String,
    },
}

/// Limits of the TCP front end, from `[server]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// A connection without progress (nothing read or written) for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once, over all addresses and workers.
    pub max_connections: usize,
    /// Queries answered per connection before it is closed; `None` = unlimited.
    pub max_queries_per_connection: Option<u32>,
}

impl From<&ServerConfig> for TcpLimits {
    fn from(server: &ServerConfig) -> TcpLimits {
        TcpLimits {
            idle_timeout: server.tcp_idle_timeout,
            max_connections: server.tcp_max_connections,
            max_queries_per_connection: server.tcp_max_queries_per_connection,
        }
    }
}

/// Counters of the front ends (relaxed atomics), for export and tests.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// TCP connections accepted and served.
    pub tcp_accepted: AtomicU64,
    /// TCP connections closed at once because `tcp_max_connections` were open.
    pub tcp_refused: AtomicU64,
    /// TCP connections closed by the idle timeout.
    pub tcp_timed_out: AtomicU64,
    /// TCP connections closed after a length prefix below a DNS header's size
    /// or a message the core left unanswered.
    pub tcp_malformed: AtomicU64,
    /// UDP receive errors other than "nothing to read".
    pub udp_receive_errors: AtomicU64,
    /// UDP responses that could not be sent.
    pub udp_send_errors: AtomicU64,
    /// Zone transfers (AXFR, IXFR) sent out to the end.
    pub transfers_out: AtomicU64,
    /// Zone transfer requests refused: not admitted by `allow_transfer`, bad
    /// TSIG, unknown or expired zone, malformed.
    pub transfers_refused: AtomicU64,
}

impl ServerStats {
    /// Adds one to `counter`.
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// State shared by all workers.
#[derive(Debug)]
struct Shared<R> {
    responder: Arc<R>,
    limits: TcpLimits,
    stats: Arc<ServerStats>,
    /// TCP connections open now, over all workers.
    tcp_open: AtomicUsize,
    /// Who may transfer which zone; `None`: transfer requests go to the
    /// responder like any query.
    transfers: Option<Arc<transfer::TransferPolicy>>,
}

/// The sockets of one worker: one UDP socket and one TCP listener per address.
#[derive(Debug)]
struct WorkerSockets {
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<std::net::TcpListener>,
}

/// Bound, not yet served sockets for every worker.
#[derive(Debug)]
pub struct Listeners {
    workers: Vec<WorkerSockets>,
    addresses: Vec<SocketAddr>,
}

impl Listeners {
    /// Binds UDP and TCP on each address, once per worker (with `SO_REUSEPORT`
    /// when `workers > 1`). An address this machine does not have (say `::1`
    /// with IPv6 disabled) is skipped with a warning; any other failure, or no
    /// address at all, is an error. Port 0 picks one free port per address,
    /// the same for UDP and TCP and for every worker.
    pub fn bind(addresses: &[SocketAddr], workers: usize) -> Result<Listeners, ServeError> {
        let workers = workers.max(1);
        let mut per_worker: Vec<WorkerSockets> = (0..workers)
            .map(|_| WorkerSockets {
                udp: Vec::new(),
                tcp: Vec::new(),
            })
            .collect();
        let mut bound = Vec::new();
        for &address in addresses {
            match bind_address(address, workers) {
                Ok((local, sockets)) => {
                    for (worker, (udp, tcp)) in per_worker.iter_mut().zip(sockets) {
                        worker.udp.push(udp);
                        worker.tcp.push(tcp);
                    }
                    bound.push(local);
                }
                Err(BindFailure::Unavailable(e)) => {
                    tracing::warn!(%address, "address not available on this machine, not listening on it: {e}");
                }
                Err(BindFailure::Fatal(e)) => return Err(e),
            }
        }
        if bound.is_empty() {
            return Err(ServeError::NoAddress);
        }
        Ok(Listeners {
            workers: per_worker,
            addresses: bound,
        })
    }

    /// The addresses actually bound (with the port chosen when 0 was asked).
    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.addresses
    }
}

/// Why one address could not be bound.
enum BindFailure {
    /// The address does not exist here: skip it.
    Unavailable(io::Error),
    /// Anything else: give up.
    Fatal(ServeError),
}

/// Sockets of one address: a UDP socket and a TCP listener per worker.
type AddressSockets = Vec<(std::net::UdpSocket, std::net::TcpListener)>;

/// Binds `workers` UDP sockets and TCP listeners on `address`; returns the
/// local address and the sockets. With port 0, the port the kernel picks for
/// UDP may be taken for TCP: a few ports are tried.
fn bind_address(
    address: SocketAddr,
    workers: usize,
) -> Result<(SocketAddr, AddressSockets), BindFailure> {
    const PORT_ZERO_TRIES: usize = 16;
    let mut tries = 1;
    loop {
        match bind_address_once(address, workers) {
            Err(BindFailure::Fatal(ServeError::Bind { source, .. }))
                if address.port() == 0
                    && source.kind() == io::ErrorKind::AddrInUse
                    && tries < PORT_ZERO_TRIES =>
            {
                tries += 1;
            }
            other => return other,
        }
    }
}

/// One attempt of [`bind_address`].
fn bind_address_once(
    address: SocketAddr,
    workers: usize,
) -> Result<(SocketAddr, AddressSockets), BindFailure> {
    let fail = |proto, source: io::Error| {
        if is_unavailable(&source) {
            BindFailure::Unavailable(source)
        } else {
            BindFailure::Fatal(ServeError::Bind {
                proto,
                address,
                source,
            })
        }
    };
    let reuse_port = workers > 1;
    if reuse_port && address.port() != 0 {
        // SO_REUSEPORT would silently share the port with another process of
        // our user still holding it; a plain bind first fails if it is taken.
        drop(udp_socket(address, false).map_err(|e| fail("UDP", e))?);
        drop(tcp_listener(address, false).map_err(|e| fail("TCP", e))?);
    }
    let first = udp_socket(address, reuse_port).map_err(|e| fail("UDP", e))?;
    let local = first.local_addr().map_err(|e| fail("UDP", e))?;
    let mut sockets = Vec::with_capacity(workers);
    let mut next_udp = Some(first);
    for _ in 0..workers {
        let udp = match next_udp.take() {
            Some(udp) => udp,
            None => udp_socket(local, reuse_port).map_err(|e| fail("UDP", e))?,
        };
        let tcp = tcp_listener(local, reuse_port).map_err(|e| fail("TCP", e))?;
        sockets.push((udp, tcp));
    }
    Ok((local, sockets))
}

/// Whether a bind error means "this address is not on this machine".
fn is_unavailable(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::AddrNotAvailable
        || error.raw_os_error() == Some(libc::EAFNOSUPPORT)
}

/// A non-blocking UDP socket bound to `address` (IPv6 sockets are IPv6-only).
fn udp_socket(address: SocketAddr, reuse_port: bool) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    // Best effort: a bigger buffer absorbs bursts; the kernel caps it anyway.
    let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    Ok(socket.into())
}

/// A non-blocking TCP listener on `address` (IPv6 sockets are IPv6-only).
fn tcp_listener(address: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Lets a restarted server bind while old connections are in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(TCP_BACKLOG)?;
    Ok(socket.into())
}

/// Running worker threads; dropping this without [`Workers::shutdown`] leaves them running.
#[derive(Debug)]
pub struct Workers {
    threads: Vec<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    failures: mpsc::UnboundedReceiver<(usize, String)>,
    stats: Arc<ServerStats>,
}

impl Workers {
    /// Starts one thread per worker in `listeners`, each answering with `responder`.
    pub fn start<R: Responder>(
        listeners: Listeners,
        limits: TcpLimits,
        responder: Arc<R>,
    ) -> Result<Workers, ServeError> {
        Workers::start_with_transfers(listeners, limits, responder, None)
    }

    /// [`Workers::start`] serving zone transfers over TCP as `transfers`
    /// allows them.
    pub fn start_with_transfers<R: Responder>(
        listeners: Listeners,
        limits: TcpLimits,
        responder: Arc<R>,
        transfers: Option<Arc<transfer::TransferPolicy>>,
    ) -> Result<Workers, ServeError> {
        let stats = Arc::new(ServerStats::default());
        let shared = Arc::new(Shared {
            responder,
            limits,
            stats: stats.clone(),
            tcp_open: AtomicUsize::new(0),
            transfers,
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (failure_tx, failures) = mpsc::unbounded_channel();
        let mut threads = Vec::with_capacity(listeners.workers.len());
        for (index, sockets) in listeners.workers.into_iter().enumerate() {
            let shared = shared.clone();
            let shutdown_rx = shutdown_rx.clone();
            let report = FailureReport {
                worker: index,
                sender: failure_tx.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("dns-worker-{index}"))
                .spawn(move || run_worker(sockets, shared, shutdown_rx, report))
                .map_err(|source| ServeError::Setup {
                    what: "a worker thread",
                    source,
                })?;
            threads.push(thread);
        }
        Ok(Workers {
            threads,
            shutdown,
            failures,
            stats,
        })
    }

    /// The front ends' counters.
    pub fn stats(&self) -> &Arc<ServerStats> {
        &self.stats
    }

    /// Waits until a worker fails and returns why (pending forever while all run).
    pub async fn failed(&mut self) -> ServeError {
        match self.failures.recv().await {
            Some((worker, reason)) => ServeError::WorkerFailed { worker, reason },
            None => std::future::pending().await,
        }
    }

    /// Stops every worker (open TCP connections are closed) and waits for them.
    pub fn shutdown(self) {
        // Ignored error: no receiver means every worker has already stopped.
        let _ = self.shutdown.send(true);
        for thread in self.threads {
            // A worker that panicked has been reported through `failures`.
            let _ = thread.join();
        }
    }
}

/// Reports a worker's unexpected end, including a panic, to the main thread.
struct FailureReport {
    worker: usize,
    sender: mpsc::UnboundedSender<(usize, String)>,
}

impl FailureReport {
    /// Sends `reason`; the receiver may be gone during shutdown, which is fine.
    fn send(&self, reason: String) {
        let _ = self.sender.send((self.worker, reason));
    }
}

impl Drop for FailureReport {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.send("panicked".to_string());
        }
    }
}

/// One worker thread: a current-thread runtime serving its sockets until shutdown.
fn run_worker<R: Responder>(
    sockets: WorkerSockets,
    shared: Arc<Shared<R>>,
    mut shutdown: watch::Receiver<bool>,
    report: FailureReport,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(
                worker = report.worker,
                "cannot start the worker's runtime: {e}"
            );
            report.send(format!("cannot start its runtime: {e}"));
            return;
        }
    };
    // A LocalSet: the UDP task keeps its batch headers (not Send) across
    // awaits, and a worker never moves tasks between threads anyway.
    let local = tokio::task::LocalSet::new();
    let result: io::Result<()> = local.block_on(&runtime, async {
        for socket in sockets.udp {
            let socket = tokio::net::UdpSocket::from_std(socket)?;
            tokio::task::spawn_local(udp::serve(socket, shared.clone()));
        }
        for listener in sockets.tcp {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tokio::spawn(tcp::accept(listener, shared.clone()));
        }
        // Ends on `true` or when the sender is gone; either way, stop.
        let _ = shutdown.wait_for(|&stop| stop).await;
        Ok(())
    });
    if let Err(e) = result {
        tracing::error!(
            worker = report.worker,
            "cannot register the worker's sockets: {e}"
        );
        report.send(format!("cannot register its sockets: {e}"));
    }
    // Dropping the runtime here cancels the worker's tasks and closes its sockets.
    drop(local);
}

/// Runs the daemon with `config` (read from `config_path`, re-read on SIGHUP)
/// until SIGTERM or SIGINT. Errors are returned, not logged.
pub fn run(config_path: PathBuf, config: Config) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ServeError::Setup {
            what: "the main runtime",
            source,
        })?;
    runtime.block_on(run_until_stopped(config_path, config))
}

/// The body of [`run`], on the main thread's runtime.
async fn run_until_stopped(config_path: PathBuf, config: Config) -> Result<(), ServeError> {
    let signal_handler = |kind| {
        signal(kind).map_err(|source| ServeError::Setup {
            what: "signal handlers",
            source,
        })
    };
    let mut hangup = signal_handler(SignalKind::hangup())?;
    let mut terminate = signal_handler(SignalKind::terminate())?;
    let mut interrupt = signal_handler(SignalKind::interrupt())?;

    let listeners = Listeners::bind(&config.server.listen, config.server.workers)?;
    for address in listeners.local_addresses() {
        tracing::info!(%address, "listening on UDP and TCP");
    }
    let mut reloader = reload::Reloader::new(config_path, config);
    let store = secondaries::start(reloader.config(), reloader.catalog())?;
    let zones = reloader.zones().clone();
    let server = reloader.config().server.clone();
    // Built once: allow_transfer and [[tsig]] changes need a restart.
    let transfers = transfer::TransferPolicy::from_config(reloader.config(), zones.clone(), store);
    let zones_allowing_transfers = transfers.zones_allowing_transfers();
    let mut workers = Workers::start_with_transfers(
        listeners,
        TcpLimits::from(&server),
        Arc::new(ZoneResponder::new(zones)),
        Some(Arc::new(transfers)),
    )?;
    tracing::info!(
        workers = server.workers,
        udp_payload = server.udp_payload,
        tcp_max_connections = server.tcp_max_connections,
        zones_allowing_transfers,
        "serving"
    );

    let result = loop {
        tokio::select! {
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration and zones");
                reloader.reload();
            }
            _ = terminate.recv() => break Ok(()),
            _ = interrupt.recv() => break Ok(()),
            error = workers.failed() => break Err(error),
        }
    };
    tracing::info!("stopping");
    workers.shutdown();
    result
}
