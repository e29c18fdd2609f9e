//! Decoding a job's stored JSON arguments the way a worker does before running it: the
//! registered function is looked up by name, its limit key computed (when it has limits), and its
//! arguments decoded into its parameters. No panic on any text; the registry path accepts exactly
//! what decoding into the job's own struct accepts; decoded arguments stored again decode again;
//! a limit key holds the decoded `limit_key` argument.
#![no_main]

use jobs::__fuzz::decode_args;
use jobs::{background_job, JobId};
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Address {
    street: String,
    zip: Option<u32>,
    tags: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Plan {
    Free,
    Paid { seats: u16, price_cents: u64 },
    Trial { days: u8 },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Step {
    Wait(u64),
    Call { url: String, retries: Option<u8> },
    Nested(Vec<Step>),
}

#[background_job(name = "fuzz.signup")]
async fn signup(user: u64, email: String, address: Address, plan: Plan, referrer: Option<JobId>) {
    let _ = (user, email, address, plan, referrer);
}

#[background_job(
    name = "fuzz.sync",
    concurrency = 2,
    limit_key = "account",
    rate = "10/1s"
)]
async fn sync_account(
    account: i64,
    pages: Vec<(u32, String)>,
    weights: HashMap<String, i32>,
    steps: Vec<Step>,
) -> Result<u64, String> {
    let _ = (pages, weights, steps);
    Ok(account.unsigned_abs())
}

#[background_job(name = "fuzz.resize")]
fn resize(
    path: String,
    sizes: [u16; 3],
    flags: (bool, char, i128),
    meta: BTreeMap<String, serde_json::Value>,
) {
    let _ = (path, sizes, flags, meta);
}

const NAMES: [&str; 4] = ["fuzz.signup", "fuzz.sync", "fuzz.resize", "fuzz.unknown"];

/// Decodes `args` through the registry and directly into `J`, and checks they agree.
fn check<J>(name: &str, args: &str) -> Option<J>
where
    J: Serialize + serde::de::DeserializeOwned,
{
    let via_registry = decode_args(name, args);
    let direct = serde_json::from_str::<J>(args);
    match (&via_registry, &direct) {
        (Ok(_), Ok(_)) => {}
        (Err(reason), Err(_)) => assert!(reason.contains(name), "{reason}"),
        (Ok(_), Err(e)) => panic!("the worker ran arguments its job refuses ({e}): {args}"),
        (Err(reason), Ok(_)) => {
            panic!("the worker refused arguments its job takes ({reason}): {args}")
        }
    }
    let job = direct.ok()?;
    let stored = serde_json::to_string(&job).expect("decoded arguments serialize");
    assert!(
        decode_args(name, &stored).is_ok(),
        "stored again as {stored}, from {args}"
    );
    Some(job)
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(args) = std::str::from_utf8(rest) else {
        return;
    };
    let name = NAMES[usize::from(which) % NAMES.len()];
    match name {
        "fuzz.signup" => {
            check::<signup>(name, args);
        }
        "fuzz.sync" => {
            if let Some(job) = check::<sync_account>(name, args) {
                let key = decode_args(name, args).ok().and_then(|d| d.limit_key);
                assert_eq!(key, Some(format!("fuzz.sync={}", job.account)), "{args}");
            }
        }
        "fuzz.resize" => {
            check::<resize>(name, args);
        }
        _ => assert!(decode_args(name, args).is_err()),
    }
});
