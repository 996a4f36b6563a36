//! The golden fixtures of the repository (`tests/fixtures/`, layout in its README): one folder
//! per API, and in each a `route.json` that says where the folder's cases were sent: host,
//! method and path of each route of that API, and which case the fake upstream serves there
//! when a request names none. A case whose request went elsewhere than the first route says
//! so with a `path` of its own in its `.expected.json`.
//!
//! The fake upstream routes requests with these files, and llmtap's fixture tests read the
//! request each case stands for ([`target`]) from them: no table in code names a folder's
//! host or path.

use std::{path::PathBuf, sync::OnceLock};

use serde::Deserialize;

/// `tests/fixtures/` of the repository this crate lives in (`crates/fake-upstream/`).
pub fn dir() -> PathBuf {
    crate::repository().join("tests/fixtures")
}

/// `tests/fixtures/<folder>/<case>.<ext>`.
pub fn path(folder: &str, case: &str, ext: &str) -> PathBuf {
    dir().join(folder).join(format!("{case}.{ext}"))
}

/// One route of an API, as a folder's `route.json` lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The folder whose `route.json` lists it (not in the file).
    /// The fixture folder this route file was read from (set after reading).
    #[serde(skip)]
    pub folder: String,
    /// Where the API lives; the fake upstream's certificate names every route's host.
    pub host: String,
    /// The request method (`POST`, or `GET` for a WebSocket upgrade).
    pub method: String,
    /// The path; `{name}` stands for one non-empty segment without `/`, up to the next
    /// character of the pattern (Gemini's `/v1beta/models/{model}:generateContent`).
    pub path: String,
    /// A `key=value` pair the query must carry (Gemini's `alt=sse`); routes are tried in
    /// order, so one with a query comes before the same path without.
    #[serde(default)]
    pub query: Option<String>,
    /// A WebSocket upgrade (`GET` with `Upgrade: websocket`) rather than a plain request.
    #[serde(default)]
    pub websocket: bool,
    /// The case served when the request names none (`x-fake-scenario`) ...
    pub default: String,
    /// ... unless one of these, tried in order, matches the request body.
    #[serde(default)]
    pub default_when: Vec<When>,
}

/// A default case for requests whose body has every one of `body_true` (JSON pointers) set
/// to `true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// Top-level request-body fields that must be `true` (`stream`).
    pub body_true: Vec<String>,
    /// The case served when they are.
    pub case: String,
}

impl Route {
    /// Whether a request for `path` (and `query`) takes this route, whatever its method.
    pub fn matches(&self, path: &str, query: Option<&str>) -> bool {
        path_matches(&self.path, path)
            && self
                .query
                .as_deref()
                .is_none_or(|pair| query.is_some_and(|q| q.split('&').any(|kv| kv == pair)))
    }

    /// The case served for a request with this body when it names none.
    pub fn default_case(&self, body: &serde_json::Value) -> &str {
        self.default_when
            .iter()
            .find(|w| {
                w.body_true
                    .iter()
                    .all(|p| body.pointer(p).and_then(serde_json::Value::as_bool) == Some(true))
            })
            .map_or(&self.default, |w| &w.case)
    }
}

/// Whether `path` fits `pattern` (see [`Route::path`]).
fn path_matches(pattern: &str, path: &str) -> bool {
    let Some((prefix, rest)) = pattern.split_once('{') else {
        return pattern == path;
    };
    let Some(path) = path.strip_prefix(prefix) else {
        return false;
    };
    let (_, after) = rest
        .split_once('}')
        .unwrap_or_else(|| panic!("route.json: unclosed placeholder in {pattern:?}"));
    let end = match after.chars().next() {
        Some(next) => path.find(next),
        None => Some(path.len()),
    };
    end.is_some_and(|end| {
        let segment = &path[..end];
        !segment.is_empty() && !segment.contains('/') && path_matches(after, &path[end..])
    })
}

