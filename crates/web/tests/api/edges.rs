//! What a client cannot do to the service from outside (issue 17): lead a reader off the site after signing in,
//! hold a connection with half a request or a body that never ends, take every connection, keep an event stream
//! after it left, load a page's scripts from elsewhere or frame it, or have a session cookie sent over plain HTTP
//! when the reader came over HTTPS.

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
use tuangou_web::security::{OTHER_POLICY, PAGE_POLICY};

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

/// The security headers on pages (HTML), on the API, on assets, on errors of each.
async fn every_answer_carries_the_security_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138620").await;
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(json!({}))).await;
    let home = app.client.get(format!("{}/", app.base)).send().await.unwrap().text().await.unwrap();
    let script = home.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("a script").to_owned();
    let paths = [
        "/".to_owned(),
        "/signin?next=/me".to_owned(),
        format!("/c/{campaign}"),
        "/c/nope".to_owned(),
        "/api/v1/campaigns".to_owned(),
        format!("/api/v1/campaigns/{campaign}"),
        "/api/v1/nope".to_owned(),
        "/api/v1/me".to_owned(),
        "/api/v1/openapi.json".to_owned(),
        "/healthz".to_owned(),
        "/metrics".to_owned(),
        script,
    ];
    let mut answers = Vec::new();
    for path in &paths {
        answers.push((path.clone(), app.client.get(format!("{}{path}", app.base)).send().await.unwrap()));
    }
    let bad = app.client.post(format!("{}/api/v1/sessions", app.base)).body("{").send().await.unwrap();
    answers.push(("POST /api/v1/sessions (bad JSON)".to_owned(), bad));
    let mut pages = 0;
    for (path, response) in answers {
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let html = header("content-type").starts_with("text/html");
        pages += usize::from(html);
        let policy = if html { PAGE_POLICY } else { OTHER_POLICY };
        assert_eq!(header("content-security-policy"), policy, "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
    }
    assert_eq!(pages, 4, "four of them are pages");
    app.finish().await;
}

/// The `Set-Cookie` headers of a sign-in by `phone`, with `X-Forwarded-Proto` when given.
async fn sign_in_cookies(app: &TestApp, phone: &str, forwarded_proto: Option<&str>) -> Vec<String> {
    let mut request = app
        .client
        .post(format!("{}/api/v1/sessions", app.base))
        .json(&json!({"phone": phone, "password": tuangou_testkit::server_password()}));
    if let Some(proto) = forwarded_proto {
        request = request.header("x-forwarded-proto", proto);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookies: Vec<String> =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert_eq!(cookies.len(), 2, "the session and the CSRF cookie: {cookies:?}");
    cookies
}

fn secure(cookie: &str) -> bool {
    cookie.split(';').any(|a| a.trim() == "Secure")
}

/// Cookies are `Secure` when the reader came over HTTPS: the public URL is `https://`, or a proxy we were told to
/// trust says so. A client's own `X-Forwarded-Proto` changes nothing otherwise.
async fn cookies_are_secure_behind_https(backend: Backend) {
    let plain = TestApp::spawn(backend).await;
    plain.customer("13800138630").await;
    for proto in [None, Some("https")] {
        let cookies = sign_in_cookies(&plain, "13800138630", proto).await;
        assert!(cookies.iter().all(|c| !secure(c)), "{proto:?}: {cookies:?}");
    }
    plain.finish().await;

    let settings = Settings { public_url: "https://tuangou.example".into(), ..Settings::default() };
    let https = TestApp::spawn_with(backend, settings).await;
    let customer = https.customer("13800138631").await;
    let cookies = sign_in_cookies(&https, "13800138631", None).await;
    assert!(cookies.iter().all(|c| secure(c) && c.matches("Secure").count() == 1), "{cookies:?}");
    let switched = https.client.get(format!("{}/?lang=en", https.base)).send().await.unwrap();
    let lang = switched.headers()["set-cookie"].to_str().unwrap();
    assert!(lang.starts_with("tuangou_lang=en") && secure(lang), "{lang}");
    let signed_out = https
        .client
        .delete(format!("{}/api/v1/sessions/current", https.base))
        .bearer_auth(&customer.token)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), StatusCode::NO_CONTENT);
    assert!(signed_out.headers().get_all("set-cookie").iter().all(|c| secure(c.to_str().unwrap())));
    https.finish().await;

    let http = HttpSettings { trust_forwarded_proto: true, ..HttpSettings::default() };
    let proxied = TestApp::spawn_with_http(backend, Settings::default(), http).await;
    proxied.customer("13800138632").await;
    for (proto, expected) in [
        (Some("https"), true),
        (Some("HTTPS"), true),
        (Some("https, http"), true),
        (Some("http"), false),
        (None, false),
    ] {
        let cookies = sign_in_cookies(&proxied, "13800138632", proto).await;
        assert!(cookies.iter().all(|c| secure(c) == expected), "{proto:?}: {cookies:?}");
    }
    proxied.finish().await;
}

on_both_backends!(
    next_never_leaves_the_site,
    slow_clients_are_cut_off,
    connections_beyond_the_limit_wait_their_turn,
    event_streams_keep_alive_and_end_with_their_reader,
    every_answer_carries_the_security_headers,
    cookies_are_secure_behind_https,
);
