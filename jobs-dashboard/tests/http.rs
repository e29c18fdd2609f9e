//! The dashboard over HTTP, as a browser without JavaScript uses it: every page renders,
//! actions work through POST forms, and its defences hold (escaping, CSP, same-origin checks,
//! CSRF tokens, read-only mode, redaction, mounting under a prefix).

use jobs::monitor::Monitor;
use jobs::storage::{Completion, FetchRequest, NewJob, Outcome};
use jobs::storage::{Delivery, Monitoring};
use jobs::{JobId, JobState, MemoryStorage};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response: status, headers (lower-case names), body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `extra` header lines and an optional form body.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[&str],
    form: Option<&str>,
) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if let Some(body) = form {
        head.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    head.push_str(form.unwrap_or(""));
    s.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: dechunk(body),
    }
}

/// The body of a chunked response, as text.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_owned();
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    if out.is_empty() {
        body.to_owned()
    } else {
        out
    }
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], None).await
}

/// Serves `app` on a free port.
async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A storage with a failed job whose arguments hold markup and a password, and pending jobs.
async fn storage() -> (MemoryStorage, JobId) {
    let s = MemoryStorage::new();
    let ids = s
        .enqueue(vec![
            NewJob::new(
                "mail",
                "mail.send",
                r#"{"to":"<script>alert(1)</script>","password":"hunter2"}"#.into(),
            ),
            NewJob::new("mail", "mail.send", r#"{"to":"bob@example.com"}"#.into()),
        ])
        .await
        .unwrap();
    let q: Vec<Arc<str>> = vec![Arc::from("mail")];
    let got = s
        .fetch(FetchRequest::new(
            &q,
            1,
            Duration::from_secs(30),
            Duration::ZERO,
        ))
        .await
        .unwrap();
    let failed = Outcome::Failed {
        reason: "<b>boom</b>".into(),
    };
    s.complete(&[Completion::new(got[0].lease(), 0, failed)])
        .await
        .unwrap();
    (s, ids[0].clone())
}

/// The CSRF token of the first form on `page`.
fn token(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form") + 19;
    page[at..at + 32].to_owned()
}

#[tokio::test]
async fn every_page_renders_and_escapes() {
    let (s, failed) = storage().await;
    let addr = serve(jobs_dashboard::router(jobs_dashboard::Config::new(
        Monitor::new(s),
    )))
    .await;
    for path in [
        "/",
        "/queues",
        "/jobs?state=failed",
        "/jobs?state=enqueued&search=bob",
        &format!("/jobs/{failed}"),
        "/recurring",
        "/servers",
        "/batches",
        "/assets/style.css",
        "/assets/live.js",
    ] {
        let r = get(addr, path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let csp = r.header("content-security-policy").expect("a CSP");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
    }
    let job = get(addr, &format!("/jobs/{failed}")).await.body;
    assert!(
        job.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{job}"
    );
    assert!(
        !job.contains("<script>alert(1)"),
        "markup in arguments is shown as text"
    );
    assert!(job.contains("&lt;b&gt;boom&lt;/b&gt;"));
    assert!(
        !job.contains("<script>") || job.matches("<script").count() == 1,
        "only our script"
    );
    let list = get(addr, "/jobs?state=failed").await.body;
    assert!(list.contains(&failed.to_string()) && list.contains("&lt;script&gt;"));
    let found = get(addr, "/jobs?state=enqueued&search=bob%40").await.body;
    assert!(found.contains("bob@example.com"), "{found}");
    assert_eq!(get(addr, "/jobs/mail:999").await.status, 404);
    assert_eq!(get(addr, "/jobs/nonsense").await.status, 400);
    assert_eq!(get(addr, "/jobs?state=sideways").await.status, 400);

    let api = get(addr, "/api/queues").await;
    assert_eq!(api.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(v[0]["name"], "mail");
    assert_eq!(
        (v[0]["pending"].as_u64(), v[0]["failed"].as_u64()),
        (Some(1), Some(1))
    );
    let v: serde_json::Value =
        serde_json::from_str(&get(addr, &format!("/api/jobs/{failed}")).await.body).unwrap();
    assert_eq!(v["state"], "failed");
    assert_eq!(v["last_error"], "<b>boom</b>");
    let v: serde_json::Value =
        serde_json::from_str(&get(addr, "/api/jobs?state=failed").await.body).unwrap();
    assert_eq!(v["jobs"][0]["id"], failed.to_string());
    for api in [
        "/api/stats",
        "/api/history?resolution=hour",
        "/api/servers",
        "/api/recurring",
        "/api/batches",
    ] {
        assert_eq!(get(addr, api).await.status, 200, "{api}");
    }
}

#[tokio::test]
async fn actions_need_post_same_origin_and_the_token() {
    let (s, failed) = storage().await;
    let addr = serve(jobs_dashboard::router(jobs_dashboard::Config::new(
        Monitor::new(s.clone()),
    )))
    .await;
    let page = get(addr, "/jobs?state=failed").await.body;
    let csrf = token(&page);
    let retry = format!("/jobs/{failed}/retry");
    let form = format!("csrf={csrf}&back=%2Fjobs%3Fstate%3Dfailed");

    // GET does not act.
    assert_eq!(get(addr, &retry).await.status, 405);
    // Cross-site: refused, whatever the token.
    let r = request(
        addr,
        "POST",
        &retry,
        &["Sec-Fetch-Site: cross-site"],
        Some(&form),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = request(
        addr,
        "POST",
        &retry,
        &["Origin: http://evil.example"],
        Some(&form),
    )
    .await;
    assert_eq!(r.status, 403);
    // Same origin, wrong token: refused.
    let r = request(
        addr,
        "POST",
        &retry,
        &["Sec-Fetch-Site: same-origin"],
        Some("csrf=nope&back=%2F"),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        s.job(&failed).await.unwrap().unwrap().state,
        JobState::Failed
    );
    // Same origin with the token: done, and back to the list with a notice.
    let r = request(
        addr,
        "POST",
        &retry,
        &["Sec-Fetch-Site: same-origin"],
        Some(&form),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let back = r.header("location").unwrap();
    assert!(back.starts_with("/jobs?state=failed&done="), "{back}");
    assert_eq!(
        s.job(&failed).await.unwrap().unwrap().state,
        JobState::Enqueued
    );
    // An open redirect is not possible.
    let evil = format!("csrf={csrf}&back=%2F%2Fevil.example");
    let r = request(
        addr,
        "POST",
        &format!("/jobs/{failed}/delete"),
        &[],
        Some(&evil),
    )
    .await;
    assert_eq!(r.status, 303);
    assert!(r.header("location").unwrap().starts_with("/?done="));

    // Pause and resume a queue through its form.
    let form = format!("csrf={csrf}&back=%2Fqueues&queue=mail");
    let r = request(
        addr,
        "POST",
        "/queues/pause",
        &["Sec-Fetch-Site: same-origin"],
        Some(&form),
    )
    .await;
    assert_eq!(r.status, 303);
    assert!(Monitor::new(s.clone()).queue("mail").await.unwrap().paused);
    assert!(get(addr, "/queues").await.body.contains("Resume"));
    request(addr, "POST", "/queues/resume", &[], Some(&form)).await;
    assert!(!Monitor::new(s.clone()).queue("mail").await.unwrap().paused);

    // Bulk: every enqueued job matching the search.
    let form =
        format!("csrf={csrf}&back=%2F&action=delete&state=enqueued&queue=&name=&search=bob%40");
    let r = request(addr, "POST", "/jobs/bulk", &[], Some(&form)).await;
    assert_eq!(r.status, 303);
    assert!(
        r.header("location").unwrap().contains("Deleted%201%20jobs"),
        "{:?}",
        r.header("location")
    );
}

#[tokio::test]
async fn read_only_mode_changes_nothing() {
    let (s, failed) = storage().await;
    let config = jobs_dashboard::Config::new(Monitor::new(s.clone())).read_only(true);
    let addr = serve(jobs_dashboard::router(config)).await;
    let page = get(addr, "/jobs?state=failed").await.body;
    assert!(
        !page.contains("<form method=\"post\""),
        "no action forms in read-only mode"
    );
    assert!(page.contains("read-only"));
    let r = request(
        addr,
        "POST",
        &format!("/jobs/{failed}/retry"),
        &[],
        Some("csrf=x&back=%2F"),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        s.job(&failed).await.unwrap().unwrap().state,
        JobState::Failed
    );
}

#[tokio::test]
async fn redaction_authorization_and_a_prefix() {
    let (s, failed) = storage().await;
    let config = jobs_dashboard::Config::new(Monitor::new(s))
        .redact(jobs_dashboard::redact_keys(&["password"]))
        .authorize(|parts| parts.headers.get("x-operator").is_some());
    let app = axum::Router::new().nest("/admin/jobs", jobs_dashboard::router(config));
    let addr = serve(app).await;
    assert_eq!(
        get(addr, "/admin/jobs/queues").await.status,
        403,
        "the hook refuses"
    );
    let me = ["X-Operator: ada"];
    let r = request(
        addr,
        "GET",
        &format!("/admin/jobs/jobs/{failed}"),
        &me,
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("hunter2"), "redacted");
    assert!(r.body.contains("[redacted]"));
    assert!(
        r.body.contains("href=\"/admin/jobs/queues\""),
        "links keep the prefix"
    );
    assert!(r.body.contains("src=\"/admin/jobs/assets/live.js\""));
    let api = request(
        addr,
        "GET",
        &format!("/admin/jobs/api/jobs/{failed}"),
        &me,
        None,
    )
    .await;
    assert!(!api.body.contains("hunter2"));
    let root = request(addr, "GET", "/admin/jobs", &me, None).await;
    assert_eq!(root.status, 200);
    assert!(root.body.contains("href=\"/admin/jobs/servers\""));
}

#[tokio::test]
async fn live_counts_stream_as_server_sent_events() {
    let (s, _) = storage().await;
    let addr = serve(jobs_dashboard::router(jobs_dashboard::Config::new(
        Monitor::new(s),
    )))
    .await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while !got.contains("\"totals\"") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an event within 5 s")
            .unwrap();
        assert!(n > 0, "the stream ended");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(got.contains("text/event-stream"), "{got}");
    assert!(got.contains("data: {"), "{got}");
}
