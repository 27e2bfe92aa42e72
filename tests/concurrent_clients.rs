//! Many clients at once through a real server process: 1024 concurrent clients on mixed
//! 16 KiB traffic get no errors (issue 20). Apart from `tests/faults.rs`, whose time bounds
//! this load would skew.

mod common;

use std::time::Instant;

use common::{http, put_object as put, signed_headers, Server, SECRET_KEY};

#[test]
fn a_thousand_concurrent_clients_on_mixed_traffic_get_no_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    assert_eq!(put(&server, "/bkt", b"").status, 200);
    let hot: Vec<u8> = (0..16384u32).map(|i| (i % 253) as u8).collect();
    assert_eq!(put(&server, "/bkt/hot", &hot).status, 200);
    let clients = 1024;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(clients));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|i| {
            let (address, barrier, hot) = (server.address.clone(), barrier.clone(), hot.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let own: Vec<u8> = (0..16384u32)
                        .map(|j| ((i as u32 + j) % 251) as u8)
                        .collect();
                    let key = format!("/bkt/k{}", i % 256);
                    let req = |method: &str, path: &str, body: &[u8]| {
                        let h = signed_headers(
                            &address,
                            method,
                            path,
                            "",
                            &[],
                            "UNSIGNED-PAYLOAD",
                            SECRET_KEY,
                        );
                        http(&address, method, path, &h, body)
                    };
                    barrier.wait();
                    let mut errors = Vec::new();
                    // Writers share keys four to one, so publishes race under the locks.
                    let r = req("PUT", &key, &own);
                    if r.status != 200 {
                        errors.push(format!("PUT {key}: {} {}", r.status, r.text()));
                    }
                    let r = req("GET", "/bkt/hot", b"");
                    if r.status != 200 || r.body != hot {
                        errors.push(format!("GET hot: {}", r.status));
                    }
                    let r = req("GET", &key, b"");
                    // Another writer of the same key may have published since; any whole
                    // 16 KiB body of the key's writers is right, a torn one is not.
                    let whole = r.body.len() == 16384
                        && (0..4).any(|w| {
                            let n = (i % 256) + 256 * w;
                            r.body
                                .iter()
                                .enumerate()
                                .all(|(j, b)| *b == ((n + j) % 251) as u8)
                        });
                    if r.status != 200 || !whole {
                        errors.push(format!("GET {key}: {} ({} bytes)", r.status, r.body.len()));
                    }
                    errors
                })
                .unwrap()
        })
        .collect();
    let errors: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    eprintln!(
        "{clients} clients, {} requests, in {:?}",
        clients * 3,
        started.elapsed()
    );
    assert!(
        errors.is_empty(),
        "{} errors: {:?}",
        errors.len(),
        &errors[..errors.len().min(10)]
    );
    assert_eq!(
        http(&server.address, "GET", "/health/ready", &[], b"").status,
        200
    );
}
