//! The access check in front of every route: which scope the matched route needs (from its
//! API's route table), what the request's key allows, and the server's read-only switch.
//! Keys read from a file are read again when the file changes or on SIGHUP.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{KeyError, Keys, Scope};
use crate::compat::wire::NpError;
use crate::error::ApiError;

/// How often a key file is looked at for changes.
const KEY_FILE_POLL: Duration = Duration::from_secs(1);

/// Who may do what on a server. Defaults: no keys, read and write routes served; without keys
/// a server listens on loopback only unless `insecure_no_auth`.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// A key file (`NAME SCOPE sha256:HEX` lines), read again when it changes or on SIGHUP.
    pub key_file: Option<PathBuf>,
    /// Keys given in plain text (e.g. from the environment), kept as digests.
    pub keys: Keys,
    /// Serve only the routes a read key may use, whatever the key.
    pub read_only: bool,
    /// Listen beyond loopback without keys.
    pub insecure_no_auth: bool,
}

/// A route table: method (lowercase), path as the router names it, the scope it needs.
pub(crate) type Table = &'static [(&'static str, &'static str, Scope)];

/// Which error body a refusal takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// tartan's `{"error": {code, message}}`.
    Tartan,
    /// next-plaid's `{code, message, error}`.
    NextPlaid,
}

/// The check's state, shared by every request.
#[derive(Debug)]
pub(crate) struct Guard {
    table: Table,
    shape: Shape,
    read_only: bool,
    /// Keys given directly, always accepted.
    fixed: Keys,
    file: Option<PathBuf>,
    /// The file's modification time when last read.
    stamp: Mutex<Option<SystemTime>>,
    /// `fixed` and the file's keys together.
    current: ArcSwap<Keys>,
}

impl Guard {
    /// The guard of an API with route table `table`; reads the key file now.
    pub(crate) fn new(access: &Access, table: Table, shape: Shape) -> Result<Self, KeyError> {
        let g = Self {
            table,
            shape,
            read_only: access.read_only,
            fixed: access.keys.clone(),
            file: access.key_file.clone(),
            stamp: Mutex::new(None),
            current: ArcSwap::from_pointee(access.keys.clone()),
        };
        g.reload(true)?;
        Ok(g)
    }

    /// Whether requests need keys: with a key file they always do, even when it holds none
    /// (a key file that empties does not open the server).
    pub(crate) fn keyed(&self) -> bool {
        !self.fixed.is_empty() || self.file.is_some()
    }

    /// Reads the key file again if it changed (or always, with `force`). A file that cannot be
    /// read or parsed leaves the keys as they were and says why.
    pub(crate) fn reload(&self, force: bool) -> Result<bool, KeyError> {
        let Some(path) = &self.file else { return Ok(false) };
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(|source| KeyError::Io { path: path.clone(), source })?;
        let mut stamp = self.stamp.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !force && *stamp == Some(modified) {
            return Ok(false);
        }
        let from_file = Keys::load(path)?;
        let mut all = self.fixed.clone();
        all.extend(from_file);
        self.current.store(Arc::new(all));
        *stamp = Some(modified);
        Ok(true)
    }

    /// The scope `method path` needs: `None` for a route missing from the table (refused: a
    /// route must be listed to be reachable).
    fn needs(&self, method: &str, path: &str) -> Option<Scope> {
        let method = if method == "head" { "get" } else { method };
        self.table.iter().find(|(m, p, _)| *m == method && *p == path).map(|r| r.2)
    }

    /// A refusal in the API's own error form.
    fn refuse(&self, status: StatusCode, code: &'static str, message: String) -> Response {
        let mut r = match self.shape {
            Shape::Tartan => ApiError::new(status, code, message).into_response(),
            Shape::NextPlaid => {
                let np_code = match status {
                    StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
                    StatusCode::FORBIDDEN => "FORBIDDEN",
                    _ => "INTERNAL_ERROR",
                };
                NpError::new(status, np_code, message).into_response()
            }
        };
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// The middleware: lets a request through only with what its route needs.
pub(crate) async fn check(
    State(g): State<Arc<Guard>>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    // Unknown paths go on to the 404 answer; a known path with another method to the 405.
    let Some(path) = matched.as_ref().map(MatchedPath::as_str) else {
        return next.run(req).await;
    };
    let method = req.method().as_str().to_ascii_lowercase();
    let Some(need) = g.needs(&method, path) else {
        if g.table.iter().any(|(_, p, _)| *p == path) {
            return next.run(req).await;
        }
        return g.refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{} {path} has no scope in the route table", method.to_uppercase()),
        );
    };
    let what = format!("{} {path}", method.to_uppercase());
    if g.read_only && need > Scope::Read {
        return g.refuse(
            StatusCode::FORBIDDEN,
            "read_only",
            format!("this server is read-only: {what} changes data"),
        );
    }
    if !g.keyed() {
        return next.run(req).await;
    }
    let presented =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
    let Some(presented) = presented else {
        return g.refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("{what} needs a key: send Authorization: Bearer KEY"),
        );
    };
    let keys = g.current.load();
    match keys.check(presented) {
        None => g.refuse(StatusCode::UNAUTHORIZED, "unauthorized", "unknown key".into()),
        Some((name, scope)) if scope < need => g.refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("key {name:?} has scope {scope}; {what} needs {need}"),
        ),
        Some(_) => next.run(req).await,
    }
}

/// The credentials of an `Authorization: Bearer KEY` value (the scheme's case is free, as
/// HTTP says).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim()).filter(|k| !k.is_empty())
}

/// Reads the key file again when it changes, and on SIGHUP.
pub(crate) async fn reload_keys(guards: Vec<Arc<Guard>>) {
    if guards.iter().all(|g| g.file.is_none()) {
        return;
    }
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let forced = match hup.as_mut() {
            Some(h) => tokio::select! {
                _ = h.recv() => true,
                () = tokio::time::sleep(KEY_FILE_POLL) => false,
            },
            None => {
                tokio::time::sleep(KEY_FILE_POLL).await;
                false
            }
        };
        #[cfg(not(unix))]
        let forced = {
            tokio::time::sleep(KEY_FILE_POLL).await;
            false
        };
        for g in &guards {
            // A bad file keeps the keys as they were; the next change is tried again.
            let _ = g.reload(forced);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn bearer_credentials_in_any_case() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("BEARER abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearerabc"), None);
    }
}
