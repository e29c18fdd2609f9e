#[jobs::background_job(timeout = "0s")]
async fn send_email(user_id: u64) {
    let _ = user_id;
}

fn main() {}
