struct Mailer;

impl Mailer {
    #[jobs::background_job]
    async fn send(&self, to: String) {
        let _ = to;
    }
}

fn main() {}
