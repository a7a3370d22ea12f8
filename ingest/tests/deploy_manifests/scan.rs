//! Reads the deployment files (Dockerfile, compose/, k8s/, docs/DEPLOYMENT.md) and extracts
//! the settings they set and the subcommands they run. Shared by the ingest and consumer
//! test binaries, each of which checks the subcommands of its own binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Prefixes of the environment variable names the binaries read.
pub const ENV_PREFIXES: [&str; 3] = [
    "PAYHOOK_",
    "ConnectionStrings__",
    "WebhookProcessorSettings__",
];

/// One deployment file with its text.
pub struct DeployFile {
    pub path: PathBuf,
    pub text: String,
}

/// Returns the workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace root")
        .to_path_buf()
}

/// Reads every deployment file under `root`. Panics when an expected location is missing, so
/// a moved directory cannot silently empty the check.
pub fn deploy_files(root: &Path) -> Vec<DeployFile> {
    let mut paths = vec![root.join("Dockerfile"), root.join("docs/DEPLOYMENT.md")];
    for directory in ["compose", "k8s"] {
        let directory = root.join(directory);
        assert!(directory.is_dir(), "{} is missing", directory.display());
        collect(&directory, &mut paths);
    }
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
            DeployFile { path, text }
        })
        .collect()
}

fn collect(directory: &Path, paths: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(directory)
        .unwrap_or_else(|e| panic!("failed to list {}: {e}", directory.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            collect(&path, paths);
        } else if name.ends_with(".yaml") || name.ends_with(".yml") || name == ".env.example" {
            paths.push(path);
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Returns every environment variable name with one of [`ENV_PREFIXES`] that appears in
/// `text` as a whole word.
pub fn env_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ENV_PREFIXES {
        for (start, _) in text.match_indices(prefix) {
            if text[..start].chars().next_back().is_some_and(is_word_char) {
                continue;
            }
            let rest = &text[start..];
            let end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
            names.insert(rest[..end].to_string());
        }
    }
    names
}

/// Returns the subcommands run after `binary` in `text`: the bare lower-case word that follows
/// the binary name, separated only by spaces, quotes or commas (as in `["payhook-ingest",
/// "migrate"]` or `payhook-ingest send-test FILE`). Paths ending in the binary name and
/// longer names that start with it are not invocations.
pub fn subcommands(text: &str, binary: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (start, _) in text.match_indices(binary) {
        let before = text[..start].chars().next_back();
        if before.is_some_and(|c| is_word_char(c) || matches!(c, '-' | '/' | '.')) {
            continue;
        }
        let rest = &text[start + binary.len()..];
        if rest
            .chars()
            .next()
            .is_some_and(|c| is_word_char(c) || matches!(c, '-' | '/' | '.' | ':'))
        {
            continue;
        }
        let rest = rest.trim_start_matches([' ', '"', '\'', ',']);
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
            .collect();
        if word.starts_with(|c: char| c.is_ascii_lowercase()) {
            found.insert(word);
        }
    }
    found
}

/// Returns the text that may contain commands: all of a manifest, but only the fenced code
/// blocks of a Markdown file, so prose naming a binary is not read as a command line.
pub fn command_text(file: &DeployFile) -> String {
    if file.path.extension().and_then(|e| e.to_str()) != Some("md") {
        return file.text.clone();
    }
    let mut inside = false;
    let mut code = String::new();
    for line in file.text.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
        } else if inside {
            code.push_str(line);
            code.push('\n');
        }
    }
    code
}

/// Returns the environment names printed in `[env: NAME=...]` by `binary --help` and by the
/// help of each subcommand in `subcommands`.
pub fn help_env_names(binary: &str, subcommands: &[&str]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut invocations = vec![vec!["--help"]];
    invocations.extend(subcommands.iter().map(|s| vec![*s, "--help"]));
    for arguments in invocations {
        let output = Command::new(binary)
            .args(&arguments)
            .output()
            .unwrap_or_else(|e| panic!("failed to run {binary}: {e}"));
        let help = String::from_utf8_lossy(&output.stdout);
        for (start, _) in help.match_indices("[env: ") {
            let rest = &help[start + "[env: ".len()..];
            let end = rest.find(['=', ']']).unwrap_or(rest.len());
            names.insert(rest[..end].to_string());
        }
    }
    names
}

/// Returns whether `binary` accepts `subcommand`, by asking for its help.
pub fn has_subcommand(binary: &str, subcommand: &str) -> bool {
    Command::new(binary)
        .args([subcommand, "--help"])
        .output()
        .unwrap_or_else(|e| panic!("failed to run {binary}: {e}"))
        .status
        .success()
}

/// Returns `(file, subcommand)` for every subcommand of `binary_name` the deployment files
/// run that `binary_path` does not accept.
pub fn unknown_subcommands(
    files: &[DeployFile],
    binary_name: &str,
    binary_path: &str,
) -> Vec<(PathBuf, String)> {
    let mut unknown = Vec::new();
    for file in files {
        for subcommand in subcommands(&command_text(file), binary_name) {
            if !has_subcommand(binary_path, &subcommand) {
                unknown.push((file.path.clone(), subcommand));
            }
        }
    }
    unknown
}
