const RETRIES: u32 = 5;

#[jobs::background_job(retries = RETRIES)]
async fn send_email(user_id: u64) {
    let _ = user_id;
}

fn main() {}
