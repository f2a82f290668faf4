//! The real `edge-agent` binary serving on a loopback port: UDP and TCP
//! answers, SIGHUP reloads, the TCP connection limit, bad input, exit codes.

mod serve_support;

use std::io::Write;
use std::net::UdpSocket;
use std::time::Duration;

use serve_support::{
    Agent, BROKEN_ZONE, PATIENCE, TempDir, config_text, example_zone, frame, is_closed_by_server,
    parse_response, qtype, query, run_agent, tcp_connect, tcp_receive, tcp_send, udp_exchange,
};

/// Starts an agent serving `example.test.` with `serial`, plus `server_extra` in `[server]`.
fn start_example(dir: &TempDir, serial: u32, server_extra: &str) -> Agent {
    dir.write("example.test.zone", &example_zone(serial));
    let config = dir.write(
        "agent.toml",
        &config_text(server_extra, &[("example.test.", "example.test.zone")]),
    );
    Agent::start(&config)
}

/// The SOA serial the agent at `agent` answers over UDP for `example.test.`.
fn served_serial(agent: &Agent, id: u16) -> Option<u32> {
    let answer = udp_exchange(
        agent.address(),
        &query(id, "example.test.", qtype::SOA),
        PATIENCE,
    )
    .expect("UDP answer");
    let response = parse_response(&answer);
    assert_eq!(response.id, id);
    response.soa_serial
}

#[test]
fn answers_soa_over_udp_and_logs_the_zone() {
    let dir = TempDir::new("daemon-udp");
    let mut agent = start_example(&dir, 7, "");
    let answer = udp_exchange(
        agent.address(),
        &query(0x1234, "example.test.", qtype::SOA),
        PATIENCE,
    );
    let response = parse_response(&answer.expect("an answer over UDP"));
    assert_eq!(response.id, 0x1234);
    assert!(
        response.is_response && response.authoritative,
        "{response:?}"
    );
    assert_eq!(
        (response.rcode, response.answers, response.soa_serial),
        (0, 1, Some(7))
    );
    assert!(agent.log().contains("zone loaded"), "{}", agent.log());
    agent.signal("TERM");
    assert_eq!(agent.wait_exit().code(), Some(0));
}

#[test]
fn answers_pipelined_queries_over_tcp_in_order() {
    let dir = TempDir::new("daemon-tcp");
    let agent = start_example(&dir, 9, "");
    let mut stream = tcp_connect(agent.address());
    // Three queries in one write: the server must answer all, in order.
    let batch = [
        frame(&query(1, "example.test.", qtype::SOA)),
        frame(&query(2, "www.example.test.", qtype::A)),
        frame(&query(3, "example.test.", qtype::SOA)),
    ]
    .concat();
    stream.write_all(&batch).expect("send queries");
    let ids: Vec<u16> = (0..3)
        .map(|_| parse_response(&tcp_receive(&mut stream).expect("an answer")).id)
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    tcp_send(&mut stream, &query(4, "example.test.", qtype::SOA));
    let response = parse_response(&tcp_receive(&mut stream).expect("an answer"));
    assert_eq!(
        (response.id, response.rcode, response.soa_serial),
        (4, 0, Some(9))
    );
}

#[test]
fn sighup_with_a_broken_file_keeps_the_old_version() {
    let dir = TempDir::new("daemon-reload");
    let mut agent = start_example(&dir, 1, "");
    assert_eq!(served_serial(&agent, 1), Some(1));

    dir.write("example.test.zone", BROKEN_ZONE);
    agent.signal("HUP");
    let error = agent.wait_for_line(|l| l.contains("zone not reloaded"));
    assert!(error.contains("ERROR"), "{error}");
    agent.wait_for_line(|l| l.contains("example.test.zone:4:"));
    assert_eq!(
        served_serial(&agent, 2),
        Some(1),
        "the old version is still served"
    );

    dir.write("example.test.zone", &example_zone(2));
    agent.signal("HUP");
    agent.wait_for_line(|l| l.contains("zone loaded") && l.contains("serial=2"));
    assert_eq!(
        served_serial(&agent, 3),
        Some(2),
        "the new version is served"
    );
}

#[test]
fn a_zone_that_fails_at_start_is_not_served_but_others_are() {
    let dir = TempDir::new("daemon-start-fail");
    dir.write("example.test.zone", &example_zone(5));
    dir.write(
        "broken.zone",
        &BROKEN_ZONE.replace("example.test.", "broken.test."),
    );
    let zones = [
        ("example.test.", "example.test.zone"),
        ("broken.test.", "broken.zone"),
    ];
    let config = dir.write("agent.toml", &config_text("", &zones));
    let agent = Agent::start(&config);
    assert!(
        agent.log().contains("zone not loaded, not served"),
        "{}",
        agent.log()
    );
    assert_eq!(served_serial(&agent, 1), Some(5));
    let answer = udp_exchange(
        agent.address(),
        &query(2, "broken.test.", qtype::SOA),
        PATIENCE,
    )
    .expect("answer");
    let response = parse_response(&answer);
    assert_eq!(
        response.rcode, 5,
        "REFUSED for a zone not served: {response:?}"
    );
}