/// Every route of every folder, in folder-name order then file order (read once).
pub fn routes() -> &'static [Route] {
    static ROUTES: OnceLock<Vec<Route>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let mut routes = Vec::new();
        for folder in folders() {
            let file = dir().join(&folder).join("route.json");
            let text =
                std::fs::read(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
            let listed: Vec<Route> =
                serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(!listed.is_empty(), "{}: no route", file.display());
            routes.extend(listed.into_iter().map(|r| Route {
                folder: folder.clone(),
                ..r
            }));
        }
        assert!(
            !routes.is_empty(),
            "no route.json under {}",
            dir().display()
        );
        routes
    })
}

/// The fixture folders: those with a `route.json` (`prices/` is not one), sorted.
pub fn folders() -> Vec<String> {
    let mut folders: Vec<String> = std::fs::read_dir(dir())
        .unwrap_or_else(|e| panic!("read {}: {e}", dir().display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("route.json").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    folders.sort();
    folders
}

/// Every host a route names, sorted, each once.
pub fn hosts() -> Vec<String> {
    let mut hosts: Vec<String> = routes().iter().map(|r| r.host.clone()).collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The route a plain request (not a WebSocket upgrade) to `host` takes, if any: a route of
/// that host whose method and path fit, else (a host no such route names, such as
/// `127.0.0.1`) the first route in folder order whose method and path fit. So the same path
/// on two hosts (`/v1/chat/completions` on OpenAI and Moonshot, `/openai/v1/chat/completions`
/// on Azure and Groq) is served from each host's own folder.
pub fn route(host: &str, method: &str, path: &str, query: Option<&str>) -> Option<&'static Route> {
    pick(host, |r| {
        !r.websocket && r.method == method && r.matches(path, query)
    })
}

/// The route a WebSocket upgrade to `host` for `path` takes, if any (host first, as
/// [`route`]).
pub fn websocket_route(host: &str, path: &str, query: Option<&str>) -> Option<&'static Route> {
    pick(host, |r| r.websocket && r.matches(path, query))
}

fn pick(host: &str, fits: impl Fn(&Route) -> bool) -> Option<&'static Route> {
    let mut fitting = routes().iter().filter(|r| fits(r));
    let first = fitting.clone().next();
    fitting
        .find(|r| r.host.eq_ignore_ascii_case(host))
        .or(first)
}

/// The request a fixture case stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The request's host (lowercase).
    pub host: String,
    /// The request method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, if any (`alt=sse`).
    pub query: Option<String>,
}

/// Where case `case` of `folder` was sent: the `path` (query included) of its
/// `.expected.json`, else the path of the folder's first route; host and method are those of
/// the folder's route that path takes.
pub fn target(folder: &str, case: &str) -> Target {
    let file = path(folder, case, "expected.json");
    let expected: serde_json::Value = std::fs::read(&file)
        .ok()
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .unwrap_or_else(|| panic!("{}: not readable JSON", file.display()));
    let ours = || {
        routes()
            .iter()
            .filter(|r| r.folder == folder && !r.websocket)
    };
    let full = match expected.get("path") {
        Some(path) => path
            .as_str()
            .unwrap_or_else(|| panic!("{}: path is not a string", file.display()))
            .to_owned(),
        None => {
            let first = ours()
                .next()
                .unwrap_or_else(|| panic!("{folder}: no route for a plain request"));
            assert!(
                !first.path.contains('{'),
                "{}: no path of its own, and the first route of {folder} is a pattern",
                file.display()
            );
            first.path.clone()
        }
    };
    let (path, query) = match full.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (full.clone(), None),
    };
    let route = ours()
        .find(|r| r.matches(&path, query.as_deref()))
        .unwrap_or_else(|| panic!("{}: {full} takes no route of {folder}", file.display()));
    Target {
        host: route.host.clone(),
        method: route.method.clone(),
        path,
        query,
    }
}

/// The status a case is served with: `NNN` for a case named `error_NNN`, else 200.
pub fn status(case: &str) -> u16 {
    case.strip_prefix("error_")
        .and_then(|code| code.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(200)
}

/// Whether `name` can name a case (it comes from a request header: it must not climb out of
/// a folder).
pub(crate) fn is_case_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
