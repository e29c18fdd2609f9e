#[jobs::background_job(queue = "mail", retry = 3)]
async fn send_email(user_id: u64) {
    let _ = user_id;
}

fn main() {}
