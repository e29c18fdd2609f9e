async fn send_email(user_id: u64) {
    let _ = user_id;
}

async fn signup() -> jobs::Result<()> {
    jobs::enqueue!(send_email(7)).await?;
    Ok(())
}

fn main() {
    let _ = signup();
}
