//! The options of `#[background_job(...)]`: `name`, `queue`, `retries`, `timeout`, `backoff`,
//! `on_exhausted`, `max_crashes`, and the flow options `unique`, `unique_for`, `concurrency`, `rate`, `limit_key`.

use proc_macro2::TokenStream;
use std::time::Duration;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitStr, Meta, Token};

const KEYS: &str = "`name`, `queue`, `retries`, `timeout`, `backoff`, `on_exhausted`, \
                    `max_crashes`, `unique`, `unique_for`, `concurrency`, `rate`, `limit_key`";

/// `backoff = "..."`: the delay before each retry.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backoff {
    Exponential,
    Polynomial,
}

/// `on_exhausted = "..."`: what becomes of a job once its attempts are used up.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnExhausted {
    Fail,
    Delete,
}

#[derive(Default)]
pub(crate) struct Options {
    pub(crate) name: Option<LitStr>,
    pub(crate) queue: Option<LitStr>,
    pub(crate) retries: Option<u32>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) on_exhausted: Option<OnExhausted>,
    pub(crate) max_crashes: Option<u32>,
    pub(crate) flow: crate::flow_options::FlowOptions,
}

impl Options {
    /// Parses the attribute's arguments, collecting every mistake into one error.
    pub(crate) fn parse(args: TokenStream) -> syn::Result<Options> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
        let mut options = Options::default();
        let mut errors: Option<syn::Error> = None;
        let mut push = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        let mut seen: Vec<String> = Vec::new();
        for meta in metas {
            if let Meta::Path(path) = &meta {
                if path.is_ident("unique") {
                    if options.flow.unique {
                        push(syn::Error::new_spanned(
                            path,
                            "`unique` is given twice; give each option once",
                        ));
                    }
                    options.flow.unique = true;
                    continue;
                }
            }
            let Meta::NameValue(nv) = &meta else {
                push(syn::Error::new_spanned(
                    &meta,
                    format!("expected `key = value`; the valid keys are {KEYS}"),
                ));
                continue;
            };
            let key = nv
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            if !matches!(
                key.as_str(),
                "name"
                    | "queue"
                    | "retries"
                    | "timeout"
                    | "backoff"
                    | "on_exhausted"
                    | "max_crashes"
                    | "unique_for"
                    | "concurrency"
                    | "rate"
                    | "limit_key"
            ) {
                push(syn::Error::new_spanned(
                    &nv.path,
                    format!("unknown option of #[background_job]; the valid keys are {KEYS}"),
                ));
                continue;
            }
            if seen.contains(&key) {
                push(syn::Error::new_spanned(
                    &nv.path,
                    format!("`{key}` is given twice; give each option once"),
                ));
                continue;
            }
            seen.push(key.clone());
            let result = match key.as_str() {
                "name" => string(&nv.value, "name", "\"billing.charge\"").and_then(|s| {
                    if s.value().trim().is_empty() {
                        Err(syn::Error::new_spanned(
                            &s,
                            "the job name must not be empty",
                        ))
                    } else {
                        options.name = Some(s);
                        Ok(())
                    }
                }),
                "queue" => string(&nv.value, "queue", "\"critical\"").and_then(|s| {
                    let v = s.value();
                    if v.is_empty()
                        || v.contains(['{', '}', ':'])
                        || v.chars().any(char::is_whitespace)
                    {
                        Err(syn::Error::new_spanned(
                            &s,
                            "a queue name must be non-empty, without spaces, `:`, `{` or `}`",
                        ))
                    } else {
                        options.queue = Some(s);
                        Ok(())
                    }
                }),
                "unique_for" | "concurrency" | "rate" | "limit_key" => {
                    options.flow.parse(&key, &nv.value)
                }
                "retries" => match &nv.value {
                    Expr::Lit(ExprLit {
                        lit: Lit::Int(i), ..
                    }) => i.base10_parse::<u32>().map(|n| options.retries = Some(n)),
                    other => Err(syn::Error::new_spanned(
                        other,
                        "`retries` takes a whole number, e.g. `retries = 5`",
                    )),
                },
                "max_crashes" => match &nv.value {
                    Expr::Lit(ExprLit {
                        lit: Lit::Int(i), ..
                    }) => match i.base10_parse::<u32>() {
                        Ok(0) => Err(syn::Error::new_spanned(
                            i,
                            "`max_crashes` must be at least 1 (with 0 the job would fail \
                             before it ever ran)",
                        )),
                        Ok(n) => {
                            options.max_crashes = Some(n);
                            Ok(())
                        }
                        Err(e) => Err(e),
                    },
                    other => Err(syn::Error::new_spanned(
                        other,
                        "`max_crashes` takes a whole number, e.g. `max_crashes = 5`",
                    )),
                },
                "backoff" => string(&nv.value, "backoff", "\"polynomial\"").and_then(|s| {
                    options.backoff = Some(match s.value().as_str() {
                        "exponential" => Backoff::Exponential,
                        "polynomial" => Backoff::Polynomial,
                        other => {
                            return Err(syn::Error::new_spanned(
                                &s,
                                format!(
                                "unknown backoff `{other}`; use \"exponential\" (2 s, doubling, \
                                     at most 1 h) or \"polynomial\" (retry⁴ + 15 s, at most 1 day)"
                            ),
                            ))
                        }
                    });
                    Ok(())
                }),
                "on_exhausted" => string(&nv.value, "on_exhausted", "\"delete\"").and_then(|s| {
                    options.on_exhausted = Some(match s.value().as_str() {
                        "fail" => OnExhausted::Fail,
                        "delete" => OnExhausted::Delete,
                        other => {
                            return Err(syn::Error::new_spanned(
                                &s,
                                format!(
                                "unknown `on_exhausted` policy `{other}`; use \"fail\" (keep the \
                                     job as Failed) or \"delete\" (drop it as Deleted)"
                            ),
                            ))
                        }
                    });
                    Ok(())
                }),
                _ => string(&nv.value, "timeout", "\"30s\"").and_then(|s| {
                    let duration = humantime::parse_duration(&s.value()).map_err(|e| {
                        syn::Error::new_spanned(
                            &s,
                            format!(
                                "`{}` is not a duration ({e}); write it like \"30s\", \"500ms\", \
                                 \"5m\" or \"1h 30m\"",
                                s.value()
                            ),
                        )
                    })?;
                    if duration.is_zero() {
                        return Err(syn::Error::new_spanned(
                            &s,
                            "the timeout must be longer than zero",
                        ));
                    }
                    options.timeout = Some(duration);
                    Ok(())
                }),
            };
            if let Err(e) = result {
                push(e);
            }
        }
        match errors {
            Some(e) => Err(e),
            None => Ok(options),
        }
    }
}

pub(crate) fn string(value: &Expr, key: &str, example: &str) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` takes a string literal, e.g. `{key} = {example}`"),
        )),
    }
}
