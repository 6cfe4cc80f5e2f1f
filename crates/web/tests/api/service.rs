use reqwest::StatusCode;
use tuangou_testkit::{Backend, TestApp, on_both_backends};

async fn health_metrics_and_the_openapi_document(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let text = |path: &'static str| {
        let client = app.client.clone();
        let url = format!("{}{path}", app.base);
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    assert_eq!(text("/healthz").await, (StatusCode::OK, "ok".into()));
    assert_eq!(text("/readyz").await, (StatusCode::OK, "ready".into()));
    let (status, metrics) = text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(metrics.contains("http_requests_total"), "{metrics}");

    let (status, doc) = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/users",
        "/api/v1/sessions",
        "/api/v1/sessions/current",
        "/api/v1/me",
        "/api/v1/me/wallet",
        "/api/v1/admin/credits",
        "/api/v1/admin/merchants/{id}/approve",
        "/api/v1/admin/check",
        "/api/v1/merchants",
        "/api/v1/merchants/{id}",
        "/api/v1/merchants/{id}/wallet",
        "/api/v1/merchants/{id}/staff",
        "/api/v1/merchants/{id}/campaigns",
        "/api/v1/campaigns",
        "/api/v1/campaigns/{id}",
        "/api/v1/campaigns/{id}/publish",
        "/api/v1/campaigns/{id}/end",
    ] {
        assert!(doc["paths"].get(path).is_some(), "the document lacks {path}");
    }
    assert!(doc["components"]["schemas"].get("Problem").is_some());
    app.finish().await;
}

on_both_backends!(health_metrics_and_the_openapi_document);
