//! Every default a user reads — the CLI's help, the Python stubs, docs/params.md — is the one
//! `tartan::settings` states.

mod common;

use std::path::Path;

use common::ok;
use tartan::settings;

/// The `[default: …]` that `tartan <command> --help` shows for `--flag`.
fn help_default(command: &str, flag: &str) -> String {
    let help = ok(&[command, "--help"]);
    let start = help
        .find(&format!("--{flag} "))
        .or_else(|| help.find(&format!("--{flag}\n")))
        .unwrap_or_else(|| panic!("tartan {command} --help has no --{flag}:\n{help}"));
    // The flag's entry runs to the next option.
    let rest = &help[start + 2..];
    let end = rest.find("\n  -").unwrap_or(rest.len());
    let entry = &rest[..end];
    let at = entry
        .find("[default: ")
        .unwrap_or_else(|| panic!("--{flag} of {command} shows no default:\n{entry}"));
    let value = &entry[at + "[default: ".len()..];
    value[..value.find(']').expect("closed")].to_string()
}

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `name: type = value` default of a function or method `name` in the Python stubs.
fn stub_defaults(stubs: &str, function: &str, param: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = stubs;
    while let Some(at) = rest.find(&format!("def {function}(")) {
        let body = &rest[at..];
        let end = body.find(") ->").expect("a stub ends its parameters");
        for part in params(&body[..end]) {
            let part = part.trim();
            if part.starts_with(&format!("{param}:")) {
                if let Some((_, v)) = part.split_once(" = ") {
                    out.push(v.trim().trim_matches('"').to_string());
                }
            }
        }
        rest = &body[end..];
    }
    out
}

/// The parameters of a stub's parameter list, split at top-level commas (a default such as
/// `Literal["a", "b"]` holds commas of its own).
fn params(list: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in list.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            ',' if depth == 1 => {
                out.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&list[start..]);
    out
}

/// The default column of `docs/params.md`'s row for `name`.
fn params_md_default(md: &str, name: &str) -> String {
    let row = md
        .lines()
        .find(|l| l.starts_with(&format!("| {name} ")))
        .unwrap_or_else(|| panic!("docs/params.md has no row for {name}"));
    row.split('|').nth(2).expect("a default column").trim().to_string()
}

#[test]
fn cli_help_shows_the_settings_defaults() {
    let nbits = settings::DEFAULT_NBITS.to_string();
    let iters = settings::DEFAULT_KMEANS_ITERS.to_string();
    let seed = settings::DEFAULT_SEED.to_string();
    for command in ["index", "train"] {
        assert_eq!(help_default(command, "nbits"), nbits, "{command}");
        assert_eq!(help_default(command, "kmeans-iters"), iters, "{command}");
        assert_eq!(help_default(command, "seed"), seed, "{command}");
        assert_eq!(help_default(command, "buckets"), settings::DEFAULT_BUCKETS.name(), "{command}");
    }
    assert_eq!(help_default("retrain", "kmeans-iters"), iters);
    assert_eq!(help_default("retrain", "seed"), seed);
    assert_eq!(help_default("sweep", "seed"), seed);
    let deadline = settings::DEFAULT_DEADLINE_MS.to_string();
    assert_eq!(help_default("search", "deadline-ms"), deadline);
    assert_eq!(help_default("serve", "deadline-ms"), deadline);
    let run_k = settings::DEFAULT_RUN_K.to_string();
    assert_eq!(help_default("exact", "k"), run_k);
    assert_eq!(help_default("sweep", "k"), run_k);
    let search_k = help_default("search", "k");
    assert_eq!(search_k, format!("{run_k}; {} with --query", settings::DEFAULT_K));
    let depth = settings::DEFAULT_RERANK_DEPTH.to_string();
    assert_eq!(help_default("search", "rerank-depth"), depth);
}

#[test]
fn python_stubs_show_the_settings_defaults() {
    let stubs = repo_file("crates/tartan-py/python/tartan/_tartan.pyi");
    let want = [
        ("build", "nbits", settings::DEFAULT_NBITS.to_string(), 1),
        ("build", "kmeans_iters", settings::DEFAULT_KMEANS_ITERS.to_string(), 1),
        ("build", "seed", settings::DEFAULT_SEED.to_string(), 1),
        ("build", "buckets", settings::DEFAULT_BUCKETS.name().to_string(), 1),
        ("train_codebook", "nbits", settings::DEFAULT_NBITS.to_string(), 1),
        ("train_codebook", "kmeans_iters", settings::DEFAULT_KMEANS_ITERS.to_string(), 1),
        ("train_codebook", "seed", settings::DEFAULT_SEED.to_string(), 1),
        ("train_codebook", "buckets", settings::DEFAULT_BUCKETS.name().to_string(), 1),
        ("open", "deadline_ms", settings::DEFAULT_DEADLINE_MS.to_string(), 1),
        // Index.search and Index.search_batch.
        ("search", "k", settings::DEFAULT_K.to_string(), 1),
        ("search_batch", "k", settings::DEFAULT_K.to_string(), 2),
    ];
    for (function, param, value, n) in want {
        let got = stub_defaults(&stubs, function, param);
        assert_eq!(got.len(), n, "{function}({param}=…) in the stubs: {got:?}");
        assert!(
            got.iter().all(|g| *g == value),
            "{function}({param}): stubs {got:?}, settings {value}"
        );
    }
}

#[test]
fn params_md_shows_the_settings_defaults() {
    let md = repo_file("docs/params.md");
    assert_eq!(params_md_default(&md, "`nbits`"), settings::DEFAULT_NBITS.to_string());
    assert_eq!(
        params_md_default(&md, "`kmeans_iters`"),
        settings::DEFAULT_KMEANS_ITERS.to_string()
    );
    assert_eq!(params_md_default(&md, "`seed`"), settings::DEFAULT_SEED.to_string());
    assert_eq!(
        params_md_default(&md, "`buckets`"),
        format!("`{}`", settings::DEFAULT_BUCKETS.name())
    );
    let ms = settings::DEFAULT_DEADLINE_MS;
    let shown = format!("{},{:03} ms", ms / 1000, ms % 1000);
    assert_eq!(params_md_default(&md, "deadline"), shown);
}
