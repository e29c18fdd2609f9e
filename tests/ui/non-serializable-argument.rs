struct Password(String);

#[jobs::background_job]
async fn log_in(user: String, password: Password) {
    let _ = (user, password.0);
}

fn main() {}
