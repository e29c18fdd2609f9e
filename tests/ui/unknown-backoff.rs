#[jobs::background_job(backoff = "linear", on_exhausted = "drop")]
async fn sync_feed(feed: u64) {
    let _ = feed;
}

fn main() {}
