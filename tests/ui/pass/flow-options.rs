#![deny(warnings, clippy::pedantic, unused_qualifications)]

#[jobs::background_job(unique)]
async fn refresh(account: u64) {
    let _ = account;
}

#[jobs::background_job(unique_for = "10m", queue = "feeds")]
fn poll(feed: u64) -> Result<Vec<u64>, String> {
    Ok(vec![feed])
}

#[jobs::background_job(concurrency = 2, rate = "10/1s", limit_key = "account")]
async fn sync_account(account: u64, page: u64) -> anyhow::Result<u64> {
    Ok(account + page)
}

fn main() {
    let _ = jobs::job!(refresh(1));
    let _ = jobs::job!(poll(2));
    let _ = jobs::job!(sync_account(3, 4));
}
