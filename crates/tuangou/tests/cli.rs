//! The `tuangou` binary as a user runs it: each test starts the real executable in a temporary working directory
//! of its own, with no `TUANGOU_*` variables inherited, and reads its exit code, standard output and errors.
//!
//! Commands that touch the store run on both backends (`sqlite::NAME` and `postgres::NAME`); `serve --demo` runs
//! on the default embedded database only, as a newcomer runs it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tuangou_testkit::{Backend, TestDb, on_both_backends};

mod common;
use common::{shown, tuangou};

/// Runs the binary to completion with `args`.
fn run(dir: &Path, args: &[&str]) -> Output {
    tuangou(dir).args(args).stdin(Stdio::null()).output().expect("run the tuangou binary")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration

#[test]
fn migrate_without_configuration_creates_tuangou_db_in_the_working_directory() {
    let dir = tempdir();
    let output = run(dir.path(), &["migrate"]);
    assert!(output.status.success(), "{}", shown(&output));
    assert!(stdout(&output).contains("schema is up to date"), "{}", shown(&output));
    let db = dir.path().join("tuangou.db");
    assert!(db.is_file(), "expected {} to exist; folder holds {:?}", db.display(), list(dir.path()));
    assert!(std::fs::metadata(&db).unwrap().len() > 0, "tuangou.db is empty");

    // Migrating again is a no-op, and succeeds.
    let again = run(dir.path(), &["migrate"]);
    assert!(again.status.success(), "{}", shown(&again));
}

#[test]
fn an_unknown_database_scheme_is_refused_with_a_clear_message() {
    let dir = tempdir();
    let output = run(dir.path(), &["migrate", "--database", "mysql://x/y"]);
    assert!(!output.status.success(), "{}", shown(&output));
    assert!(stderr(&output).contains("unsupported database URL scheme"), "{}", shown(&output));
    assert!(list(dir.path()).is_empty(), "nothing should be created: {:?}", list(dir.path()));
}

fn list(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read the folder")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Commands that touch the store, on both backends

/// The operator id from `operator ID (PHONE)`.
fn operator_id(output: &Output) -> String {
    let out = stdout(output);
    let line = out.lines().find(|l| l.starts_with("operator ")).unwrap_or_else(|| panic!("{}", shown(output)));
    let mut words = line.split_whitespace();
    let id = words.nth(1).unwrap_or_else(|| panic!("no id in {line:?}")).to_owned();
    assert_eq!(words.next(), Some("(13800000000)"), "{line:?}");
    id
}

async fn migrate_with_database_url(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempdir();
    let output = run(dir.path(), &["migrate", "--database", &db.url]);
    assert!(output.status.success(), "{}", shown(&output));
    assert!(stdout(&output).contains("schema is up to date"), "{}", shown(&output));
    // The schema is there: the store reads its tables.
    let fingerprint = db.fingerprint().await;
    assert!(fingerprint.contains("ledger_postings"), "{fingerprint}");
    assert!(!dir.path().join("tuangou.db").exists(), "--database was ignored: the default database was created");
}

async fn admin_create_is_idempotent(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempdir();
    let args = ["admin", "create", "--phone", "13800000000", "--password", "secret-pass", "--database", &db.url];
    let first = run(dir.path(), &args);
    assert!(first.status.success(), "{}", shown(&first));
    let second = run(dir.path(), &args);
    assert!(second.status.success(), "{}", shown(&second));
    let id = operator_id(&first);
    assert!(!id.is_empty());
    assert_eq!(id, operator_id(&second), "the same phone gives the same operator");
    assert!(!dir.path().join("tuangou.db").exists(), "--database was ignored: the default database was created");

    // A refused account (a phone that is no phone) fails with a message rather than creating anything.
    let bad =
        run(dir.path(), &["admin", "create", "--phone", "12", "--password", "secret-pass", "--database", &db.url]);
    assert!(!bad.status.success(), "{}", shown(&bad));
    assert!(!stderr(&bad).trim().is_empty(), "{}", shown(&bad));
}

async fn check_reports_a_forged_ledger_entry(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempdir();
    let fresh = run(dir.path(), &["check", "--database", &db.url]);
    assert_eq!(fresh.status.code(), Some(0), "{}", shown(&fresh));
    assert!(stdout(&fresh).contains("all invariants hold"), "{}", shown(&fresh));

    db.execute("INSERT INTO ledger_entries (id, cause, reference, created_at) VALUES ('forged','credit',NULL,0)").await;
    db.execute(
        "INSERT INTO ledger_postings (entry_id, account, unit, amount) VALUES ('forged','platform:commission','fen',7)",
    )
    .await;

    let broken = run(dir.path(), &["check", "--database", &db.url]);
    assert_eq!(broken.status.code(), Some(1), "{}", shown(&broken));
    let out = stdout(&broken);
    assert!(!out.contains("all invariants hold"), "{}", shown(&broken));
    assert!(
        out.lines().any(|l| l.starts_with("invariant ") && l.contains("forged")),
        "expected a violation naming the forged entry\n{}",
        shown(&broken)
    );
}

/// A group drawn by the service, as `GET /api/v1/groups/{id}` returns it, verifies; the same record with one
/// winner changed does not.
async fn verify_draw_checks_a_record_from_the_api(backend: Backend) {
    use serde_json::json;
    let app = tuangou_testkit::TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138090").await;
    let (_, merchant) = app
        .post(
            "/api/v1/merchants",
            Some(&owner.token),
            json!({"name": "茶馆", "category": "茶", "address": "宽窄巷子",
            "latitude": 30.67, "longitude": 104.05, "phone": "02887775678"}),
        )
        .await;
    let merchant = merchant["id"].as_str().unwrap();
    app.credit(&operator, json!({"merchant_id": merchant}), 100_000).await;
    let (_, campaign) = app
        .post(
            &format!("/api/v1/merchants/{merchant}/campaigns"),
            Some(&owner.token),
            json!({
            "title": "盖碗茶", "product_type": "茶", "quantity": 10, "price": 500, "original_price": 3_000,
            "group_size": 3, "winners_per_group": 1, "reward": {"kind": "points", "amount": 20},
            "commission_bps": 300, "group_ttl_seconds": 600, "draw_mode": "instant", "voucher_valid_days": 7}),
        )
        .await;
    let campaign = campaign["id"].as_str().unwrap();
    app.post(&format!("/api/v1/campaigns/{campaign}/publish"), Some(&owner.token), json!({})).await;
    let people = app.customers(&operator, 3, 1_000).await;
    let mut record = serde_json::Value::Null;
    for person in &people {
        let (_, joined) = app.post(&format!("/api/v1/campaigns/{campaign}/join"), Some(&person.token), json!({})).await;
        record = joined["group"].clone();
    }
    let (_, fetched) = app.get(&format!("/api/v1/groups/{}", record["id"].as_str().unwrap()), None).await;
    assert_eq!(fetched["status"], "drawn");

    let dir = tempdir();
    std::fs::write(dir.path().join("group.json"), fetched.to_string()).unwrap();
    let verified = run(dir.path(), &["verify-draw", "group.json"]);
    assert!(verified.status.success(), "{}", shown(&verified));
    assert!(stdout(&verified).contains("verified"));

    let mut tampered = fetched.clone();
    let winner = tampered["draw"]["winners"][0].as_i64().unwrap();
    tampered["draw"]["winners"][0] = json!(winner % 3 + 1);
    std::fs::write(dir.path().join("tampered.json"), tampered.to_string()).unwrap();
    let rejected = run(dir.path(), &["verify-draw", "tampered.json"]);
    assert_eq!(rejected.status.code(), Some(1), "{}", shown(&rejected));
    assert!(stdout(&rejected).contains("mismatch"));
    app.finish().await;
}

/// `reconcile` over the sandbox's books in the same database, with no server: exit 0 when the day matches, 1 with
/// the mismatches listed, 2 for an unknown provider, a provider this configuration does not offer, or a bad date.
async fn reconcile_exits_by_the_result(backend: Backend) {
    use tuangou_app::payments::port::PayerHints;
    use tuangou_app::payments::sandbox::{Faults, SandboxKey, SandboxSettings};
    use tuangou_app::payments::{PaymentOrder, PaymentSettings};
    use tuangou_domain::time::{ChinaDay, Millis};
    let sandbox = SandboxSettings { key: SandboxKey::from_bytes([42; 32]), faults: Faults::default() };
    let settings = tuangou_app::Settings {
        payments: PaymentSettings { sandbox: Some(sandbox), partner_mode: false, ..PaymentSettings::default() },
        ..Default::default()
    };
    let app = tuangou_testkit::TestApp::spawn_with(backend, settings).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let order = PaymentOrder {
        user: tuangou_domain::ids::UserId::from_trusted(&customer.id),
        provider: "sandbox".into(),
        amount: tuangou_domain::money::Fen::from_stored(1_990).unwrap(),
        description: "双人火锅套餐".into(),
        expires_at: app.app.clock().now().plus_seconds(300),
        membership: None,
        payer: PayerHints::default(),
    };
    let payment = app.app.open_payment(order).await.unwrap();
    let (status, _) = app.post(&format!("/sandbox/payments/{}/pay", payment.id), None, serde_json::json!({})).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.app.store().payment_events_of(&payment.id).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the sandbox's notification never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = app.app.clock().now();
    app.app.store().apply_next_payment_event(now, move |_| Ok(now)).await.unwrap().unwrap();
    let paid_at = app.app.payment(&payment.id).await.unwrap().paid_at.unwrap();
    let date = ChinaDay::of(Millis(paid_at)).to_string();

    let dir = tempdir();
    let reconcile = |provider: &str, date: &str, sandbox_on: bool| {
        let mut command = tuangou(dir.path());
        command.args(["reconcile", "--provider", provider, "--date", date, "--database", &app.db.url]);
        if sandbox_on {
            command.env("TUANGOU_PAYMENTS_SANDBOX", "true");
        }
        command.stdin(Stdio::null()).output().expect("run the tuangou binary")
    };
    let matched = reconcile("sandbox", &date, true);
    assert_eq!(matched.status.code(), Some(0), "{}", shown(&matched));
    assert!(
        stdout(&matched).contains(&format!("sandbox {date}: matched (lines: 1 on the bill, 1 of ours, 1 matched)")),
        "{}",
        shown(&matched)
    );

    app.db.execute(&format!("UPDATE payments SET paid_amount = 1000 WHERE id = '{}'", payment.id)).await;
    let differs = reconcile("sandbox", &date, true);
    assert_eq!(differs.status.code(), Some(1), "{}", shown(&differs));
    let out = stdout(&differs);
    assert!(out.contains(&format!("sandbox {date}: mismatched")), "{}", shown(&differs));
    assert!(
        out.lines().any(|l| l.starts_with(&format!("amount differs: payment {} — ours: 10.00 yuan", payment.id))
            && l.contains("theirs: 19.90 yuan")),
        "{}",
        shown(&differs)
    );
    // The result is kept: the latest is the day's.
    let latest = app.app.reconciliations_of_day("sandbox", ChinaDay::parse(&date).unwrap()).await.unwrap();
    assert_eq!(latest.iter().map(|r| r.matched).collect::<Vec<_>>(), [false, true]);

    for (provider, date, sandbox_on, says) in [
        ("paypal", date.as_str(), true, "unknown provider \"paypal\""),
        ("sandbox", date.as_str(), false, "offers none"),
        ("sandbox", "2025-13-01", true, "is not a date"),
        ("sandbox", "yesterday", true, "is not a date"),
        ("sandbox", "2999-01-01", true, "has not begun"),
    ] {
        let refused = reconcile(provider, date, sandbox_on);
        assert_eq!(refused.status.code(), Some(2), "{provider} {date}: {}", shown(&refused));
        assert!(stderr(&refused).contains(says), "{provider} {date}: {}", shown(&refused));
    }
    let mut app = app;
    app.stop().await;
}

on_both_backends!(
    migrate_with_database_url,
    admin_create_is_idempotent,
    check_reports_a_forged_ledger_entry,
    verify_draw_checks_a_record_from_the_api,
    slow_clients_do_not_lock_everyone_out,
    reconcile_exits_by_the_result,
);

// ---------------------------------------------------------------------------------------------------------------
// verify-draw

/// The vendored records: `(expect, why, record)`.
fn draw_records() -> Vec<(String, String, serde_json::Value)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../domain/tests/draw-vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let vectors: serde_json::Value = serde_json::from_str(&text).expect("draw-vectors.json is JSON");
    let records = vectors["records"].as_array().expect("draw-vectors.json has records");
    records
        .iter()
        .map(|r| {
            let expect = r["expect"].as_str().expect("each record has an expect").to_owned();
            let why = r["why"].as_str().unwrap_or("").to_owned();
            (expect, why, r["record"].clone())
        })
        .collect()
}

#[test]
fn verify_draw_accepts_the_verified_records_and_rejects_the_others() {
    let records = draw_records();
    assert!(records.iter().any(|(e, _, _)| e == "verified"), "no verified records to test");
    assert!(records.iter().any(|(e, _, _)| e == "rejected"), "no rejected records to test");
    let dir = tempdir();
    for (i, (expect, why, record)) in records.iter().enumerate() {
        let file = dir.path().join(format!("record-{i}.json"));
        std::fs::write(&file, serde_json::to_string_pretty(record).unwrap()).unwrap();
        let output = run(dir.path(), &["verify-draw", file.to_str().unwrap()]);
        let context = format!("record {i} ({expect} {why})\n{}", shown(&output));
        match expect.as_str() {
            "verified" => {
                assert_eq!(output.status.code(), Some(0), "{context}");
                assert!(stdout(&output).contains("verified"), "{context}");
            }
            "rejected" => {
                assert!(!output.status.success(), "{context}");
                assert!(stdout(&output).contains("mismatch"), "{context}");
            }
            other => panic!("unknown expect {other:?} in record {i}"),
        }
    }
    assert!(!dir.path().join("tuangou.db").exists(), "verify-draw should not need a database");
}

/// `verify-draw -` with `input` on standard input.
fn verify_from_stdin(dir: &Path, input: &str) -> Output {
    let mut child = tuangou(dir)
        .args(["verify-draw", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the tuangou binary");
    child.stdin.take().unwrap().write_all(input.as_bytes()).expect("write standard input");
    child.wait_with_output().expect("wait for the tuangou binary")
}

#[test]
fn verify_draw_reads_standard_input_for_a_dash() {
    let records = draw_records();
    let dir = tempdir();
    let (_, _, verified) = records.iter().find(|(e, _, _)| e == "verified").expect("a verified record");
    let output = verify_from_stdin(dir.path(), &verified.to_string());
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    assert!(stdout(&output).contains("verified"), "{}", shown(&output));

    let (_, why, rejected) = records.iter().find(|(e, _, _)| e == "rejected").expect("a rejected record");
    let output = verify_from_stdin(dir.path(), &rejected.to_string());
    assert!(!output.status.success(), "{why}\n{}", shown(&output));
}

#[test]
fn verify_draw_refuses_a_file_that_is_not_json() {
    let dir = tempdir();
    let file = dir.path().join("garbage.json");
    std::fs::write(&file, "this is not json {").unwrap();
    let output = run(dir.path(), &["verify-draw", file.to_str().unwrap()]);
    assert!(!output.status.success(), "{}", shown(&output));
    assert!(stderr(&output).contains("not a group record"), "{}", shown(&output));

    let missing = run(dir.path(), &["verify-draw", dir.path().join("missing.json").to_str().unwrap()]);
    assert!(!missing.status.success(), "{}", shown(&missing));
    assert!(stderr(&missing).contains("missing.json"), "{}", shown(&missing));
}

// ---------------------------------------------------------------------------------------------------------------
// serve --demo (SQLite: the default embedded database, as a newcomer runs it)

/// Kills the server when the test ends, whether it passed or not.
struct Server {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    fn start(dir: &Path, args: &[&str]) -> Self {
        let mut child = tuangou(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the tuangou binary");
        // Both pipes are drained by threads of their own so that the server never blocks on a full pipe.
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Self { child, stdout, stderr }
    }

    fn collected(receiver: &mpsc::Receiver<String>) -> String {
        receiver.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines_of(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

/// A plain HTTP/1.0 GET: `(status, body)`.
fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response.as_str(), ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:?}")))?;
    Ok((status, body.to_owned()))
}

/// A plain HTTP/1.0 GET of binary content: `(status, head, body)`.
fn get_bytes(port: u16, path: &str) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(response.len());
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, head, response.get(split + 4..).unwrap_or_default().to_vec()))
}

#[test]
fn sqlite_serve_demo_answers_health_and_lists_the_demo_campaigns() {
    let dir = tempdir();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = Server::start(dir.path(), &["serve", "--listen", &listen, "--demo"]);

    // Poll until the server answers, for at most 15 s; stop early if it exits.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.child.try_wait().expect("poll the server") {
            panic!(
                "the server exited ({status}) before answering /healthz\n--- stdout ---\n{}\n--- stderr ---\n{}",
                Server::collected(&server.stdout),
                Server::collected(&server.stderr)
            );
        }
        let last_error = match get(port, "/healthz") {
            Ok((200, _)) => break,
            Ok((status, body)) => format!("status {status}: {body}"),
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "the server did not answer GET /healthz on {listen} within 15 s (last: {last_error})\n--- stderr ---\n{}",
            Server::collected(&server.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let (status, body) = get(port, "/api/v1/campaigns").expect("GET /api/v1/campaigns");
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let items = page["items"].as_array().unwrap_or_else(|| panic!("no items: {body}"));
    assert_eq!(items.len(), 19, "the demo city lists 19 live campaigns (a 20th was ended): {body}");
    // Groups in every state: open ones, full ones waiting for their scheduled draw, drawn ones.
    let (mut open, mut full) = (0, 0);
    for item in items {
        let (status, detail) = get(port, &format!("/api/v1/campaigns/{}", item["id"].as_str().unwrap())).unwrap();
        assert_eq!(status, 200, "{detail}");
        let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
        open += detail["groups_open"].as_i64().unwrap();
        full += detail["groups_full"].as_i64().unwrap();
    }
    assert_eq!((open, full), (6, 3), "six open groups and three full scheduled ones");

    // Every store and deal gets a photo drawn at seeding (nothing downloaded), uploaded beside the server: 10 stores
    // and 20 deals, each re-encoded into the media directory beside the database and served from /media.
    let media = dir.path().join("tuangou-media");
    let photos = || {
        std::fs::read_dir(&media)
            .map_or(0, |d| d.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "jpg")).count())
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while photos() < 30 && Instant::now() < deadline && server.child.try_wait().ok().flatten().is_none() {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(photos(), 30, "ten stores and twenty deals with a photo each\n{}", Server::collected(&server.stderr));
    let (_, body) = get(port, "/api/v1/campaigns").expect("GET /api/v1/campaigns");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let first = page["items"][0]["photo_url"].as_str().unwrap_or_else(|| panic!("no photo_url: {body}")).to_owned();
    assert!(page["items"].as_array().unwrap().iter().all(|i| i["photo_url"].is_string()), "{body}");
    let (status, head, jpeg) = get_bytes(port, &first).expect("GET a demo photo");
    assert_eq!(status, 200, "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: image/jpeg"), "{head}");
    assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF], "a JPEG");

    // The demo offers the sandbox payment provider: its bill answers (it is 404 when the sandbox is off), and
    // its signing key was made beside the secret.
    let (status, bill) = get(port, "/sandbox/bills/2025-11-27").expect("GET the sandbox's bill");
    assert_eq!(status, 200, "{bill}");
    assert!(bill.starts_with("交易时间,"), "{bill}");
    assert!(dir.path().join("tuangou.sandbox.key").is_file(), "no sandbox key: {:?}", list(dir.path()));

    // The accounts were printed before the server started listening; the reader thread may still be passing
    // them on, so wait (bounded) for the last line expected.
    let mut printed = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !printed.contains("tuangou is serving") {
        match server.stdout.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                printed.push_str(&line);
                printed.push('\n');
            }
            Err(_) => break,
        }
    }
    for expected in ["demo city", "13800000000", "13800000001", "13900000001", "13900000002", "tuangou is serving"] {
        assert!(printed.contains(expected), "stdout lacks {expected:?}:\n{printed}");
    }
    drop(server);

    // The demo was seeded on the default database in the working directory, and its ledger balances.
    assert!(dir.path().join("tuangou.db").is_file(), "the demo did not use ./tuangou.db: {:?}", list(dir.path()));
    let check = run(dir.path(), &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", shown(&check));
    assert!(stdout(&check).contains("all invariants hold"), "{}", shown(&check));
}

