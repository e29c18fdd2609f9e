#[jobs::background_job(max_crashes = 0)]
async fn poison(n: u64) {
    let _ = n;
}

fn main() {}
