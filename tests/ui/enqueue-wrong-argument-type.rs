#[jobs::background_job]
async fn send_email(user_id: u64, subject: String) {
    let _ = (user_id, subject);
}

async fn signup() -> jobs::Result<()> {
    jobs::enqueue!(send_email("7", "Welcome".to_owned())).await?;
    Ok(())
}

fn main() {
    let _ = signup();
}
