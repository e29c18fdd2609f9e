//! The flow options of `#[background_job(...)]`: `unique`, `unique_for = "10m"`,
//! `concurrency = N`, `rate = "10/1s"`, `limit_key = "arg"`.

use crate::options::string;
use std::time::Duration;
use syn::{Expr, ExprLit, Lit, LitStr};

#[derive(Default)]
pub(crate) struct FlowOptions {
    pub(crate) unique: bool,
    pub(crate) unique_for: Option<Duration>,
    pub(crate) concurrency: Option<u32>,
    /// (count, period)
    pub(crate) rate: Option<(u32, Duration)>,
    pub(crate) limit_key: Option<LitStr>,
}

fn duration(s: &LitStr, text: &str) -> syn::Result<Duration> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        syn::Error::new_spanned(
            s,
            format!(
                "`{text}` is not a duration ({e}); write it like \"30s\", \"500ms\" or \"10m\""
            ),
        )
    })?;
    if d.is_zero() {
        return Err(syn::Error::new_spanned(
            s,
            "the duration must be longer than zero",
        ));
    }
    Ok(d)
}

impl FlowOptions {
    pub(crate) fn parse(&mut self, key: &str, value: &Expr) -> syn::Result<()> {
        match key {
            "unique_for" => {
                let s = string(value, "unique_for", "\"10m\"")?;
                self.unique_for = Some(duration(&s, &s.value())?);
                self.unique = true;
            }
            "concurrency" => match value {
                Expr::Lit(ExprLit {
                    lit: Lit::Int(i), ..
                }) => {
                    let n = i.base10_parse::<u32>()?;
                    if n == 0 {
                        return Err(syn::Error::new_spanned(
                            i,
                            "`concurrency` must be at least 1 (1 makes the job a mutex)",
                        ));
                    }
                    self.concurrency = Some(n);
                }
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "`concurrency` takes a whole number, e.g. `concurrency = 2`",
                    ))
                }
            },
            "rate" => {
                let s = string(value, "rate", "\"10/1s\"")?;
                let text = s.value();
                let bad = || {
                    syn::Error::new_spanned(
                        &s,
                        format!(
                            "`{text}` is not a rate; write `count/period`, e.g. \"10/1s\" or \
                             \"100/1m\""
                        ),
                    )
                };
                let (count, per) = text.split_once('/').ok_or_else(bad)?;
                let count: u32 = count.trim().parse().map_err(|_| bad())?;
                if count == 0 {
                    return Err(bad());
                }
                self.rate = Some((count, duration(&s, per)?));
            }
            _ => {
                self.limit_key = Some(string(value, "limit_key", "\"account_id\"")?);
            }
        }
        Ok(())
    }
}
