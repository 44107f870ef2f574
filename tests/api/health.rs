use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_reports_a_reachable_database() {
    let app = spawn_app().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().contains_key("x-request-id"),
        "every response carries a request id"
    );
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["database"]["reachable"], true);
    assert_eq!(
        v["database"]["backend"],
        mimamori_core::testing::requested_backend()
    );
    app.finish().await;
}

#[tokio::test]
async fn healthz_is_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.app_db.close().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 503);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["database"]["reachable"], false);
    app.finish().await;
}
