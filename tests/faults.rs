//! Faults through a real server process: slow and greedy clients (header timeout, idle
//! keep-alive, the connection cap, oversized heads).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{http, Server, ANSWER_BOUND};

/// Reads until the server closes the connection; returns what came and how long it took.
fn read_until_closed(s: &mut TcpStream, bound: Duration) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    s.set_read_timeout(Some(bound)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, start.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (got, start.elapsed())
            }
            Err(e) => panic!(
                "connection still open after {:?} ({e}); got {:?}",
                start.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
}

#[test]
fn a_client_that_never_finishes_its_headers_is_closed_within_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--header-timeout", "2", "--keepalive-timeout", "3"],
    );
    let mut slow = TcpStream::connect(&server.address).unwrap();
    slow.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n").unwrap();
    let (_, took) = read_until_closed(&mut slow, Duration::from_secs(10));
    eprintln!("slow-header client closed after {took:?}");
    assert!(
        took >= Duration::from_millis(1500),
        "closed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "closed too late: {took:?}");

    // A kept-alive connection that goes quiet after its request is closed too.
    let mut idle = TcpStream::connect(&server.address).unwrap();
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let (got, took) = read_until_closed(&mut idle, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    eprintln!("idle keep-alive connection closed after {took:?}");
    assert!(
        took >= Duration::from_millis(2500),
        "closed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(6), "closed too late: {took:?}");

    // The server still answers.
    assert_eq!(
        http(&server.address, "GET", "/health/live", &[], b"").status,
        200
    );
}

#[test]
fn at_the_connection_cap_accepting_pauses_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 8;
    let server = Server::start(
        dir.path(),
        &[
            "--max-connections",
            &cap.to_string(),
            "--header-timeout",
            "60",
        ],
    );
    // `cap` idle connections: each is accepted (a request on it would be answered) and
    // then holds its slot while sending nothing.
    let mut held: Vec<TcpStream> = (0..cap)
        .map(|_| TcpStream::connect(&server.address).unwrap())
        .collect();
    // Three more, each with a whole request: none is accepted while the cap is full.
    let mut waiting: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(&server.address).unwrap();
            s.write_all(b"GET /health/live HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    // A bounded look for an answer that must not come (the connection is not accepted).
    waiting[0]
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buf = [0u8; 64];
    match waiting[0].read(&mut buf) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("a connection beyond the cap was served: {other:?}"),
    }
    // Closing held connections lets the waiting ones in, in order, each answered.
    for w in waiting.iter_mut() {
        drop(held.pop());
        let (got, _) = read_until_closed(w, ANSWER_BOUND);
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    }
    drop(held);
    assert_eq!(
        http(&server.address, "GET", "/health/live", &[], b"").status,
        200
    );
    let log = server.log();
    let warnings = log
        .iter()
        .filter(|l| l.contains("connection cap reached"))
        .count();
    assert!(warnings >= 1, "{log:?}");
    assert!(warnings <= 3, "logged once per episode at most: {log:?}");
}

fn raw_status(server: &Server, head: &str) -> u16 {
    let mut s = TcpStream::connect(&server.address).unwrap();
    // The server may answer and close before the whole head is sent.
    let _ = s.write_all(head.as_bytes());
    let (got, _) = read_until_closed(&mut s, ANSWER_BOUND);
    let text = String::from_utf8_lossy(&got);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[test]
fn oversized_or_overcrowded_headers_answer_431_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let before = common::files_under(dir.path());
    let huge = format!(
        "PUT /b/k HTTP/1.1\r\nHost: a\r\nX-Amz-Meta-Big: {}\r\nContent-Length: 0\r\n\r\n",
        "x".repeat(256 * 1024)
    );
    assert_eq!(raw_status(&server, &huge), 431);
    let mut many = String::from("PUT /b/k HTTP/1.1\r\nHost: a\r\n");
    for i in 0..150 {
        many.push_str(&format!("X-Amz-Meta-N{i}: v\r\n"));
    }
    many.push_str("Content-Length: 0\r\n\r\n");
    assert_eq!(raw_status(&server, &many), 431);
    assert_eq!(common::files_under(dir.path()), before);
    assert_eq!(
        http(&server.address, "GET", "/health/live", &[], b"").status,
        200
    );
}
