#[jobs::background_job]
fn count(words: String) -> impl std::fmt::Debug {
    words.len()
}

fn main() {}
