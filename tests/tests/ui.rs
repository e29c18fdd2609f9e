//! Compile-time checks of the macros: every file in `tests/ui/` is one mistake a user can make,
//! with the error they must see next to it; `tests/ui/pass/` must compile.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
    t.pass("ui/pass/*.rs");
}
