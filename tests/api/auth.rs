use crate::helpers::{PASSWORD, spawn_app};

#[tokio::test]
async fn pages_redirect_to_login_and_api_answers_401_json() {
    let app = spawn_app().await;
    for path in ["/", "/persons", "/persons/new", "/outbox", "/persons/1"] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/login", "{path}");
    }
    let r = app.get("/api/v1/persons/1").await;
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unauthorized");
    app.finish().await;
}

#[tokio::test]
async fn login_with_password_sets_a_strict_http_only_cookie() {
    let app = spawn_app().await;
    let r = app
        .post_form("/login", &[("username", "nurse"), ("password", "wrong")])
        .await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("パスワードが違います"));
    let r = app
        .post_form("/login", &[("username", "nobody"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status(), 401);

    let r = app
        .post_form("/login", &[("username", "nurse"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("mimamori_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let home = app.get("/").await;
    assert_eq!(home.status(), 200);
    let html = home.text().await.unwrap();
    assert!(html.contains("テスト保健所") && html.contains("看護師 一郎"));
    app.finish().await;
}

#[tokio::test]
async fn logout_needs_the_csrf_token_and_ends_the_session() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let r = app.post_form("/logout", &[("csrf", "forged")]).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        app.get("/").await.status(),
        200,
        "still logged in after a forged logout"
    );
    let r = app.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(app.get("/").await.status(), 303, "logged out");
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
    app.finish().await;
}

#[tokio::test]
async fn language_switch_renders_the_console_in_english() {
    let app = spawn_app().await;
    app.login().await;
    assert!(
        app.get("/persons/new")
            .await
            .text()
            .await
            .unwrap()
            .contains("観察開始日")
    );
    assert_eq!(app.get("/lang/en").await.status(), 303);
    let html = app.get("/persons/new").await.text().await.unwrap();
    assert!(html.contains("Observation starts") && html.contains(r#"lang="en""#));
    app.finish().await;
}
