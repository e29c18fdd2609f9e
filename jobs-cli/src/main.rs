//! `jobs`: look at and act on the jobs of a storage from a shell, or serve its dashboard.
//!
//! ```text
//! jobs --url redis://127.0.0.1:6379 stats
//! jobs --url postgres://postgres@127.0.0.1/app --prefix jobs list --state failed --search alice@
//! jobs retry --all --state failed --queue mail
//! jobs dashboard --bind 127.0.0.1:9292 --read-only
//! ```
//!
//! The storage comes from `--url` or `JOBS_URL`; `--prefix` is the Redis key prefix or the
//! PostgreSQL schema. Read commands print tables, or JSON with `--json`. Exit codes: 0 done,
//! 1 an error (storage unreachable, no such job), 2 a usage error.

mod commands;
mod connect;
mod table;

use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::process::ExitCode;

/// Look at and act on the jobs of a storage, or serve its dashboard.
#[derive(Debug, Parser)]
#[command(name = "jobs", version, about)]
struct Cli {
    /// The storage: redis://host:port, rediss://, redis+unix:///path, or
    /// postgres://user@host/database.
    #[arg(long, env = "JOBS_URL", global = true)]
    url: Option<String>,
    /// The Redis key prefix, or the PostgreSQL schema [default: jobs].
    #[arg(long, env = "JOBS_PREFIX", global = true)]
    prefix: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// A job state, as the listings take it.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum State {
    Enqueued,
    Scheduled,
    Processing,
    Succeeded,
    Failed,
    Deleted,
    Awaiting,
}

impl State {
    fn job_state(self) -> jobs::JobState {
        match self {
            State::Enqueued => jobs::JobState::Enqueued,
            State::Scheduled => jobs::JobState::Scheduled,
            State::Processing => jobs::JobState::Processing,
            State::Succeeded => jobs::JobState::Succeeded,
            State::Failed => jobs::JobState::Failed,
            State::Deleted => jobs::JobState::Deleted,
            State::Awaiting => jobs::JobState::Awaiting,
        }
    }
}

/// Which jobs a listing or a bulk action takes.
#[derive(Debug, Clone, clap::Args)]
struct Filter {
    /// Only this queue.
    #[arg(long)]
    queue: Option<String>,
    /// Only jobs with this registered name.
    #[arg(long)]
    name: Option<String>,
    /// Only jobs whose arguments contain this text.
    #[arg(long)]
    search: Option<String>,
    /// How many jobs a filtered listing looks at per call.
    #[arg(long, default_value_t = jobs::monitor::DEFAULT_WINDOW)]
    window: usize,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Counts of every queue and their totals.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every queue with its counts, latency and pause.
    Queues {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Jobs in a state, newest or next first, one page.
    List {
        /// The state.
        #[arg(long, value_enum, default_value = "failed")]
        state: State,
        #[command(flatten)]
        filter: Filter,
        /// At most this many jobs.
        #[arg(long, default_value_t = 25)]
        limit: usize,
        /// Start after this cursor (the `next` of the previous page).
        #[arg(long)]
        after: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One job: arguments, history, last error, continuations.
    Show {
        /// The job's id, `queue:number`.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put a failed or deleted job (or all that match) back on its queue.
    Retry(Action),
    /// Delete a job (or all that match).
    Delete(Action),
    /// Pause a queue: no worker fetches from it until it is resumed.
    Pause {
        /// The queue.
        queue: String,
    },
    /// Resume a paused queue.
    Resume {
        /// The queue.
        queue: String,
    },
    /// Recurring jobs.
    Recurring {
        #[command(subcommand)]
        command: RecurringCommand,
    },
    /// Live worker processes and the jobs they hold.
    Servers {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Succeeded and failed jobs per minute (24 h) or per hour (7 d).
    History {
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Per hour over 7 days instead of per minute over 24 hours.
        #[arg(long)]
        hourly: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Batches with their progress.
    Batches {
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 25)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the web dashboard.
    Dashboard {
        /// Where to listen (the default serves this machine only).
        #[arg(long, default_value = "127.0.0.1:9292")]
        bind: SocketAddr,
        /// Show everything, change nothing.
        #[arg(long)]
        read_only: bool,
    },
}

/// One job, or every job matching a filter.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all"])))]
struct Action {
    /// The job's id, `queue:number`.
    id: Option<String>,
    /// Every job in `--state` that matches the filters.
    #[arg(long, requires = "state")]
    all: bool,
    /// The state (with `--all`).
    #[arg(long, value_enum)]
    state: Option<State>,
    #[command(flatten)]
    filter: Filter,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum RecurringCommand {
    /// Every recurring job with its next and last run.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Enqueue a job of it now.
    Trigger {
        /// Its id.
        id: String,
    },
    /// Pause it: its ticks pass without a job.
    Pause {
        /// Its id.
        id: String,
    },
    /// Resume it.
    Resume {
        /// Its id.
        id: String,
    },
    /// Remove it.
    Remove {
        /// Its id.
        id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.url.is_none() {
        use clap::CommandFactory;
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "no storage given: pass --url (or set JOBS_URL), e.g. --url redis://127.0.0.1:6379",
            )
            .exit();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}
