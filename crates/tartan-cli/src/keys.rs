//! `tartan keys`: API keys for `tartan serve --api-keys FILE`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use rand::RngCore;
use tartan_server::{Keys, Scope};

/// `tartan keys ...`.
#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Make a random key, append its hashed line to FILE (created, readable by its owner
    /// only) and print the key: the only time it is shown.
    New {
        /// The key file `tartan serve --api-keys` reads.
        file: PathBuf,
        /// The key's name (one word; shown in refusals and logs, never the key).
        #[arg(long)]
        name: String,
        /// What it may do: read (search, explain, stats), write (also change documents),
        /// admin (everything).
        #[arg(long)]
        scope: String,
    },
}

pub fn run(c: &KeysCmd) -> Result<()> {
    match c {
        KeysCmd::New { file, name, scope } => {
            let scope: Scope = scope.parse()?;
            if file.exists() && Keys::load(file)?.has_name(name) {
                bail!("{} already has a key named {name:?}", file.display());
            }
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let key = format!("tartan_{hex}");
            let line = Keys::line(name, scope, &key)?;
            let mut f = open_private(file)?;
            writeln!(f, "{line}").with_context(|| format!("writing {}", file.display()))?;
            f.sync_all()?;
            outln!("{key}");
            eprintln!(
                "added key {name:?} ({scope}) to {}; keep the key above, it is not stored",
                file.display()
            );
            Ok(())
        }
    }
}

/// Opens `path` for appending, created readable and writable by its owner only.
fn open_private(path: &std::path::Path) -> Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).with_context(|| format!("opening {}", path.display()))
}