#[test]
fn connection_limit_closes_extra_connections_and_frees_places() {
    let dir = TempDir::new("daemon-limit");
    let mut agent = start_example(&dir, 1, "tcp_max_connections = 2");
    let mut held: Vec<_> = (0..2u16)
        .map(|id| {
            let mut stream = tcp_connect(agent.address());
            tcp_send(&mut stream, &query(id, "example.test.", qtype::SOA));
            assert!(
                tcp_receive(&mut stream).is_some(),
                "connection {id} is served"
            );
            stream
        })
        .collect();
    let mut extra = tcp_connect(agent.address());
    assert!(
        is_closed_by_server(&mut extra),
        "a third connection is closed at once"
    );

    held.pop();
    // The server notices the close asynchronously; retry briefly.
    let served = (0..50).any(|attempt| {
        let mut stream = tcp_connect(agent.address());
        tcp_send(
            &mut stream,
            &query(100 + attempt, "example.test.", qtype::SOA),
        );
        let answered = tcp_receive(&mut stream).is_some();
        if !answered {
            std::thread::sleep(Duration::from_millis(50));
        }
        answered
    });
    assert!(served, "a freed place is used again");
    agent.wait_for_line(|l| l.contains("TCP connection limit reached"));
}

#[test]
fn bad_tcp_input_closes_only_that_connection() {
    let dir = TempDir::new("daemon-bad-tcp");
    let agent = start_example(&dir, 3, "");

    // A length prefix too short for a DNS header: the connection is closed.
    let mut stream = tcp_connect(agent.address());
    stream.write_all(&[0, 3, 1, 2, 3]).expect("send garbage");
    assert!(is_closed_by_server(&mut stream));

    // A response instead of a query (silence from the core): answers before it
    // are sent, then the connection is closed.
    let mut stream = tcp_connect(agent.address());
    let mut not_a_query = query(8, "example.test.", qtype::SOA);
    not_a_query[2] |= 0x80;
    let batch = [
        frame(&query(7, "example.test.", qtype::SOA)),
        frame(&not_a_query),
    ]
    .concat();
    stream.write_all(&batch).expect("send");
    assert_eq!(
        parse_response(&tcp_receive(&mut stream).expect("first answer")).id,
        7
    );
    assert!(
        tcp_receive(&mut stream).is_none(),
        "closed after the unanswerable message"
    );

    // A client that announces more than it sends and goes away.
    let mut stream = tcp_connect(agent.address());
    stream.write_all(&[0, 100, 0, 1, 2]).expect("send");
    drop(stream);

    assert_eq!(
        served_serial(&agent, 9),
        Some(3),
        "the server still answers"
    );
    let mut stream = tcp_connect(agent.address());
    tcp_send(&mut stream, &query(10, "example.test.", qtype::SOA));
    assert_eq!(
        parse_response(&tcp_receive(&mut stream).expect("answer")).id,
        10
    );
}

#[test]
fn idle_tcp_connection_is_closed_after_the_timeout() {
    let dir = TempDir::new("daemon-idle");
    let agent = start_example(&dir, 1, "tcp_idle_timeout_ms = 200");
    let mut stream = tcp_connect(agent.address());
    let started = std::time::Instant::now();
    assert!(is_closed_by_server(&mut stream));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[test]
fn sigint_stops_cleanly() {
    let dir = TempDir::new("daemon-sigint");
    let mut agent = start_example(&dir, 1, "workers = 2");
    agent.signal("INT");
    assert_eq!(agent.wait_exit().code(), Some(0), "{}", agent.log());
}

#[test]
fn address_in_use_exits_1() {
    let dir = TempDir::new("daemon-in-use");
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let text = config_text("", &[]).replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let config = dir.write("agent.toml", &text);
    let (status, _, stderr) = run_agent(&["--config", config.to_str().expect("utf-8 path")]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot listen on UDP"), "{stderr}");
}

#[test]
fn invalid_config_at_start_exits_2() {
    let dir = TempDir::new("daemon-bad-config");
    let config = dir.write(
        "agent.toml",
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 100\n",
    );
    let (status, _, stderr) = run_agent(&["--config", config.to_str().expect("utf-8 path")]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("workers: 100 is out of range"), "{stderr}");
}
