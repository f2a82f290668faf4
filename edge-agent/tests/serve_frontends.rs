//! The UDP and TCP front ends in-process, with a stand-in responder that
//! echoes the query: framing, pipelining, back-pressure and limits, whatever
//! the DNS core answers.

mod serve_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use edge_agent::dns::Transport;
use edge_agent::serve::{Listeners, Responder, ServeError, TcpLimits, Workers};
use serve_support::{
    PATIENCE, frame, is_closed_by_server, tcp_connect, tcp_receive, tcp_send, udp_exchange,
};

/// Echoes the query with QR set; stays silent for messages of exactly 13 bytes.
struct Echo;

impl Responder for Echo {
    fn respond(&self, query: &[u8], _: Transport, out: &mut [u8]) -> Option<usize> {
        if query.len() < 12 || query.len() == 13 {
            return None;
        }
        let out = out.get_mut(..query.len())?;
        out.copy_from_slice(query);
        out[2] |= 0x80;
        Some(query.len())
    }
}

/// A 12-byte-header message with `id` and `len` bytes in all.
fn message(id: u16, len: usize) -> Vec<u8> {
    let mut message = id.to_be_bytes().to_vec();
    message.resize(len, 0xab);
    message[2] = 0;
    message
}

fn limits() -> TcpLimits {
    TcpLimits {
        idle_timeout: PATIENCE,
        max_connections: 64,
        max_queries_per_connection: None,
    }
}

fn start(workers: usize, limits: TcpLimits) -> (Workers, SocketAddr) {
    let listeners =
        Listeners::bind(&["127.0.0.1:0".parse().expect("address")], workers).expect("bind");
    let address = listeners.local_addresses()[0];
    let running = Workers::start(listeners, limits, Arc::new(Echo)).expect("start");
    (running, address)
}

#[test]
fn udp_queries_are_answered_by_every_worker() {
    let (workers, address) = start(2, limits());
    for id in 0..200u16 {
        let answer = udp_exchange(address, &message(id, 40), PATIENCE).expect("answer");
        assert_eq!(answer[..2], id.to_be_bytes());
        assert_eq!(answer[2] & 0x80, 0x80);
    }
    // Silence from the responder sends nothing, and the worker goes on.
    assert!(udp_exchange(address, &message(1, 13), Duration::from_millis(200)).is_none());
    assert!(udp_exchange(address, &message(2, 12), PATIENCE).is_some());
    workers.shutdown();
}

#[test]
fn tcp_uses_the_same_port_as_udp() {
    let (workers, address) = start(1, limits());
    let mut stream = tcp_connect(address);
    tcp_send(&mut stream, &message(5, 30));
    assert_eq!(
        tcp_receive(&mut stream).expect("answer")[..2],
        5u16.to_be_bytes()
    );
    workers.shutdown();
}

#[test]
fn many_pipelined_queries_are_answered_in_order_while_the_client_is_slow() {
    let (workers, address) = start(1, limits());
    let mut stream = tcp_connect(address);
    // 2000 queries of 500 bytes (1 MB): far more than the server buffers, so it
    // must stop reading until we read, then go on.
    let total = 2000u16;
    let batch: Vec<u8> = (0..total).flat_map(|id| frame(&message(id, 500))).collect();
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || writer.write_all(&batch).expect("send all"));
    std::thread::sleep(Duration::from_millis(200));
    for id in 0..total {
        let answer = tcp_receive(&mut stream).expect("answer");
        assert_eq!(answer.len(), 500);
        assert_eq!(answer[..2], id.to_be_bytes());
    }
    sender.join().expect("sender");
    workers.shutdown();
}

#[test]
fn a_query_split_across_writes_is_answered() {
    let (workers, address) = start(1, limits());
    let mut stream = tcp_connect(address);
    let framed = frame(&message(9, 300));
    for piece in framed.chunks(7) {
        stream.write_all(piece).expect("send piece");
        stream.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        tcp_receive(&mut stream).expect("answer")[..2],
        9u16.to_be_bytes()
    );
    workers.shutdown();
}

#[test]
fn largest_message_is_answered() {
    let (workers, address) = start(1, limits());
    let mut stream = tcp_connect(address);
    tcp_send(&mut stream, &message(3, 65_535));
    let answer = tcp_receive(&mut stream).expect("answer");
    assert_eq!(answer.len(), 65_535);
    workers.shutdown();
}

