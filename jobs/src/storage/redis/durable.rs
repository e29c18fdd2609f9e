//! Durable acknowledgements (`replicas_ack`): a write that acknowledges jobs (an enqueue, a
//! completion) is followed on the same connection by `WAIT <replicas> <timeout>`, and the call
//! returns only once that many replicas of the primary confirmed everything the connection wrote
//! so far. Redis replicates asynchronously: without it, a primary that dies right after it
//! answered may take the last writes with it, and the replica promoted in its place never saw
//! them.
//!
//! `WAIT` cannot run inside a transaction or a script, so it follows them in the same pipeline;
//! on a cluster the pipeline goes whole to the primary of the queue's slot.

use super::config::ReplicasAck;
use super::scripts::ScriptCall;
use super::RedisStorage;
use crate::error::{Error, Result};
use redis::{FromRedisValue, Value};

impl RedisStorage {
    /// Runs `inv`, a script that acknowledges jobs; with `replicas_ack`, returns once the
    /// replicas confirmed it. `what` names it in errors.
    pub(super) async fn invoke_acknowledged<T: FromRedisValue>(
        &self,
        inv: &ScriptCall<'_>,
        what: &'static str,
    ) -> Result<T> {
        let Some(ack) = self.inner.replicas_ack else {
            return inv.invoke(&mut self.conn()).await.map_err(self.err(what));
        };
        let (reply, confirmed) = inv
            .invoke_then(&mut self.conn(), &wait(ack))
            .await
            .map_err(self.err(what))?;
        self.check_confirmed(ack, &confirmed, what)?;
        Ok(reply)
    }

    /// Runs the commands of `pipe` as one `MULTI`/`EXEC` transaction followed by `WAIT`, and
    /// returns the reply of its last command once the replicas confirmed it.
    pub(super) async fn transaction_acknowledged<T: FromRedisValue>(
        &self,
        ack: ReplicasAck,
        pipe: &redis::Pipeline,
        what: &'static str,
    ) -> Result<T> {
        let mut durable = redis::pipe();
        durable.cmd("MULTI");
        for cmd in pipe.cmd_iter() {
            durable.add_command(cmd.clone());
        }
        durable.cmd("EXEC").add_command(wait(ack)).ignore_errors();
        let mut replies: Vec<Value> = durable
            .query_async(&mut self.conn())
            .await
            .map_err(self.err(what))?;
        let confirmed = replies.pop().unwrap_or(Value::Nil);
        let exec = replies.pop().unwrap_or(Value::Nil);
        let last = (|| {
            for queued in replies {
                queued.extract_error()?;
            }
            match exec.extract_error()? {
                Value::Array(mut results) => {
                    let last = results.pop().unwrap_or(Value::Nil).extract_error()?;
                    Ok(T::from_redis_value(last)?)
                }
                other => Err(redis::RedisError::from((
                    redis::ErrorKind::UnexpectedReturnType,
                    "EXEC did not answer an array",
                    format!("{other:?}"),
                ))),
            }
        })()
        .map_err(self.err(what))?;
        self.check_confirmed(ack, &confirmed, what)?;
        Ok(last)
    }

    /// Fails when `WAIT` answered fewer replicas than asked for.
    fn check_confirmed(
        &self,
        ack: ReplicasAck,
        confirmed: &Value,
        what: &'static str,
    ) -> Result<()> {
        let count = match confirmed {
            Value::Int(n) => u32::try_from(*n).unwrap_or(0),
            Value::ServerError(_) => {
                let e = confirmed.clone().extract_error().unwrap_err();
                return Err(self.err(what)(e));
            }
            _ => 0,
        };
        if count >= ack.replicas {
            return Ok(());
        }
        Err(Error::storage(format!(
            "{what}: written on the Redis primary at {}, but only {count} of the {} replicas \
             asked for (`replicas_ack`) confirmed it within {} ms; the write may be lost if \
             that primary fails over now",
            self.inner.display_url,
            ack.replicas,
            ack.timeout.as_millis()
        )))
    }
}

/// `WAIT <replicas> <timeout ms>` (at least 1 ms: 0 would wait forever).
fn wait(ack: ReplicasAck) -> redis::Cmd {
    let mut cmd = redis::cmd("WAIT");
    cmd.arg(ack.replicas).arg(
        u64::try_from(ack.timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1),
    );
    cmd
}
