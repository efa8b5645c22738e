//! Stamps the binary with the commit it was built from, and with "+changes" when tracked
//! files differed from it, so that a run's report names the code that ran wherever the run
//! was started (the report used to ask git in the working directory at the end of the run).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let changed =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let suffix = if changed { "+changes" } else { "" };
    println!("cargo:rustc-env=TARTAN_BUILD_COMMIT={commit}{suffix}");
    // Again after a commit, a checkout or staging (HEAD, refs, index), and after any change
    // to the sources built in (a directory is scanned for modified files).
    for path in ["../../.git/HEAD", "../../.git/refs", "../../.git/index", "../../crates", "src"] {
        println!("cargo:rerun-if-changed={path}");
    }
}
