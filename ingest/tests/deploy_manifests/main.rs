//! The deployment files only set settings the binaries accept and only run subcommands
//! `payhook-ingest` has. The consumer's subcommands are checked in the consumer's tests.

mod scan;

use std::collections::BTreeSet;

use clap::{CommandFactory, Parser};
use payhook::config::{ENV_ALIASES, Settings};

use scan::{DeployFile, deploy_files, env_names, unknown_subcommands, workspace_root};

const INGEST: &str = env!("CARGO_BIN_EXE_payhook-ingest");

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
}

/// Names the binaries read: every `env` of the shared settings, both sides of each alias,
/// and anything the ingest binary's own help lists (flags it defines beyond the settings).
fn accepted_env_names() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = Cli::command()
        .get_arguments()
        .filter_map(|argument| argument.get_env())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    for (alias, own) in ENV_ALIASES {
        names.insert(alias.to_string());
        names.insert(own.to_string());
    }
    names.extend(scan::help_env_names(
        INGEST,
        &["run", "migrate", "send-test"],
    ));
    names
}

fn unknown_env_names(files: &[DeployFile], accepted: &BTreeSet<String>) -> Vec<String> {
    let mut unknown = Vec::new();
    for file in files {
        for name in env_names(&file.text) {
            // The test suite's own variables configure test runs, not the binaries.
            if name.starts_with("PAYHOOK_TEST_") {
                continue;
            }
            if !accepted.contains(&name) {
                unknown.push(format!("{} in {}", name, file.path.display()));
            }
        }
    }
    unknown
}

#[test]
fn deployment_env_names_are_accepted() {
    let files = deploy_files(&workspace_root());
    let accepted = accepted_env_names();
    assert!(
        accepted.contains("PAYHOOK_DATABASE_URL"),
        "settings not read from clap: {accepted:?}"
    );
    let used: BTreeSet<String> = files.iter().flat_map(|f| env_names(&f.text)).collect();
    assert!(
        used.contains("PAYHOOK_AMQP_URL") && used.contains("PAYHOOK_ADMIN_TOKEN"),
        "the deployment files set fewer settings than expected: {used:?}"
    );

    let unknown = unknown_env_names(&files, &accepted);

    assert!(
        unknown.is_empty(),
        "settings the binaries do not accept:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn deployment_ingest_subcommands_exist() {
    let files = deploy_files(&workspace_root());
    let run: BTreeSet<String> = files
        .iter()
        .flat_map(|f| scan::subcommands(&scan::command_text(f), "payhook-ingest"))
        .collect();
    assert!(
        run.contains("migrate") && run.contains("run") && run.contains("send-test"),
        "expected run, migrate and send-test in the deployment files, found {run:?}"
    );

    let unknown = unknown_subcommands(&files, "payhook-ingest", INGEST);

    assert!(
        unknown.is_empty(),
        "payhook-ingest subcommands that do not exist: {unknown:?}"
    );
}

#[test]
fn scanner_flags_unknown_names_and_subcommands() {
    let file = DeployFile {
        path: "k8s/example.yaml".into(),
        text: concat!(
            "env:\n",
            "  - name: PAYHOOK_NOT_A_SETTING\n",
            "  - name: PAYHOOK_DATABASE_URL\n",
            "  - name: EXTRA_PAYHOOK_IGNORED\n",
            "command: [\"payhook-ingest\", \"frobnicate\"]\n",
            "image: registry.example.com/payhook-ingest:1\n",
        )
        .to_string(),
    };
    let files = [file];

    let unknown_names = unknown_env_names(&files, &accepted_env_names());
    let unknown_commands = unknown_subcommands(&files, "payhook-ingest", INGEST);

    assert_eq!(
        unknown_names,
        vec!["PAYHOOK_NOT_A_SETTING in k8s/example.yaml".to_string()]
    );
    assert_eq!(
        unknown_commands,
        vec![("k8s/example.yaml".into(), "frobnicate".to_string())]
    );
}
