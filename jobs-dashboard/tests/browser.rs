//! The dashboard in a real browser: headless Chromium driven over WebDriver (chromedriver).
//! Opens the overview, searches for a failed job by an argument, retries it and watches it
//! succeed, pauses and resumes a queue, triggers a recurring job; saves a screenshot of each
//! page under `target/screenshots/`.
//!
//! Skips when `chromium` or `chromedriver` is missing, unless `JOBS_REQUIRE_BROWSER=1` (set by
//! `.ci/run`, which installs them).

use fantoccini::{ClientBuilder, Locator};
use jobs::monitor::Monitor;
use jobs::{Client, JobState, MemoryStorage, Worker};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Fails its first attempt (of the whole process), succeeds after.
static FAILED_ONCE: AtomicBool = AtomicBool::new(false);

#[jobs::background_job(queue = "mail", retries = 0, name = "mail.send")]
async fn send_mail(to: String, subject: String) -> Result<(), String> {
    if to.starts_with("ada") && !FAILED_ONCE.swap(true, Ordering::SeqCst) {
        return Err(format!("smtp: {to}: mailbox unavailable"));
    }
    let _ = subject;
    Ok(())
}

#[jobs::background_job(queue = "reports", name = "reports.nightly")]
async fn nightly_report(kind: String) {
    let _ = kind;
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn found(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shoot(c: &fantoccini::Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Reloads until `css` matches an element whose text contains `text` (up to 20 s).
async fn until_text(c: &fantoccini::Client, css: &str, text: &str) {
    let give_up = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if e.text().await.unwrap_or_default().contains(text) {
                return;
            }
        }
        assert!(Instant::now() < give_up, "`{css}` never showed `{text}`");
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.refresh().await.unwrap();
    }
}

/// Clicks `e` and waits until the page it was on has been replaced by the next one (up to
/// 20 s), so what the test looks for next is found on the new page, never on the old one.
async fn click_through(c: &fantoccini::Client, e: fantoccini::elements::Element) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    e.click().await.unwrap();
    let give_up = Instant::now() + Duration::from_secs(20);
    // A replaced document's elements are stale: asking for one's tag name fails.
    while old.tag_name().await.is_ok() {
        assert!(
            Instant::now() < give_up,
            "the click did not lead to a new page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.wait().for_element(Locator::Css("body")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_retries_pauses_and_triggers() {
    let required = std::env::var("JOBS_REQUIRE_BROWSER").as_deref() == Ok("1");
    if !found("chromedriver") || !found("chromium") {
        assert!(
            !required,
            "chromium and chromedriver are required (JOBS_REQUIRE_BROWSER=1)"
        );
        eprintln!("skipping: chromium or chromedriver is not installed");
        return;
    }

    // The jobs: a failed one to find, others to search past, a recurring job, a worker.
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let ada = jobs::enqueue!(
        &client,
        send_mail("ada@example.com".into(), "Welcome".into())
    )
    .await
    .unwrap();
    for n in 0..5 {
        jobs::enqueue!(
            &client,
            send_mail(format!("user{n}@example.com"), "News".into())
        )
        .await
        .unwrap();
    }
    client
        .recurring(
            "nightly",
            "0 0 3 * * *",
            jobs::job!(nightly_report("sales".into())),
        )
        .register()
        .await
        .unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopped = stop.clone();
    let worker = Worker::builder(storage.clone())
        .queues(["mail"])
        .build()
        .unwrap();
    let run = tokio::spawn(worker.run_until(async move { stopped.notified().await }));
    assert!(jobs_until(&storage, &ada, JobState::Failed).await);

    // The dashboard, and a browser.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = format!("http://{}", listener.local_addr().unwrap());
    let app: axum::Router =
        jobs_dashboard::router(jobs_dashboard::Config::new(Monitor::new(storage.clone())));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let port = free_port();
    let _driver = Driver(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,860"]
        }),
    );
    // With more than one crypto provider compiled into rustls (a workspace build: `ring` from
    // the `jobs` crate's `tls` feature, `aws-lc-rs` from fantoccini) it has no default, and
    // fantoccini's client would panic: name one. Fails only if one is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let give_up = Instant::now() + Duration::from_secs(20);
    let c = loop {
        match ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(e) if Instant::now() < give_up => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot start a browser session: {e}"),
        }
    };

    // The overview, with its live counts, while jobs stream through.
    let producer = client.clone();
    let trickle = tokio::spawn(async move {
        for round in 0..28u64 {
            for n in 0..(10 + 5 * (round % 4)) {
                let to = format!("reader{round}-{n}@example.com");
                jobs::enqueue!(&producer, send_mail(to, "Digest".into()))
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    c.goto(&format!("{site}/")).await.unwrap();
    let failed = c
        .wait()
        .for_element(Locator::Css("[data-live=\"failed\"]"))
        .await
        .unwrap();
    assert_eq!(failed.text().await.unwrap(), "1");
    // The live script replaces this once the first event arrives.
    let give_up = Instant::now() + Duration::from_secs(10);
    while c
        .find(Locator::Css("[data-live=\"rate\"]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("waiting")
    {
        assert!(Instant::now() < give_up, "no live update arrived");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Reloaded while jobs stream in: the history has them, the live graph gathers seconds.
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.refresh().await.unwrap();
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    shoot(&c, "overview").await;
    trickle.await.unwrap();

    // Search the failed jobs by an argument, open the one found.
    c.goto(&format!("{site}/jobs?state=failed")).await.unwrap();
    let search = c.find(Locator::Css("input[name=search]")).await.unwrap();
    search.send_keys("ada@").await.unwrap();
    click_through(
        &c,
        c.find(Locator::Css("form.filters button")).await.unwrap(),
    )
    .await;
    let link = c
        .wait()
        .for_element(Locator::LinkText(&ada.to_string()))
        .await
        .unwrap();
    let rows = c.find_all(Locator::Css("#jobs tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1, "only the job with that argument");
    shoot(&c, "failed-search").await;
    click_through(&c, link).await;
    let error = c
        .wait()
        .for_element(Locator::Css("#last-error"))
        .await
        .unwrap();
    assert!(error.text().await.unwrap().contains("mailbox unavailable"));
    let args = c
        .find(Locator::Css("#args"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(args.contains("\"to\": \"ada@example.com\""), "{args}");
    shoot(&c, "job").await;

    // Retry it and watch it succeed.
    click_through(
        &c,
        c.find(Locator::XPath("//button[text()='Retry']"))
            .await
            .unwrap(),
    )
    .await;
    let notice = c.wait().for_element(Locator::Css(".notice")).await.unwrap();
    assert!(notice.text().await.unwrap().contains("Requeued"));
    until_text(&c, "h1 .badge", "succeeded").await;
    shoot(&c, "job-succeeded").await;

    // Pause the queue, then resume it.
    c.goto(&format!("{site}/queues")).await.unwrap();
    click_through(
        &c,
        c.find(Locator::XPath(
            "//tr[@data-queue='mail']//button[text()='Pause']",
        ))
        .await
        .unwrap(),
    )
    .await;
    c.wait().for_element(Locator::Css(".notice")).await.unwrap();
    let badge = c
        .find(Locator::Css("tr[data-queue=mail] .badge"))
        .await
        .unwrap();
    assert_eq!(badge.text().await.unwrap(), "paused");
    assert!(
        Monitor::new(storage.clone())
            .queue("mail")
            .await
            .unwrap()
            .paused
    );
    shoot(&c, "queues-paused").await;
    click_through(
        &c,
        c.find(Locator::XPath(
            "//tr[@data-queue='mail']//button[text()='Resume']",
        ))
        .await
        .unwrap(),
    )
    .await;
    c.wait().for_element(Locator::Css(".notice")).await.unwrap();
    assert!(
        !Monitor::new(storage.clone())
            .queue("mail")
            .await
            .unwrap()
            .paused
    );

    // Trigger the recurring job.
    c.goto(&format!("{site}/recurring")).await.unwrap();
    click_through(
        &c,
        c.find(Locator::XPath(
            "//tr[@data-recurring='nightly']//button[text()='Trigger now']",
        ))
        .await
        .unwrap(),
    )
    .await;
    let notice = c.wait().for_element(Locator::Css(".notice")).await.unwrap();
    assert!(notice.text().await.unwrap().contains("Enqueued reports:"));
    assert_eq!(
        Monitor::new(storage.clone())
            .queue("reports")
            .await
            .unwrap()
            .pending
            .value,
        1
    );
    shoot(&c, "recurring").await;
    c.goto(&format!("{site}/servers")).await.unwrap();
    shoot(&c, "servers").await;

    c.close().await.unwrap();
    stop.notify_one();
    run.await.unwrap().unwrap();
}

async fn jobs_until(storage: &MemoryStorage, id: &jobs::JobId, state: JobState) -> bool {
    use jobs::storage::Monitoring;
    let give_up = Instant::now() + Duration::from_secs(10);
    while Instant::now() < give_up {
        if storage
            .job(id)
            .await
            .unwrap()
            .is_some_and(|j| j.state == state)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
