//! What a client cannot do to the service from outside (issue 17): lead a reader off the site after signing in,
//! hold a connection with half a request or a body that never ends, take every connection, or keep an event stream
//! after it left.

use crate::common::{campaign_with, live_campaign_with};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tuangou_app::Settings;
use tuangou_testkit::{Backend, TestApp, on_both_backends};
use tuangou_web::HttpSettings;

/// The longest any step here may take; each is expected in well under a second.
const PATIENCE: Duration = Duration::from_secs(5);

/// An attribute's value as the browser reads it (askama escapes `&<>"'`, by name or number).
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let end = rest[at..].find(';').map(|e| at + e).expect("a whole entity");
        let entity = &rest[at + 1..end];
        out.push(match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            number => char::from_u32(number.trim_start_matches('#').parse().expect("a numeric entity")).unwrap(),
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Where the sign-in (or sign-up) form sends the reader afterwards, given `?next=` + `raw` (already encoded).
async fn next_of(app: &TestApp, page: &str, raw: &str) -> String {
    let response = app.client.get(format!("{}{page}?next={raw}", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{page}?next={raw}");
    let body = response.text().await.unwrap();
    let start = body.find("data-next=\"").expect("a sign-in form") + "data-next=\"".len();
    let end = start + body[start..].find('"').unwrap();
    unescape(&body[start..end])
}

async fn next_never_leaves_the_site(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases: &[(&str, &str)] = &[
        ("/me", "/me"),
        ("%2Fg%2Fabc%3Ffrom%3Dt1%26lang%3Den", "/g/abc?from=t1&lang=en"),
        ("%2Fc%2F1%23rules", "/c/1"),
        // A second encoding stays a path on this site; it is not decoded again.
        ("%252F%252Fevil.com", "/%2F%2Fevil.com"),
        ("/%252F%252Fevil.com", "/%2F%2Fevil.com"),
        // Tab, line feed and carriage return: browsers drop them, so `/\t/evil.com` is `//evil.com`.
        ("/%09/evil.com", "/"),
        ("/%0a/evil.com", "/"),
        ("/%0d/evil.com", "/"),
        ("/%0d%0a/evil.com", "/"),
        ("%09/%09/evil.com", "/"),
        ("/%09%09/evil.com", "/"),
        ("%20//evil.com", "/"),
        // Two slashes, however spelled: backslashes are slashes to a browser.
        ("//evil.com", "/"),
        ("%2F%2Fevil.com", "/"),
        ("///evil.com", "/"),
        ("/%5Cevil.com", "/"),
        ("%5C%5Cevil.com", "/"),
        ("/%5C/evil.com", "/"),
        ("%5C/evil.com", "/"),
        // A path that collapses to `//`.
        ("/.//evil.com", "/"),
        ("/x/..//evil.com", "/"),
        ("/%2e//evil.com", "/"),
        // Other schemes and absolute addresses.
        ("javascript:alert(1)", "/"),
        ("JavaScript%3Aalert(document.cookie)", "/"),
        ("java%09script:alert(1)", "/"),
        ("%20javascript:alert(1)", "/"),
        ("data:text/html,%3Cscript%3Ealert(1)%3C/script%3E", "/"),
        ("https://evil.com/", "/"),
        ("https%3A%2F%2Fevil.com%2Fme", "/"),
        ("HTTP://EVIL.COM", "/"),
        ("https:evil.com", "/"),
        ("http://tuangou.invalid@evil.com/", "/"),
        ("", "/"),
    ];
    for (raw, expected) in cases {
        assert_eq!(next_of(&app, "/signin", raw).await, *expected, "/signin?next={raw}");
    }
    for (raw, expected) in &cases[..12] {
        assert_eq!(next_of(&app, "/signup", raw).await, *expected, "/signup?next={raw}");
    }
    // A signed-out reader is sent to sign in and comes back to the very page, query included.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = client.get(format!("{}/me?lang=en&tab=vouchers", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, "/signin?next=%2Fme%3Ftab%3Dvouchers");
    assert_eq!(next_of(&app, "/signin", location.trim_start_matches("/signin?next=")).await, "/me?tab=vouchers");
    app.finish().await;
}

/// Reads until the server closes the connection (or resets it); panics after [`PATIENCE`].
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let read = async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buffer[..n]),
            }
        }
    };
    if tokio::time::timeout(PATIENCE, read).await.is_err() {
        panic!("the server kept the connection open; it sent:\n{}", String::from_utf8_lossy(&seen));
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Reads one answer (headers and a `Content-Length` body) off a kept-alive connection.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let read = async {
        let mut buffer = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&seen).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if seen.len() >= end + 4 + length {
                    return text;
                }
            }
            let n = stream.read(&mut buffer).await.expect("the connection stays open");
            assert!(n > 0, "the server closed the connection mid-answer");
            seen.extend_from_slice(&buffer[..n]);
        }
    };
    tokio::time::timeout(PATIENCE, read).await.expect("an answer in time")
}

fn address(app: &TestApp) -> &str {
    app.base.trim_start_matches("http://")
}

