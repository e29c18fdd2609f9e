#[jobs::background_job]
async fn store<T: Clone + Send + 'static>(value: T) {
    let _ = value;
}

fn main() {}
