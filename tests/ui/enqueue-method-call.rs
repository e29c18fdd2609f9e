struct Mailer;

impl Mailer {
    async fn send(&self, user_id: u64) {
        let _ = user_id;
    }
}

async fn signup(mailer: Mailer) -> jobs::Result<()> {
    jobs::enqueue!(mailer.send(7)).await?;
    Ok(())
}

fn main() {
    let _ = signup(Mailer);
}
