//! A real browser for the pages' end-to-end tests: Debian's headless Chromium driven over WebDriver
//! (`chromedriver`, started here on a free port), at a phone's size (390×844) and in Simplified Chinese.
//! Screenshots go under `target/screenshots/`.
//!
//! Waits poll the page until a condition holds or a deadline passes; no test sleeps to pass.

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(20);

/// One WebDriver server; each [`Browser`] is a session of it.
pub struct Driver {
    process: Child,
    url: String,
}

impl Driver {
    /// Starts `chromedriver` (from `TUANGOU_CHROMEDRIVER`, else on the PATH) and waits until it answers.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("port").port();
        let program = std::env::var("TUANGOU_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let process = Command::new(&program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} ({e}): install chromium and chromium-driver"));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        let client = reqwest::Client::new();
        loop {
            if client.get(format!("{url}/status")).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer on {url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver { process, url }
    }

    /// A new browser window: its own empty profile, 390×844, Simplified Chinese.
    pub async fn browser(&self, base: &str) -> Browser {
        self.browser_sized(base, 390, 844).await
    }

    /// A new browser window on a phone screen of `width`×`height` CSS pixels.
    pub async fn browser_sized(&self, base: &str, width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let chromium = std::env::var("TUANGOU_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            format!("--window-size={width},{height}"),
            "--force-device-scale-factor=1".into(),
            "--lang=zh-CN".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": args,
                "prefs": {"intl.accept_languages": "zh-CN,zh"},
                // A phone's viewport exactly (a headless window cannot be narrower than 500 px).
                "mobileEmulation": {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0, "touch": true}},
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session (is chromium installed?)");
        Browser { client, base: base.trim_end_matches('/').to_owned(), _profile: profile }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// One browser window on the service under test.
pub struct Browser {
    pub client: Client,
    base: String,
    _profile: tempfile::TempDir,
}

/// Where screenshots are written: `target/screenshots/` of the workspace (or of `CARGO_TARGET_DIR`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots")
}

impl Browser {
    /// Opens a path of the service (or a full URL).
    pub async fn open(&self, path: &str) {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        self.client.goto(&url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The element, once it is on the page.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    /// Types into a field (after clearing it).
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap_or_else(|e| panic!("clear `{css}`: {e}"));
        field.send_keys(text).await.unwrap_or_else(|e| panic!("type into `{css}`: {e}"));
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap_or_else(|e| panic!("text of `{css}`: {e}"))
    }

    /// Waits until the element's text contains `expected`; returns the text.
    pub async fn wait_for_text(&self, css: &str, expected: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(expected) {
                return text;
            }
            assert!(Instant::now() < deadline, "`{css}` never contained {expected:?}; last text: {text:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the browser is at a path starting with `prefix`; returns the path.
    pub async fn wait_for_path(&self, prefix: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let path = self.path().await;
            if path.starts_with(prefix) {
                return path;
            }
            assert!(Instant::now() < deadline, "never reached {prefix}; at {path}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The current path and query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Runs a script in the page (`arguments[i]` are `args`) and returns its value; a returned promise is awaited.
    pub async fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    /// Checks what every page owes a phone user: nothing wider than the screen (no sideways scrolling), and a
    /// label (or an accessible name) on every control.
    pub async fn check_page_basics(&self, name: &str) {
        let report = self
            .run(
                "const wide = document.documentElement.scrollWidth - window.innerWidth;
                 const unlabelled = Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a[href]'))
                   .filter(el => el.offsetParent !== null)
                   .filter(el => !((el.labels && el.labels.length) || el.getAttribute('aria-label') || el.textContent.trim()
                                  || el.getAttribute('title') || el.querySelector('img[alt]')))
                   .map(el => el.outerHTML.slice(0, 80));
                 return {wide, unlabelled};",
                vec![],
            )
            .await;
        assert!(report["wide"].as_i64().unwrap_or(1) <= 0, "{name}: wider than the screen by {} px", report["wide"]);
        assert_eq!(report["unlabelled"], json!([]), "{name}: controls without a label");
        assert_eq!(self.policy_violations().await, json!([]), "{name}: the Content-Security-Policy blocked something");
    }

    /// What the page's Content-Security-Policy blocked since it loaded (directive, and what was blocked), as the
    /// browser reports it.
    pub async fn policy_violations(&self) -> Value {
        self.run(
            "return new Promise((resolve) => {
               const seen = [];
               const note = (reports) => reports.forEach((r) =>
                 seen.push(r.body.effectiveDirective + ' ' + (r.body.blockedURL || '') + ' ' + (r.body.sample || '')));
               const observer = new ReportingObserver(note, { types: ['csp-violation'], buffered: true });
               observer.observe();
               setTimeout(() => { note(observer.takeRecords()); observer.disconnect(); resolve(seen); }, 100);
             });",
            vec![],
        )
        .await
    }

    /// Checks the page's basics ([`Browser::check_page_basics`]), then saves a PNG of the window as
    /// `target/screenshots/{name}.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        self.check_page_basics(name).await;
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Signs in through the sign-in page and waits to land on `then`.
    pub async fn sign_in(&self, phone: &str, password: &str, then: &str) {
        let query = format!("/signin?next={}", then.replace('/', "%2F").replace('?', "%3F").replace('=', "%3D"));
        self.open(&query).await;
        self.fill("#phone", phone).await;
        self.fill("#password", password).await;
        self.click("form[data-account] [type=submit]").await;
        self.wait_for_path(then.split('?').next().unwrap_or(then)).await;
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
