use crate::common::code;
use reqwest::StatusCode;
use serde_json::json;
use tuangou_testkit::{Backend, TestApp, on_both_backends};

async fn sign_up_sign_in_and_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = app
        .post("/api/v1/users", None, json!({"phone": "+86 138-0013-8000", "password": "long enough", "name": "小王"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["phone"], "13800138000", "mainland numbers are stored as 11 digits");
    assert!(body.get("password").is_none() && body.get("password_hash").is_none());

    let (status, body) =
        app.post("/api/v1/users", None, json!({"phone": "13800138000", "password": "another one", "name": "x"})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "phone_taken"));

    let (status, body) =
        app.post("/api/v1/sessions", None, json!({"phone": "13800138000", "password": "wrong pass"})).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "bad_credentials"));
    let (status, body) =
        app.post("/api/v1/sessions", None, json!({"phone": "13900000000", "password": "long enough"})).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "bad_credentials"), "unknown phones answer alike");

    let (status, session) =
        app.post("/api/v1/sessions", None, json!({"phone": "138 0013 8000", "password": "long enough"})).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let token = session["token"].as_str().unwrap();
    assert_eq!(session["user"]["name"], "小王");

    let (status, me) = app.get("/api/v1/me", Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me,
        json!({"id": session["user"]["id"], "phone": "13800138000", "name": "小王", "roles": [], "merchants": []})
    );
    let (status, wallet) = app.get("/api/v1/me/wallet", Some(token)).await;
    assert_eq!((status, wallet), (StatusCode::OK, json!({"available": 0, "held": 0, "points": 0})));

    let (status, _) = app.send(reqwest::Method::DELETE, "/api/v1/sessions/current", Some(token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get("/api/v1/me", Some(token)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "not_signed_in"), "the session ended");
    let (status, body) = app.get("/api/v1/me", None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "not_signed_in"));
    app.finish().await;
}

/// Pages sign in by cookie; their writes must carry the CSRF token, and the cookie is HttpOnly.
async fn cookie_sessions_need_the_csrf_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.customer("13800138001").await;
    let response = app
        .client
        .post(format!("{}/api/v1/sessions", app.base))
        .json(&json!({"phone": "13800138001", "password": tuangou_testkit::server_password()}))
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let (_, body) = TestApp::read(response).await;
    let session_cookie = cookies.iter().find(|c| c.starts_with("tuangou_session=")).expect("a session cookie");
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"), "{session_cookie}");
    let cookie = session_cookie.split(';').next().unwrap().to_owned();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();

    let me = app.client.get(format!("{}/api/v1/me", app.base)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK, "reads need no CSRF token");

    let create = |with_csrf: Option<&str>| {
        let mut request = app
            .client
            .post(format!("{}/api/v1/merchants", app.base))
            .header("cookie", &cookie)
            .json(&crate::common::merchant_body("茶馆", crate::common::CHUNXI));
        if let Some(token) = with_csrf {
            request = request.header("x-csrf-token", token);
        }
        request.send()
    };
    let (status, body) = TestApp::read(create(None).await.unwrap()).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "csrf_failed"));
    let (status, body) = TestApp::read(create(Some("not-the-token")).await.unwrap()).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "csrf_failed"));
    let (status, body) = TestApp::read(create(Some(&csrf)).await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.finish().await;
}

/// Thirty people sign up with the same phone at once: exactly one account, every other answer a clean 409.
async fn concurrent_sign_ups_make_one_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let attempts = (0..30).map(|i| {
        app.post(
            "/api/v1/users",
            None,
            json!({"phone": "13700000000", "password": "password-123", "name": format!("p{i}")}),
        )
    });
    let answers = futures::future::join_all(attempts).await;
    let created = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    let taken = answers.iter().filter(|(s, b)| *s == StatusCode::CONFLICT && code(b) == "phone_taken").count();
    assert_eq!((created, taken), (1, 29), "{answers:?}");
    app.finish().await;
}

on_both_backends!(sign_up_sign_in_and_out, cookie_sessions_need_the_csrf_token, concurrent_sign_ups_make_one_account);
