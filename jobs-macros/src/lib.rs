//! Procedural macros of the `jobs` crate. Depend on `jobs` and use them from there:
//! `jobs::background_job`, `jobs::enqueue!`, `jobs::job!`, `jobs::schedule!`.
//!
//! This crate parses and expands; it holds no runtime logic. Generated code reaches everything
//! through `::jobs::__private`, so users never add serde, inventory or futures themselves.

mod call;
mod expand;
mod options;
mod signature;

use proc_macro::TokenStream;

/// Turns a function into a background job.
///
/// See the `jobs` crate's documentation of this macro for the full story.
#[proc_macro_attribute]
pub fn background_job(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::background_job(args.into(), item.into()).into()
}

/// Stores a call of a job function: `enqueue!(f(args))` or `enqueue!(&client, f(args))`.
#[proc_macro]
pub fn enqueue(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as call::EnqueueInput);
    call::expand_enqueue(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Stores a call of a job function to run later:
/// `schedule!(f(args), in = duration)` or `schedule!(&client, f(args), at = system_time)`.
#[proc_macro]
pub fn schedule(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as call::ScheduleInput);
    call::expand_schedule(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Builds the invocation of a job function without storing it: `job!(f(args))`.
#[proc_macro]
pub fn job(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as call::JobCall);
    call::expand_job(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
