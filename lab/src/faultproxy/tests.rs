//! The fault proxy against real sockets on loopback: each fault of the semantics table.

use std::io;

use rand::Rng as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::connection::{one_way_delay, roll_drop};
use super::*;
use std::net::{Ipv4Addr, SocketAddrV4};

const LOCALHOST_ANY_PORT: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
/// Hang guard for operations that must complete; not a performance bound.
const HANG_GUARD: Duration = Duration::from_secs(5);
const REQUEST: &[u8] = b"GET /health HTTP/1.1\r\nHost: lab\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Echoes every byte back, half-closing after the client's EOF.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind(LOCALHOST_ANY_PORT).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// Answers every `\r\n\r\n`-terminated request with [`RESPONSE`]
/// (keep-alive).
async fn http_server() -> SocketAddr {
    let listener = TcpListener::bind(LOCALHOST_ANY_PORT).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut pending = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                    }
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        if stream.write_all(RESPONSE).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

async fn read_response(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.len() < RESPONSE.len() {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(got)
}

async fn round_trip(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    stream.write_all(REQUEST).await?;
    read_response(stream).await
}

async fn start(upstream: SocketAddr) -> FaultProxy {
    FaultProxy::start(LOCALHOST_ANY_PORT, upstream).await.unwrap()
}

/// Polls `check` until it holds or the hang guard expires.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + HANG_GUARD;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    check()
}

/// Sends `payload` and reads back as many bytes through an echo path.
async fn echo_through(addr: SocketAddr, payload: Vec<u8>) -> Vec<u8> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = stream.into_split();
    let writer = tokio::spawn(async move {
        w.write_all(&payload).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.unwrap();
    writer.await.unwrap();
    back
}

fn pattern(len: usize) -> Vec<u8> {
    let mut rng = rand::rng();
    (0..len).map(|_| rng.random::<u8>()).collect()
}

#[tokio::test]
async fn passes_bytes_unchanged_both_ways() {
    let proxy = start(echo_server().await).await;
    let payload = pattern(1024 * 1024);
    let back = tokio::time::timeout(HANG_GUARD * 2, echo_through(proxy.addr(), payload.clone())).await.unwrap();
    assert_eq!(back.len(), payload.len());
    assert!(back == payload, "echoed bytes differ");
    let stats = proxy.stats();
    assert_eq!(stats.bytes_up, payload.len() as u64);
    assert_eq!(stats.bytes_down, payload.len() as u64);
    assert_eq!(stats.accepted, 1);
    assert_eq!(stats.blackholed, 0);
    proxy.stop().await;
}

#[tokio::test]
async fn latency_delays_new_and_existing_connections() {
    let proxy = start(http_server().await).await;
    let mut existing = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut existing).await.unwrap(), RESPONSE);

    proxy.set(Faults { latency: Duration::from_millis(200), ..Faults::default() });
    // New connection: setup, request and response are each delayed.
    let started = Instant::now();
    let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut fresh).await.unwrap(), RESPONSE);
    assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());

    // Existing connection: the change applies to live traffic, both ways.
    let started = Instant::now();
    assert_eq!(round_trip(&mut existing).await.unwrap(), RESPONSE);
    assert!(started.elapsed() >= Duration::from_millis(400), "{:?}", started.elapsed());
    proxy.stop().await;
}

#[tokio::test]
async fn blackhole_hangs_then_clears() {
    let proxy = start(http_server().await).await;
    let mut existing = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut existing).await.unwrap(), RESPONSE);

    proxy.update(|f| f.blackhole = true);
    let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
    fresh.write_all(REQUEST).await.unwrap();
    existing.write_all(REQUEST).await.unwrap();
    let (fresh_read, existing_read) = tokio::join!(
        tokio::time::timeout(Duration::from_millis(500), read_response(&mut fresh)),
        tokio::time::timeout(Duration::from_millis(500), read_response(&mut existing)),
    );
    assert!(fresh_read.is_err(), "new connection answered during blackhole");
    assert!(existing_read.is_err(), "existing connection answered during blackhole");
    assert_eq!(proxy.stats().blackholed, 1);

    proxy.clear();
    // The paused connection resumes and delivers the held request.
    let resumed = tokio::time::timeout(HANG_GUARD, read_response(&mut existing)).await;
    assert_eq!(resumed.unwrap().unwrap(), RESPONSE);
    // A new connection works.
    let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
    let answered = tokio::time::timeout(HANG_GUARD, round_trip(&mut after)).await;
    assert_eq!(answered.unwrap().unwrap(), RESPONSE);
    proxy.stop().await;
}

/// Opens `n` connections at once, sends a request on each and returns
/// how many were answered within `wait`.
async fn answered_of(addr: SocketAddr, n: usize, wait: Duration) -> usize {
    let mut probes = tokio::task::JoinSet::new();
    for _ in 0..n {
        probes.spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(REQUEST).await.unwrap();
            matches!(tokio::time::timeout(wait, read_response(&mut stream)).await, Ok(Ok(_)))
        });
    }
    let mut answered = 0;
    while let Some(ok) = probes.join_next().await {
        answered += usize::from(ok.unwrap());
    }
    answered
}

#[tokio::test]
async fn drop_rate_blackholes_new_connections() {
    let proxy = start(http_server().await).await;
    proxy.set(Faults { drop_rate: 1.0, ..Faults::default() });
    assert_eq!(answered_of(proxy.addr(), 10, Duration::from_millis(500)).await, 0);
    assert_eq!(proxy.stats().blackholed, 10);

    proxy.set(Faults { drop_rate: 0.3, ..Faults::default() });
    let answered = answered_of(proxy.addr(), 200, Duration::from_secs(1)).await;
    assert!(eventually(|| proxy.stats().accepted == 210).await);
    let dropped = proxy.stats().blackholed - 10;
    assert!((30..=90).contains(&dropped), "{dropped} of 200 dropped at 0.3");
    assert_eq!(answered as u64 + dropped, 200, "client view disagrees with stats");
    proxy.stop().await;
}