/// Half a request's headers, a body that stops short, a kept-alive connection left idle: each is closed within
/// its timeout (half a second here), and the service goes on answering everyone else.
async fn slow_clients_are_cut_off(backend: Backend) {
    let timeout = Duration::from_millis(500);
    let http = HttpSettings { header_timeout: timeout, body_timeout: timeout, ..HttpSettings::default() };
    let app = TestApp::spawn_with_http(backend, Settings::default(), http).await;

    let mut half_headers = TcpStream::connect(address(&app)).await.unwrap();
    half_headers.write_all(b"GET / HTTP/1.1\r\nHost: tuangou\r\nAccept: text/html\r\n").await.unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut half_headers).await;
    let waited = started.elapsed();
    assert!(waited >= timeout - Duration::from_millis(50), "closed after {waited:?}, before its time");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");

    let mut short_body = TcpStream::connect(address(&app)).await.unwrap();
    short_body
        .write_all(
            b"POST /api/v1/sessions HTTP/1.1\r\nHost: tuangou\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"phone\": \"1380",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut short_body).await;
    let waited = started.elapsed();
    assert!(waited >= timeout - Duration::from_millis(50), "answered after {waited:?}, before its time");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json") && answer.contains("\"request_timeout\""), "{answer}");

    let mut idle = TcpStream::connect(address(&app)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: tuangou\r\n\r\n").await.unwrap();
    assert!(read_answer(&mut idle).await.starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    assert_eq!(read_until_closed(&mut idle).await, "", "an idle connection is closed without a word");
    assert!(started.elapsed() >= timeout - Duration::from_millis(50));

    // Meanwhile and afterwards, everyone else is answered.
    let (status, _) = app.get("/api/v1/campaigns", None).await;
    assert_eq!(status, StatusCode::OK);
    app.finish().await;
}

/// Everything this test binary logs at WARN and above, from the first call on. (Nothing else in the binary installs
/// a subscriber; if something did, the connection-limit test would find no line and fail, not pass.)
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// With room for two connections, a third waits (in the listen backlog) until one of the two closes, and the
/// limit is logged with the server's address.
async fn connections_beyond_the_limit_wait_their_turn(backend: Backend) {
    let logs = captured_logs();
    let http = HttpSettings { max_connections: 2, ..HttpSettings::default() };
    let app = TestApp::spawn_with_http(backend, Settings::default(), http).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut connection = TcpStream::connect(address(&app)).await.unwrap();
        connection.write_all(b"GET /healthz HTTP/1.1\r\nHost: tuangou\r\n\r\n").await.unwrap();
        assert!(read_answer(&mut connection).await.starts_with("HTTP/1.1 200"));
        held.push(connection);
    }
    let line = format!("address={}", address(&app));
    let logged = async {
        loop {
            let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
            if let Some(found) = text.lines().find(|l| l.contains("connection limit reached") && l.contains(&line)) {
                return found.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let found = tokio::time::timeout(PATIENCE, logged).await.expect("the limit is logged");
    assert!(found.contains("WARN") && found.contains("max_connections=2"), "{found}");

    let third = tokio::spawn({
        let url = format!("{}/healthz", app.base);
        async move { reqwest::Client::new().get(url).send().await.map(|r| r.status()) }
    });
    // Not answered while both connections are held...
    let mut third = std::pin::pin!(third);
    assert!(tokio::time::timeout(Duration::from_millis(500), &mut third).await.is_err(), "a third was served");
    // ...and answered as soon as one of them closes.
    drop(held.remove(0));
    let status = tokio::time::timeout(PATIENCE, third).await.expect("served once a connection closed");
    assert_eq!(status.unwrap().unwrap(), StatusCode::OK);
    drop(held);
    app.finish().await;
}

/// An event stream says something at least every keep-alive interval (a tenth of a second here) even when nothing
/// happens, and ends as soon as its reader is gone.
async fn event_streams_keep_alive_and_end_with_their_reader(backend: Backend) {
    let http = HttpSettings { event_keep_alive: Duration::from_millis(100), ..HttpSettings::default() };
    let app = TestApp::spawn_with_http(backend, Settings::default(), http).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138610").await;
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(json!({}))).await;
    let before = app.app.watchers();
    let response = app.client.get(format!("{}/api/v1/campaigns/{campaign}/events", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.bytes_stream();
    let mut seen = String::new();
    let read = async {
        // Three keep-alive comments (`:` alone) after the opening one.
        while !seen.contains(": connected") || seen.matches("\n:\n").count() < 3 {
            let chunk = stream.next().await.expect("the stream stays open").expect("a chunk");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    if tokio::time::timeout(PATIENCE, read).await.is_err() {
        panic!("no keep-alives; the stream said:\n{seen:?}");
    }
    assert_eq!(app.app.watchers(), before + 1);
    drop(stream);
    let ended = async {
        while app.app.watchers() != before {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(PATIENCE, ended).await.expect("the stream ends when its reader leaves");
    app.finish().await;
}

on_both_backends!(
    next_never_leaves_the_site,
    slow_clients_are_cut_off,
    connections_beyond_the_limit_wait_their_turn,
    event_streams_keep_alive_and_end_with_their_reader,
);
