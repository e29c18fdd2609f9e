//! Procedural macros of the `jobs` crate. Depend on `jobs` and use them from there:
//! `jobs::background_job`, `jobs::enqueue!`, `jobs::job!`, `jobs::schedule!`.
//!
//! This crate parses and expands; it holds no runtime logic. Generated code reaches everything
//! through `::jobs::__private`, so users never add serde, inventory or futures themselves.

mod call;
mod expand;
mod flow_options;
mod options;
mod signature;

use proc_macro::TokenStream;

/// (`background_job` is implemented in `jobs-macros`; depend on `jobs` and use it from there,
/// where it is documented with examples.)
#[proc_macro_attribute]
pub fn background_job(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::background_job(args.into(), item.into()).into()
}

/// (`enqueue!` is implemented in `jobs-macros`: `enqueue!(f(args))` or
/// `enqueue!(&client, f(args))`; use it as `jobs::enqueue!`.)
#[proc_macro]
pub fn enqueue(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as call::EnqueueInput);
    call::expand_enqueue(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// (`schedule!` is implemented in `jobs-macros`: `schedule!(f(args), in = duration)` or
/// `schedule!(&client, f(args), at = system_time)`; use it as `jobs::schedule!`.)
#[proc_macro]
pub fn schedule(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as call::ScheduleInput);
    call::expand_schedule(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// (`job!` is implemented in `jobs-macros`: `job!(f(args))` builds a job without storing it;
/// use it as `jobs::job!`.)
#[proc_macro]
pub fn job(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as call::JobCall);
    call::expand_job(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
