//! `enqueue!`, `schedule!` and `job!`: a call of a job function, written as a plain call, turned
//! into its invocation struct and (for the first two) stored.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{token, Expr, ExprCall, ExprPath, Token};

const EXAMPLE: &str =
    "like `enqueue!(send_email(user_id))` or `enqueue!(&client, send_email(user_id))`";

/// A call of a job function: `path::to::job(arg, ...)`.
pub(crate) struct JobCall {
    path: ExprPath,
    paren: token::Paren,
    args: Punctuated<Expr, Token![,]>,
    /// The whole call as written, for errors about it.
    tokens: TokenStream,
}

impl JobCall {
    fn from_expr(expr: Expr) -> syn::Result<JobCall> {
        let tokens = expr.to_token_stream();
        match expr {
            Expr::Paren(p) => JobCall::from_expr(*p.expr),
            Expr::Call(ExprCall {
                func,
                args,
                paren_token,
                ..
            }) => match *func {
                Expr::Path(path) if path.qself.is_none() => {
                    if let Some(seg) = path.path.segments.iter().find(|s| !s.arguments.is_empty()) {
                        return Err(syn::Error::new_spanned(
                            &seg.arguments,
                            "job functions are not generic: remove the type arguments",
                        ));
                    }
                    Ok(JobCall {
                        path,
                        paren: paren_token,
                        args,
                        tokens,
                    })
                }
                other => Err(syn::Error::new_spanned(
                    other,
                    format!("expected the name of a `#[background_job]` function here, {EXAMPLE}"),
                )),
            },
            Expr::MethodCall(m) => Err(syn::Error::new_spanned(
                &m.method,
                format!("a method cannot be a job: call a `#[background_job]` function, {EXAMPLE}"),
            )),
            other => Err(syn::Error::new_spanned(
                other,
                format!("expected a call of a `#[background_job]` function, {EXAMPLE}"),
            )),
        }
    }

    /// `path::to::job::__new(args)`: type-checks each argument against the job's parameter.
    /// The parentheses keep the user's span, so rustc's "provide the argument" suggestions
    /// rewrite the call as written.
    fn invocation(&self) -> TokenStream {
        let path = &self.path;
        let last = path
            .path
            .segments
            .last()
            .map_or_else(|| path.span(), |s| s.ident.span());
        let new = format_ident!("__new", span = last);
        let mut args = TokenStream::new();
        self.paren
            .surround(&mut args, |tokens| self.args.to_tokens(tokens));
        let call = quote_spanned! {last=> #path::#new #args };
        // A block of this macro's own: lints such as clippy's `redundant_closure` then see
        // `|i| job!(f(i))` as macro output and leave it alone.
        quote!({ #call })
    }
}

impl Parse for JobCall {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let expr: Expr = input.parse()?;
        let call = JobCall::from_expr(expr)?;
        let _ = input.parse::<Option<Token![,]>>()?;
        Ok(call)
    }
}

/// `[client,] call`
pub(crate) struct EnqueueInput {
    client: Option<Expr>,
    call: JobCall,
}

fn parse_client_and_call(input: ParseStream<'_>) -> syn::Result<(Option<Expr>, JobCall)> {
    if input.is_empty() {
        return Err(input.error(format!("expected a job call, {EXAMPLE}")));
    }
    let first: Expr = input.parse()?;
    if input.peek(Token![,]) && !input.peek2(Token![in]) && !peek_at(input) {
        input.parse::<Token![,]>()?;
        if input.is_empty() {
            return Ok((None, JobCall::from_expr(first)?));
        }
        let second: Expr = input.parse()?;
        return Ok((Some(first), JobCall::from_expr(second)?));
    }
    Ok((None, JobCall::from_expr(first)?))
}

fn peek_at(input: ParseStream<'_>) -> bool {
    let fork = input.fork();
    fork.parse::<Token![,]>().is_ok()
        && fork.parse::<syn::Ident>().is_ok_and(|i| i == "at")
        && fork.peek(Token![=])
}

impl Parse for EnqueueInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let (client, call) = parse_client_and_call(input)?;
        let _ = input.parse::<Option<Token![,]>>()?;
        if !input.is_empty() {
            return Err(input.error(format!(
                "unexpected tokens after the job call; write it {EXAMPLE}"
            )));
        }
        Ok(EnqueueInput { client, call })
    }
}

/// When a scheduled job is due.
enum When {
    In(Expr),
    At(Expr),
}

/// `[client,] call, in = duration` or `[client,] call, at = time`
pub(crate) struct ScheduleInput {
    client: Option<Expr>,
    call: JobCall,
    when: When,
}

impl Parse for ScheduleInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let (client, call) = parse_client_and_call(input)?;
        let missing = "`schedule!` needs to know when the job is due: add `, in = <Duration>` or \
                       `, at = <SystemTime>` after the job call, like \
                       `schedule!(send_email(user_id), in = Duration::from_secs(60))`";
        if input.parse::<Option<Token![,]>>()?.is_none() || input.is_empty() {
            return Err(syn::Error::new_spanned(&call.tokens, missing));
        }
        let when = if input.peek(Token![in]) {
            input.parse::<Token![in]>()?;
            input.parse::<Token![=]>()?;
            When::In(input.parse()?)
        } else if input.peek(syn::Ident)
            && input.fork().parse::<syn::Ident>().is_ok_and(|i| i == "at")
        {
            input.parse::<syn::Ident>()?;
            input.parse::<Token![=]>()?;
            When::At(input.parse()?)
        } else {
            return Err(input.error(missing));
        };
        let _ = input.parse::<Option<Token![,]>>()?;
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the due time"));
        }
        Ok(ScheduleInput { client, call, when })
    }
}

pub(crate) fn expand_job(call: &JobCall) -> syn::Result<TokenStream> {
    Ok(call.invocation())
}

pub(crate) fn expand_enqueue(input: &EnqueueInput) -> syn::Result<TokenStream> {
    let invocation = input.call.invocation();
    Ok(match &input.client {
        Some(client) => quote!((#client).enqueue(#invocation)),
        None => quote!(::jobs::__private::enqueue_ambient(#invocation)),
    })
}

pub(crate) fn expand_schedule(input: &ScheduleInput) -> syn::Result<TokenStream> {
    let invocation = input.call.invocation();
    Ok(match (&input.client, &input.when) {
        (Some(c), When::In(d)) => quote!((#c).schedule_in(#invocation, #d)),
        (Some(c), When::At(t)) => quote!((#c).schedule_at(#invocation, #t)),
        (None, When::In(d)) => quote!(::jobs::__private::schedule_ambient_in(#invocation, #d)),
        (None, When::At(t)) => quote!(::jobs::__private::schedule_ambient_at(#invocation, #t)),
    })
}
