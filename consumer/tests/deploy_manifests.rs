//! The deployment files only run subcommands `payhook-consumer` has. Settings names are
//! checked in the ingest tests, which share this scanner.

// This binary uses only the subcommand half of the shared scanner.
#[allow(dead_code)]
#[path = "../../ingest/tests/deploy_manifests/scan.rs"]
mod scan;

use std::collections::BTreeSet;

const CONSUMER: &str = env!("CARGO_BIN_EXE_payhook-consumer");

#[test]
fn deployment_consumer_subcommands_exist() {
    let files = scan::deploy_files(&scan::workspace_root());
    let run: BTreeSet<String> = files
        .iter()
        .flat_map(|f| scan::subcommands(&scan::command_text(f), "payhook-consumer"))
        .collect();
    assert!(
        run.contains("run"),
        "expected the consumers to run `payhook-consumer run`, found {run:?}"
    );

    let unknown = scan::unknown_subcommands(&files, "payhook-consumer", CONSUMER);

    assert!(
        unknown.is_empty(),
        "payhook-consumer subcommands that do not exist: {unknown:?}"
    );
}
