// PLACEHOLDER: helper-1 replaces this file.
fn main() {}
