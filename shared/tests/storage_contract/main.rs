//! Contract tests for every `Store` backend, written once against `Arc<dyn Store>`.
//!
//! Each case runs once per backend, on a database of its own:
//! - SQLite always, on a file in a fresh temporary directory.
//! - PostgreSQL when `PAYHOOK_TEST_POSTGRES_URL` is set. Each case creates a database named
//!   `payhook_test_<random>` through that URL, migrates it, and drops it afterwards.
//! - SQL Server when `PAYHOOK_TEST_MSSQL_URL` is set (a `mssql://` URL or an ADO.NET
//!   string). Each case creates a database named `payhook_test_<random>` through that
//!   connection, migrates it, and drops it afterwards.
//!
//! This binary uses its own small runner (`harness = false`) instead of libtest. A backend
//! without a URL prints one line such as `postgres: skipped (PAYHOOK_TEST_POSTGRES_URL not
//! set)` and none of its cases run or count as passed, which `#[test]` functions could
//! not express: they can only pass or be ignored at compile time. The runner accepts a
//! substring filter as its first free argument (`cargo test --test storage_contract --
//! claim`), names every case `backend::case`, and exits with status 1 when a case fails.

mod backends;
mod cases;
mod support;

use std::process::ExitCode;
use std::time::Instant;

use backends::Backend;

fn main() -> ExitCode {
    let filter = std::env::args()
        .skip(1)
        .find(|argument| !argument.starts_with('-'));
    let list_only = std::env::args().any(|argument| argument == "--list");
    let mut passed = 0;
    let mut failed = Vec::new();
    let mut filtered_out = 0;
    for backend in Backend::ALL {
        if let Some(reason) = backend.skip_reason() {
            println!("{}: skipped ({reason})", backend.name());
            continue;
        }
        for (case_name, case) in cases::ALL {
            let name = format!("{}::{case_name}", backend.name());
            if filter
                .as_ref()
                .is_some_and(|filter| !name.contains(filter.as_str()))
            {
                filtered_out += 1;
                continue;
            }
            if list_only {
                println!("{name}: test");
                continue;
            }
            let started = Instant::now();
            match backend.run(*case) {
                Ok(()) => {
                    passed += 1;
                    println!("test {name} ... ok ({} ms)", started.elapsed().as_millis());
                }
                Err(message) => {
                    println!("test {name} ... FAILED: {message}");
                    failed.push(name);
                }
            }
        }
    }
    if list_only {
        return ExitCode::SUCCESS;
    }
    println!();
    for name in &failed {
        println!("failed: {name}");
    }
    println!(
        "storage contract: {passed} passed; {} failed; {filtered_out} filtered out",
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
