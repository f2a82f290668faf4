//! Shared helpers of the integration tests: temp folders, the real binary
//! started on a loopback port, and hand-built DNS messages.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for the server to do something before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A zone file for `example.test.` with SOA serial `serial` and 4 records.
pub fn example_zone(serial: u32) -> String {
    format!(
        "$ORIGIN example.test.\n$TTL 300\n\
         @ IN SOA ns1 hostmaster {serial} 3600 600 86400 300\n\
         @ IN NS ns1\n\
         ns1 IN A 192.0.2.1\n\
         www IN A 192.0.2.2\n"
    )
}

/// A zone file for `example.test.` whose line 4 is wrong.
pub const BROKEN_ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n\
     @ IN SOA ns1 hostmaster 1 3600 600 86400 300\n\
     www IN A not-an-address\n";

/// A fresh, empty folder for one test, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates it; `name` keeps parallel tests apart.
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("edge-agent-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// Path of `file` inside.
    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    /// Writes `text` to `file` inside and returns its path.
    pub fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.path(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folder");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The agent binary under test.
pub fn agent_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_edge-agent"));
    // Logs must come to our pipe, never to a journal the test runner has.
    command.env_remove("JOURNAL_STREAM").env("RUST_LOG", "info");
    command
}

/// Runs `edge-agent ARGS` to completion; returns its status, stdout and stderr.
pub fn run_agent(args: &[&str]) -> (ExitStatus, String, String) {
    let output = agent_command().args(args).output().expect("run edge-agent");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The log line that says the workers run.
const SERVING: &str = "edge_agent::serve: serving";

/// A running `edge-agent --config FILE`, killed when dropped.
pub struct Agent {
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
    /// The addresses it listens on, from its log.
    pub addresses: Vec<SocketAddr>,
}

impl Agent {
    /// Starts the agent on `config` and waits until it serves.
    pub fn start(config: &Path) -> Agent {
        let mut child = agent_command()
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start edge-agent");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (sender, lines) = channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log_writer = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("agent: {line}");
                log_writer.lock().expect("log lock").push(line.clone());
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut agent = Agent {
            child,
            lines,
            log,
            addresses: Vec::new(),
        };
        loop {
            let line = agent
                .wait_for_line(|l| l.contains("listening on UDP and TCP") || l.contains(SERVING));
            if line.contains(SERVING) {
                break;
            }
            let address = line
                .split_whitespace()
                .find_map(|word| word.strip_prefix("address="))
                .and_then(|a| a.parse().ok())
                .expect("address in the listening line");
            agent.addresses.push(address);
        }
        agent
    }

    /// The first listen address.
    pub fn address(&self) -> SocketAddr {
        self.addresses[0]
    }

    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next log line matching `wanted`, failing after [`PATIENCE`].
    pub fn wait_for_line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no such log line in time; log:\n{}", self.log())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    panic!("agent exited ({status:?}); log:\n{}", self.log())
                }
            }
        }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }

    /// Sends signal `name` (like "HUP") to the agent.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the agent to exit, failing after [`PATIENCE`].
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for agent") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "agent did not exit; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config listening on a kernel-chosen loopback port, with `server_extra`
/// lines added to `[server]` and one `[[zone]]` per (name, file).
pub fn config_text(server_extra: &str, zones: &[(&str, &str)]) -> String {
    let mut text = format!("[server]\nlisten = [\"127.0.0.1:0\"]\n{server_extra}\n");
    for (name, file) in zones {
        text.push_str(&format!(
            "\n[[zone]]\nname = \"{name}\"\nfile = \"{file}\"\n"
        ));
    }
    text
}

/// DNS type codes used by the tests.
pub mod qtype {
    /// SOA.
    pub const SOA: u16 = 6;
    /// A.
    pub const A: u16 = 1;
}

/// A query for `name` (presentation form, absolute) and `qtype`, class IN, with `id`.
pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut packet = Vec::with_capacity(64);
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&[0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.push(0);
    packet.extend_from_slice(&qtype.to_be_bytes());
    packet.extend_from_slice(&1u16.to_be_bytes());
    packet
}

/// The parts of a response the tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Message ID.
    pub id: u16,
    /// QR bit.
    pub is_response: bool,
    /// AA bit.
    pub authoritative: bool,
    /// RCODE (low 4 bits).
    pub rcode: u8,
    /// ANCOUNT.
    pub answers: u16,
    /// Serial of the first SOA in the answer section, if any.
    pub soa_serial: Option<u32>,
}

/// Reads the header and, when the first answer is a SOA, its serial.
pub fn parse_response(message: &[u8]) -> Response {
    assert!(
        message.len() >= 12,
        "response shorter than a header: {message:?}"
    );
    let id = u16::from_be_bytes([message[0], message[1]]);
    let flags = u16::from_be_bytes([message[2], message[3]]);
    let qdcount = u16::from_be_bytes([message[4], message[5]]);
    let ancount = u16::from_be_bytes([message[6], message[7]]);
    let mut pos = 12;
    for _ in 0..qdcount {
        pos = skip_name(message, pos) + 4;
    }
    let mut soa_serial = None;
    if ancount > 0 {
        pos = skip_name(message, pos);
        let rtype = u16::from_be_bytes([message[pos], message[pos + 1]]);
        let rdata = pos + 10;
        if rtype == qtype::SOA {
            let serial_at = skip_name(message, skip_name(message, rdata));
            let bytes: [u8; 4] = message[serial_at..serial_at + 4]
                .try_into()
                .expect("4 bytes");
            soa_serial = Some(u32::from_be_bytes(bytes));
        }
    }
    Response {
        id,
        is_response: flags & 0x8000 != 0,
        authoritative: flags & 0x0400 != 0,
        rcode: (flags & 0x000f) as u8,
        answers: ancount,
        soa_serial,
    }
}

/// Offset just past the (possibly compressed) name at `pos`.
fn skip_name(message: &[u8], mut pos: usize) -> usize {
    loop {
        let len = message[pos];
        if len & 0xc0 == 0xc0 {
            return pos + 2;
        }
        pos += 1 + usize::from(len);
        if len == 0 {
            return pos;
        }
    }
}

/// Sends `packet` over UDP to `server` and returns the response, if one comes in time.
pub fn udp_exchange(server: SocketAddr, packet: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind client socket");
    socket.set_read_timeout(Some(timeout)).expect("timeout");
    socket.send_to(packet, server).expect("send query");
    let mut buf = vec![0u8; 65_535];
    let (len, _) = socket.recv_from(&mut buf).ok()?;
    buf.truncate(len);
    Some(buf)
}

/// A TCP connection to `server` with read timeout [`PATIENCE`].
pub fn tcp_connect(server: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(server).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream
}

/// Writes `message` behind its 2-byte length.
pub fn tcp_send(stream: &mut TcpStream, message: &[u8]) {
    stream.write_all(&frame(message)).expect("send query");
}

/// `message` behind its 2-byte length.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    framed
}

/// Reads one length-prefixed message; `None` at end of stream.
pub fn tcp_receive(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
        Err(e) => panic!("reading a TCP answer: {e}"),
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream
        .read_exact(&mut message)
        .expect("read TCP answer body");
    Some(message)
}

/// Whether the server closed `stream` (end of stream or reset) within [`PATIENCE`].
pub fn is_closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => {
            eprintln!("is_closed_by_server: the server sent data");
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => true,
        Err(e) => {
            eprintln!("is_closed_by_server: {e} ({:?})", e.kind());
            false
        }
    }
}
