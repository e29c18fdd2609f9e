#[jobs::background_job(timeout = "30 seconds please")]
async fn send_email(user_id: u64) {
    let _ = user_id;
}

fn main() {}
