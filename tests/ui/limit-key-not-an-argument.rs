#[jobs::background_job(concurrency = 1, limit_key = "acount")]
async fn sync_account(account: u64) {
    let _ = account;
}

fn main() {}
