#[jobs::background_job]
async fn count(words: String) -> usize {
    words.split_whitespace().count()
}

fn main() {}
