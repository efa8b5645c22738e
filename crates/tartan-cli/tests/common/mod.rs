//! Running the `tartan` binary from the integration tests.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::process::{Command, Output};

pub fn tartan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tartan")).args(args).output().expect("tartan runs")
}

/// Runs `tartan args`, which must succeed; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = tartan(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tartan {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `tartan args`, which must fail cleanly (exit 1, no panic); returns its stderr.
pub fn fails(args: &[&str]) -> String {
    let out = tartan(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "tartan {args:?} should fail");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// A `tartan serve` process on 127.0.0.1 (an ephemeral port), killed when dropped.
pub struct Served {
    pub child: std::process::Child,
    pub url: String,
    pub stdout: std::sync::mpsc::Receiver<String>,
}

impl Served {
    /// Starts `tartan serve path --addr 127.0.0.1:0 extra...` and waits (60 s at most) for
    /// the address it prints.
    pub fn start(path: &std::path::Path, extra: &[&str]) -> Self {
        let mut args = vec![path.to_str().expect("a UTF-8 path")];
        args.extend_from_slice(extra);
        Self::start_with(&args)
    }

    /// Starts `tartan serve args... --addr 127.0.0.1:0` and waits (60 s at most) for the
    /// address it prints.
    pub fn start_with(args: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_tartan"))
            .arg("serve")
            .args(args)
            .args(["--addr", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tartan serve starts");
        let out = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("tartan serve printed its address within 60 s");
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .to_string();
        Self { child, url, stdout: rx }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -TERM failed");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP call (30 s at most); returns the status and the JSON body.
pub fn call(method: &str, url: &str, body: Option<&serde_json::Value>) -> (u16, serde_json::Value) {
    call_raw(method, url, body.map(|b| b.to_string().into_bytes()))
}

/// One HTTP call with a raw body.
pub fn call_raw(method: &str, url: &str, body: Option<Vec<u8>>) -> (u16, serde_json::Value) {
    let req = ureq::request(method, url).timeout(std::time::Duration::from_secs(30));
    let res = match body {
        Some(b) => req.set("content-type", "application/json").send_bytes(&b),
        None => req.call(),
    };
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().expect("a body");
    let json =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {url}: not JSON: {text}"));
    (status, json)
}

/// A five-document BEIR directory.
pub fn write_beir(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("qrels")).unwrap();
    let docs = [
        ("d1", "Vitamin D", "Vitamin D deficiency is associated with diabetes."),
        ("d2", "Cats", "Cats sleep for most of the day."),
        ("d3", "Rust", "Rust is a systems programming language."),
        ("d4", "Coffee", "Coffee contains caffeine, a stimulant."),
        ("d5", "Oceans", "Oceans cover most of the planet's surface."),
    ];
    let corpus: String = docs
        .iter()
        .map(|(id, t, x)| format!("{}\n", serde_json::json!({"_id": id, "title": t, "text": x})))
        .collect();
    std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
    std::fs::write(
        dir.join("queries.jsonl"),
        "{\"_id\": \"q1\", \"text\": \"does vitamin D affect diabetes\"}\n{\"_id\": \"q2\", \"text\": \"how long do cats sleep\"}\n{\"_id\": \"q3\", \"text\": \"unjudged\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("qrels/test.tsv"),
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n",
    )
    .unwrap();
}

/// The shared model directory `name`, if `../shared` has it; under CI its absence fails.
#[allow(clippy::print_stderr)] // the skip reason is printed
pub fn shared_model(name: &str) -> Option<std::path::PathBuf> {
    let d =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/models").join(name);
    if d.join("model.safetensors").exists() {
        return Some(d);
    }
    assert!(std::env::var_os("CI").is_none(), "CI must have ../shared/models/{name}");
    eprintln!("SKIPPED: ../shared/models/{name} is not present");
    None
}