#[test]
fn connection_is_closed_after_max_queries_with_all_answers_sent() {
    let limits = TcpLimits {
        max_queries_per_connection: Some(3),
        ..limits()
    };
    let (workers, address) = start(1, limits);
    let mut stream = tcp_connect(address);
    let batch: Vec<u8> = (0..5u16).flat_map(|id| frame(&message(id, 20))).collect();
    stream.write_all(&batch).expect("send");
    for id in 0..3u16 {
        assert_eq!(
            tcp_receive(&mut stream).expect("answer")[..2],
            id.to_be_bytes()
        );
    }
    assert!(tcp_receive(&mut stream).is_none(), "closed after 3 answers");
    workers.shutdown();
}

#[test]
fn connection_limit_is_counted_and_places_are_freed() {
    let limits = TcpLimits {
        max_connections: 3,
        ..limits()
    };
    let (workers, address) = start(2, limits);
    let mut held: Vec<_> = (0..3u16)
        .map(|id| {
            let mut stream = tcp_connect(address);
            tcp_send(&mut stream, &message(id, 12));
            tcp_receive(&mut stream).expect("served");
            stream
        })
        .collect();
    for _ in 0..2 {
        let mut extra = tcp_connect(address);
        assert!(is_closed_by_server(&mut extra));
    }
    assert_eq!(workers.stats().tcp_refused.load(Ordering::Relaxed), 2);
    held.clear();
    let deadline = Instant::now() + PATIENCE;
    while workers.stats().tcp_accepted.load(Ordering::Relaxed) < 4 {
        let mut stream = tcp_connect(address);
        tcp_send(&mut stream, &message(7, 12));
        if tcp_receive(&mut stream).is_some() {
            continue;
        }
        assert!(Instant::now() < deadline, "places are never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
    workers.shutdown();
}

#[test]
fn idle_timeout_and_malformed_length_are_counted() {
    let limits = TcpLimits {
        idle_timeout: Duration::from_millis(100),
        ..limits()
    };
    let (workers, address) = start(1, limits);
    let mut idle = tcp_connect(address);
    assert!(is_closed_by_server(&mut idle));
    let mut bad = tcp_connect(address);
    bad.write_all(&[0, 0]).expect("send zero length");
    assert!(is_closed_by_server(&mut bad));
    let mut silent = tcp_connect(address);
    tcp_send(&mut silent, &message(1, 13));
    assert!(is_closed_by_server(&mut silent));
    let stats = workers.stats();
    assert!(stats.tcp_timed_out.load(Ordering::Relaxed) >= 1);
    assert_eq!(stats.tcp_malformed.load(Ordering::Relaxed), 2);
    workers.shutdown();
}

#[test]
fn client_that_never_reads_is_dropped_by_the_idle_timeout() {
    let limits = TcpLimits {
        idle_timeout: Duration::from_millis(300),
        ..limits()
    };
    let (workers, address) = start(1, limits);
    let stream = tcp_connect(address);
    stream
        .set_write_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let batch: Vec<u8> = (0..200u16)
        .flat_map(|id| frame(&message(id, 60_000)))
        .collect();
    let mut writer = stream.try_clone().expect("clone");
    // Writing stops (both buffers fill) without us reading; the server gives up.
    let _ = writer.write_all(&batch);
    let deadline = Instant::now() + PATIENCE;
    while workers.stats().tcp_timed_out.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "never timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stream);
    workers.shutdown();
}

#[test]
fn taken_port_is_an_error_even_with_reuseport_workers() {
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address");
    match Listeners::bind(&[address], 2) {
        Err(ServeError::Bind { proto: "UDP", .. }) => {}
        other => panic!("expected a bind error, got {other:?}"),
    }
}

#[test]
fn ipv6_loopback_is_used_when_present_and_skipped_when_not() {
    let addresses: Vec<SocketAddr> = vec![
        "127.0.0.1:0".parse().expect("v4"),
        "[::1]:0".parse().expect("v6"),
    ];
    let listeners = Listeners::bind(&addresses, 1).expect("at least 127.0.0.1 binds");
    let bound = listeners.local_addresses().to_vec();
    let has_v6 = UdpSocket::bind("[::1]:0").is_ok();
    assert_eq!(bound.len(), if has_v6 { 2 } else { 1 }, "{bound:?}");
    let workers = Workers::start(listeners, limits(), Arc::new(Echo)).expect("start");
    for address in bound {
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
        stream.write_all(&frame(&message(1, 12))).expect("send");
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).expect("answer");
    }
    workers.shutdown();
}

#[test]
fn shutdown_stops_the_workers_and_frees_the_port() {
    let (workers, address) = start(2, limits());
    let _open = tcp_connect(address);
    workers.shutdown();
    assert!(
        UdpSocket::bind(address).is_ok(),
        "the UDP port is free again"
    );
}