// ---------------------------------------------------------------------------------------------------------------
// serve under a small file-descriptor budget (issue 17: 260 slow clients used to lock everyone out of 256)

/// The open-file limit the server runs under here: what it needs idle, and room for a few dozen connections.
const FILE_LIMIT: u32 = 96;

/// `tuangou serve` on `database`, run through `prlimit` so that it may hold only [`FILE_LIMIT`] files, with a one
/// second header timeout.
fn serve_with_few_files(dir: &Path, listen: &str, database: &str) -> Server {
    let mut command = Command::new("prlimit");
    command.current_dir(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TUANGOU_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .arg(format!("--nofile={FILE_LIMIT}:{FILE_LIMIT}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_tuangou"))
        .args(["serve", "--listen", listen, "--database", database])
        .env("TUANGOU_HEADER_TIMEOUT_SECONDS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the tuangou binary under prlimit (util-linux)");
    let stdout = lines_of(child.stdout.take().unwrap());
    let stderr = lines_of(child.stderr.take().unwrap());
    Server { child, stdout, stderr }
}

/// Polls `GET /healthz` until it answers 200; returns how long that took. Panics after `within`.
fn healthy_within(server: &mut Server, port: u16, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().expect("poll the server") {
            panic!("the server exited ({status})\n--- stderr ---\n{}", Server::collected(&server.stderr));
        }
        let last = match get(port, "/healthz") {
            Ok((200, _)) => return started.elapsed(),
            Ok((status, body)) => format!("status {status}: {body}"),
            Err(e) => e.to_string(),
        };
        assert!(
            started.elapsed() < within,
            "no answer to GET /healthz within {within:?} (last: {last})\n--- stderr ---\n{}",
            Server::collected(&server.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Twice as many clients as the server has files for each send half a request's headers and wait. The server
/// runs out of file descriptors: it says so, waits a second before accepting again (rather than spinning), closes
/// the slow clients when their header time is up, and answers everyone else within seconds.
async fn slow_clients_do_not_lock_everyone_out(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempdir();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = serve_with_few_files(dir.path(), &listen, &db.url);
    healthy_within(&mut server, port, Duration::from_secs(15));

    let slow: Vec<TcpStream> = (0..2 * FILE_LIMIT)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect (the listen backlog holds it)");
            stream.write_all(b"GET / HTTP/1.1\r\nHost: tuangou\r\n").expect("half a request");
            stream
        })
        .collect();
    let waited = healthy_within(&mut server, port, Duration::from_secs(20));
    drop(slow);

    let logs = Server::collected(&server.stderr);
    let accept_errors = logs.lines().filter(|l| l.contains("accept error")).count();
    assert!(accept_errors >= 1, "the server never ran out of files: the test proves nothing\n{logs}");
    assert!(logs.contains("Too many open files"), "{logs}");
    // At most one accept error a second (plus the first): never a spin.
    assert!(
        accept_errors as u64 <= waited.as_secs() + 2,
        "{accept_errors} accept errors in {waited:?}: the server spins\n{logs}"
    );
    // Once the slow clients are gone, the service answers at once, database included.
    let (status, body) = get(port, "/api/v1/campaigns").expect("GET /api/v1/campaigns");
    assert_eq!(status, 200, "{body}");
}
