//! What a client cannot do to the service from outside (issue 17): lead a reader off the site after signing in.

use reqwest::StatusCode;
use tuangou_testkit::{Backend, TestApp, on_both_backends};

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

on_both_backends!(next_never_leaves_the_site);
