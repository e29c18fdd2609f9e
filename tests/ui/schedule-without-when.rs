#[jobs::background_job]
async fn send_email(user_id: u64) {
    let _ = user_id;
}

async fn remind() -> jobs::Result<()> {
    jobs::schedule!(send_email(7)).await?;
    Ok(())
}

fn main() {
    let _ = remind();
}
