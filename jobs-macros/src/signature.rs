//! Reads a job function's signature: which parameters are serialized arguments, which are
//! injected (`#[state]`, `JobContext`), and every mistake that makes it unfit to be a job.

use syn::{FnArg, GenericArgument, ItemFn, Pat, PathArguments, Type};

pub(crate) enum Param {
    /// Stored with the job.
    Arg { ident: syn::Ident, ty: Type },
    /// Registered on the worker, handed over by type.
    State { ident: syn::Ident, ty: Type },
    /// The job's `JobContext`.
    Context,
}

pub(crate) struct Signature {
    pub(crate) params: Vec<Param>,
    pub(crate) is_async: bool,
}

/// Reads the signature and removes the `#[state]` markers from `item`, so the function stays
/// callable as written. All mistakes are collected into one error.
pub(crate) fn read(item: &mut ItemFn) -> (Option<Signature>, Option<syn::Error>) {
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    let sig = &mut item.sig;
    if let Some(c) = &sig.constness {
        push(syn::Error::new_spanned(
            c,
            "a job function cannot be `const`",
        ));
    }
    if let Some(u) = &sig.unsafety {
        push(syn::Error::new_spanned(
            u,
            "a job function cannot be `unsafe`: the worker calls it from safe code",
        ));
    }
    if let Some(abi) = &sig.abi {
        push(syn::Error::new_spanned(
            abi,
            "a job function cannot have an `extern` ABI",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        push(syn::Error::new_spanned(
            &sig.generics,
            "a job function cannot be generic: the worker must know the concrete types to \
             decode the stored arguments; write one job per concrete type",
        ));
    }
    if let Some(v) = &sig.variadic {
        push(syn::Error::new_spanned(
            v,
            "a job function cannot be variadic",
        ));
    }
    if let syn::ReturnType::Type(_, ty) = &sig.output {
        if contains_impl_trait(ty) {
            push(syn::Error::new_spanned(
                ty,
                "a job function must name its return type: return `()` or a `Result<T, E>` \
                 with a concrete `E: Display`, not `impl Trait`",
            ));
        }
    }
    let mut params = Vec::new();
    for input in &mut sig.inputs {
        let typed = match input {
            FnArg::Receiver(r) => {
                push(syn::Error::new_spanned(
                    &*r,
                    "a job function cannot take `self`: make it a free function and pass what it \
                     needs as arguments (or as `#[state]` registered on the worker)",
                ));
                continue;
            }
            FnArg::Typed(t) => t,
        };
        let before = typed.attrs.len();
        typed.attrs.retain(|a| !a.path().is_ident("state"));
        let is_state = typed.attrs.len() != before;
        let ident = match &*typed.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            other => {
                push(syn::Error::new_spanned(
                    other,
                    "job parameters must be plain names like `user_id: u64` (the name is stored \
                     with the argument)",
                ));
                continue;
            }
        };
        let ty = (*typed.ty).clone();
        if is_state {
            if let Err(e) = owned(&ty, "`#[state]` parameters") {
                push(e);
                continue;
            }
            params.push(Param::State { ident, ty });
        } else if is_context(&ty) {
            params.push(Param::Context);
        } else {
            if let Err(e) = owned(&ty, "job arguments") {
                push(e);
                continue;
            }
            params.push(Param::Arg { ident, ty });
        }
    }
    let is_async = sig.asyncness.is_some();
    let signature = errors.is_none().then_some(Signature { params, is_async });
    (signature, errors)
}

fn contains_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    syn::visit::Visit::visit_type(&mut finder, ty);
    finder.0
}

fn is_context(ty: &Type) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "JobContext" && s.arguments.is_empty()),
        _ => false,
    }
}

/// Rejects references, `impl Trait` and types with lifetimes: a job's values are stored and
/// outlive the call that enqueued them.
fn owned(ty: &Type, what: &str) -> syn::Result<()> {
    match ty {
        Type::Reference(r) => {
            let elem = &*r.elem;
            let hint = match elem {
                Type::Path(p) if p.path.is_ident("str") => {
                    "use `String` instead of `&str`".to_owned()
                }
                Type::Slice(s) => format!(
                    "use `Vec<{}>` instead of a slice reference",
                    quote::ToTokens::to_token_stream(&*s.elem)
                ),
                Type::Path(p) if p.path.is_ident("Path") => {
                    "use `PathBuf` instead of `&Path`".to_owned()
                }
                _ => format!(
                    "use an owned `{}` instead of a reference",
                    quote::ToTokens::to_token_stream(elem)
                ),
            };
            Err(syn::Error::new_spanned(
                ty,
                format!("{what} must be owned, because they are stored and used later: {hint}"),
            ))
        }
        Type::ImplTrait(_) => Err(syn::Error::new_spanned(
            ty,
            format!(
                "{what} cannot be `impl Trait`: the worker must know the concrete type; name it"
            ),
        )),
        Type::Paren(p) => owned(&p.elem, what),
        Type::Group(g) => owned(&g.elem, what),
        Type::Tuple(t) => t.elems.iter().try_for_each(|e| owned(e, what)),
        Type::Array(a) => owned(&a.elem, what),
        Type::Slice(_) | Type::TraitObject(_) => Err(syn::Error::new_spanned(
            ty,
            format!("{what} must have a known size and be owned; use e.g. `Vec<_>` or `Box<_>`"),
        )),
        Type::Path(p) => {
            for seg in &p.path.segments {
                if let PathArguments::AngleBracketed(args) = &seg.arguments {
                    for arg in &args.args {
                        match arg {
                            GenericArgument::Lifetime(l) => {
                                return Err(syn::Error::new(
                                    l.span(),
                                    format!(
                                        "{what} cannot borrow (this lifetime): they are stored \
                                         and used later; use an owned type"
                                    ),
                                ))
                            }
                            GenericArgument::Type(inner) => owned(inner, what)?,
                            _ => {}
                        }
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
