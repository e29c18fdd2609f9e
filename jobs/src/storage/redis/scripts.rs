//! The Lua scripts, each prefixed with the shared helpers of `scripts/lib.lua`. They run with
//! `EVALSHA` and are loaded again after a `NOSCRIPT` reply (e.g. after a Redis restart).

use redis::aio::ConnectionLike;
use redis::{
    Arg, Cmd, ErrorKind, FromRedisValue, RedisResult, RedisWrite, Script, ServerErrorKind,
    ToRedisArgs, Value,
};
use std::borrow::Cow;

macro_rules! script {
    ($file:literal) => {
        concat!(include_str!("scripts/lib.lua"), include_str!($file))
    };
}

/// A script that also uses the flow helpers of `scripts/flow_lib.lua`.
macro_rules! flow_script {
    ($file:literal) => {
        concat!(
            include_str!("scripts/lib.lua"),
            include_str!("scripts/flow_lib.lua"),
            include_str!($file)
        )
    };
}

/// Every script of the backend, compiled once per storage.
pub(crate) struct Scripts {
    pub(crate) fetch: Script,
    pub(crate) complete: Script,
    pub(crate) renew: Script,
    pub(crate) mark_started: Script,
    pub(crate) release: Script,
    pub(crate) requeue: Script,
    pub(crate) delete: Script,
    pub(crate) cancel: Script,
    pub(crate) recurring_put: Script,
    pub(crate) recurring_fire: Script,
    // --- continuations, batches, unique jobs, limits ---
    pub(crate) enqueue_unique: Script,
    pub(crate) continuation_create: Script,
    pub(crate) continuation_attach: Script,
    pub(crate) continuation_decide: Script,
    pub(crate) continuation_commit: Script,
    pub(crate) acquire_limits: Script,
    pub(crate) limits_sweep: Script,
    pub(crate) enqueue_batch: Script,
    // --- monitoring ---
    pub(crate) monitor_list: Script,
    pub(crate) history_record: Script,
    pub(crate) queue_resume: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            fetch: Script::new(script!("scripts/fetch.lua")),
            complete: Script::new(flow_script!("scripts/complete.lua")),
            renew: Script::new(script!("scripts/renew.lua")),
            mark_started: Script::new(script!("scripts/mark_started.lua")),
            release: Script::new(script!("scripts/release.lua")),
            requeue: Script::new(script!("scripts/requeue.lua")),
            delete: Script::new(flow_script!("scripts/delete.lua")),
            cancel: Script::new(flow_script!("scripts/cancel.lua")),
            recurring_put: Script::new(script!("scripts/recurring_put.lua")),
            recurring_fire: Script::new(script!("scripts/recurring_fire.lua")),
            enqueue_unique: Script::new(script!("scripts/enqueue_unique.lua")),
            continuation_create: Script::new(flow_script!("scripts/continuation_create.lua")),
            continuation_attach: Script::new(flow_script!("scripts/continuation_attach.lua")),
            continuation_decide: Script::new(flow_script!("scripts/continuation_decide.lua")),
            continuation_commit: Script::new(flow_script!("scripts/continuation_commit.lua")),
            acquire_limits: Script::new(flow_script!("scripts/acquire_limits.lua")),
            limits_sweep: Script::new(flow_script!("scripts/limits_sweep.lua")),
            enqueue_batch: Script::new(script!("scripts/enqueue_batch.lua")),
            monitor_list: Script::new(script!("scripts/monitor_list.lua")),
            history_record: Script::new(script!("scripts/history_record.lua")),
            queue_resume: Script::new(script!("scripts/queue_resume.lua")),
        }
    }
}

/// One call of a script: keys and arguments are written into command buffers as they come (no
/// allocation per argument), sent with `EVALSHA`, and the script is loaded again after a
/// `NOSCRIPT` reply.
pub(crate) struct ScriptCall<'a> {
    script: &'a Script,
    keys: Vec<Cow<'a, str>>,
    args: Cmd,
}

impl<'a> ScriptCall<'a> {
    pub(crate) fn new(script: &'a Script) -> Self {
        ScriptCall {
            script,
            keys: Vec::with_capacity(24),
            args: Cmd::new(),
        }
    }

    /// Makes room for `count` more arguments of about `bytes` bytes in all, so that writing many
    /// arguments does not grow the buffer again and again.
    pub(crate) fn reserve(&mut self, count: usize, bytes: usize) -> &mut Self {
        self.args
            .reserve_space_for_args(std::iter::once(bytes).chain(std::iter::repeat(0).take(count)));
        self
    }

    /// Adds a key (`KEYS[n]`, in call order).
    pub(crate) fn key(&mut self, key: impl Into<Cow<'a, str>>) -> &mut Self {
        self.keys.push(key.into());
        self
    }

    /// Adds an argument (`ARGV[n]`, in call order).
    pub(crate) fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.args.arg(arg);
        self
    }

    /// The `EVALSHA` command of this call.
    fn command(&self) -> Cmd {
        let (mut count, mut bytes) = (3 + self.keys.len(), 64);
        for arg in self.args.args_iter() {
            count += 1;
            if let Arg::Simple(b) = arg {
                bytes += b.len();
            }
        }
        bytes += self.keys.iter().map(|k| k.len()).sum::<usize>();
        let mut cmd = Cmd::with_capacity(count, bytes);
        cmd.arg("EVALSHA")
            .arg(self.script.get_hash())
            .arg(self.keys.len());
        for key in &self.keys {
            cmd.arg(key.as_ref());
        }
        for arg in self.args.args_iter() {
            if let Arg::Simple(bytes) = arg {
                cmd.arg(bytes);
            }
        }
        cmd
    }

    /// Runs the script and converts its reply.
    pub(crate) async fn invoke<T: FromRedisValue>(
        &self,
        conn: &mut impl ConnectionLike,
    ) -> RedisResult<T> {
        let cmd = self.command();
        match cmd.query_async(conn).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                self.script.load_async(conn).await?;
                cmd.query_async(conn).await
            }
            result => result,
        }
    }

    /// Runs the script followed by `then` on the same connection, in one pipeline (`then` runs
    /// whatever the script answered), and returns both replies: the script's converted, `then`'s
    /// as it came. On a cluster the pipeline goes to the primary of the script's keys.
    pub(crate) async fn invoke_then<T: FromRedisValue>(
        &self,
        conn: &mut impl ConnectionLike,
        then: &Cmd,
    ) -> RedisResult<(T, Value)> {
        let mut pipe = redis::pipe();
        pipe.add_command(self.command())
            .add_command(then.clone())
            .ignore_errors();
        let mut replies: Vec<Value> = pipe.query_async(&mut *conn).await?;
        let no_script = matches!(replies.first(), Some(Value::ServerError(e))
            if e.kind() == Some(ServerErrorKind::NoScript));
        if no_script {
            self.script.load_async(&mut *conn).await?;
            replies = pipe.query_async(&mut *conn).await?;
        }
        let then_reply = replies.pop().unwrap_or(Value::Nil);
        let reply = replies.pop().unwrap_or(Value::Nil).extract_error()?;
        Ok((T::from_redis_value(reply)?, then_reply))
    }
}
