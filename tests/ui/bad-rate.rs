#[jobs::background_job(rate = "ten per second")]
async fn poll(feed: u64) {
    let _ = feed;
}

fn main() {}