#[tokio::test]
async fn reset_kills_new_and_existing_connections() {
    let proxy = start(http_server().await).await;
    let mut existing = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut existing).await.unwrap(), RESPONSE);

    proxy.update(|f| f.reset = true);
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(HANG_GUARD, existing.read(&mut buf)).await.expect("existing connection not reset");
    let error = read.expect_err("expected an RST, got data or EOF");
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);

    // A new connection completes the handshake, then dies.
    let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
    let _ = fresh.write_all(REQUEST).await;
    let read = tokio::time::timeout(HANG_GUARD, fresh.read(&mut buf)).await.expect("new connection not reset");
    assert!(matches!(read, Ok(0) | Err(_)), "got data: {read:?}");
    assert!(eventually(|| proxy.stats().reset == 2).await, "{:?}", proxy.stats());
    proxy.stop().await;
}

#[tokio::test]
async fn bandwidth_limit_throttles() {
    let proxy = start(echo_server().await).await;
    proxy.set(Faults { bandwidth_bytes_per_sec: Some(100 * 1024), ..Faults::default() });
    let payload = pattern(200 * 1024);
    let started = Instant::now();
    let back = tokio::time::timeout(HANG_GUARD * 2, echo_through(proxy.addr(), payload.clone())).await.unwrap();
    let elapsed = started.elapsed();
    assert!(back == payload, "echoed bytes differ");
    assert!(elapsed >= Duration::from_millis(1500), "{elapsed:?}");
    proxy.stop().await;
}

#[tokio::test]
async fn refuse_closes_the_port_until_cleared() {
    let proxy = start(http_server().await).await;
    let addr = proxy.addr();
    let mut existing = TcpStream::connect(addr).await.unwrap();
    assert_eq!(round_trip(&mut existing).await.unwrap(), RESPONSE);

    proxy.update(|f| f.refuse = true);
    let mut refused = false;
    let deadline = Instant::now() + HANG_GUARD;
    while !refused && Instant::now() < deadline {
        match TcpStream::connect(addr).await {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => refused = true,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    assert!(refused, "connections were not refused");
    // Existing connections are not affected.
    assert_eq!(round_trip(&mut existing).await.unwrap(), RESPONSE);

    proxy.clear();
    let mut works = false;
    let deadline = Instant::now() + HANG_GUARD;
    while !works && Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect(addr).await {
            works = matches!(tokio::time::timeout(HANG_GUARD, round_trip(&mut stream)).await, Ok(Ok(_)));
        }
        if !works {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert!(works, "port did not come back after clear()");
    proxy.stop().await;
}

#[tokio::test]
async fn unreachable_upstream_resets_client() {
    let closed = {
        let listener = TcpListener::bind(LOCALHOST_ANY_PORT).await.unwrap();
        listener.local_addr().unwrap()
    };
    let proxy = start(closed).await;
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(HANG_GUARD, client.read(&mut buf)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "got data: {read:?}");
    assert!(eventually(|| proxy.stats().upstream_failures == 1).await);
    proxy.stop().await;
}

#[tokio::test]
async fn stop_closes_connections_and_port() {
    let proxy = start(http_server().await).await;
    let addr = proxy.addr();
    let mut existing = TcpStream::connect(addr).await.unwrap();
    assert_eq!(round_trip(&mut existing).await.unwrap(), RESPONSE);
    let mut held = {
        proxy.set(Faults { blackhole: true, ..Faults::default() });
        TcpStream::connect(addr).await.unwrap()
    };
    assert!(eventually(|| proxy.stats().active == 2).await);

    tokio::time::timeout(HANG_GUARD, proxy.stop()).await.expect("stop() hung");
    let mut buf = [0u8; 16];
    for stream in [&mut existing, &mut held] {
        let read = tokio::time::timeout(HANG_GUARD, stream.read(&mut buf)).await.unwrap();
        assert!(matches!(read, Ok(0) | Err(_)), "got data: {read:?}");
    }
    let after = TcpStream::connect(addr).await;
    assert_eq!(after.unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn set_update_clear_round_trip() {
    let proxy = start(echo_server().await).await;
    assert_eq!(proxy.faults(), Faults::default());
    let faults = Faults {
        latency: Duration::from_millis(5),
        jitter: Duration::from_millis(1),
        drop_rate: 0.5,
        bandwidth_bytes_per_sec: Some(1),
        ..Faults::default()
    };
    proxy.set(faults.clone());
    assert_eq!(proxy.faults(), faults);
    proxy.update(|f| f.blackhole = true);
    assert!(proxy.faults().blackhole);
    assert_eq!(proxy.faults().drop_rate, 0.5);
    proxy.clear();
    assert_eq!(proxy.faults(), Faults::default());
    proxy.stop().await;
}

#[test]
fn delay_and_drop_helpers_stay_in_range() {
    let faults = Faults { latency: Duration::from_millis(10), jitter: Duration::from_millis(5), ..Faults::default() };
    for _ in 0..1000 {
        let d = one_way_delay(&faults);
        assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(15), "{d:?}");
    }
    assert!(!roll_drop(0.0));
    assert!(!roll_drop(-1.0));
    assert!(!roll_drop(f64::NAN));
    assert!(roll_drop(1.0));
    assert!(roll_drop(2.0));
}
