#[jobs::background_job(queue = "mail", queue = "critical")]
async fn send_email(user_id: u64) {
    let _ = user_id;
}

fn main() {}
