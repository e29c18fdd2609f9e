#[jobs::background_job]
async fn print(value: impl std::fmt::Display) {
    println!("{value}");
}

fn main() {}
