//! The call history: every finished call as a row of a SQLite database (`--db`, default
//! `~/.llmtap/llmtap.db`), its captured content apart, kept `--retain` days.
//!
//! Owns: the file (created 0600 in a 0700 directory, WAL journal), the schema and its
//! migrations (`PRAGMA user_version`), the writer thread (batched inserts in one transaction,
//! fed by a bounded queue: a full queue drops the call and counts it in
//! `llmtap_history_dropped_total`, so a slow disk never reaches traffic), retention in the
//! background, and the reads `llmtap report` and `llmtap purge` make. One row per call holds
//! the whole JSON call line (every field, as `--calls json` writes it) beside the columns the
//! lists filter and sort by; content (`--capture-content`) lives in its own table, capped as
//! spans cap it, so it can be purged alone.
//! Does not own: what a call is (`exchange`), the call line's shape (`calls::json`).

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use prometheus::IntCounter;
use rusqlite::{Connection, OptionalExtension as _, params};

use super::RateLimit;
use crate::{config::HistoryConfig, exchange::CallRecord};

/// Calls waiting for the writer before new ones are dropped (and counted).
pub const QUEUE: usize = 4096;
/// Calls per transaction at most.
pub const BATCH: usize = 512;
/// Longest a call waits in a partial batch.
pub const DELAY: Duration = Duration::from_millis(200);
/// How often retention runs (and once at start).
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// The schema, one migration per entry; `PRAGMA user_version` is how many have run. A
/// migration is never edited once released: a change is a new entry.
const MIGRATIONS: &[&str] = &[
    // 1: calls and their captured content.
    "CREATE TABLE calls (
        id TEXT PRIMARY KEY NOT NULL,
        start_ms INTEGER NOT NULL,
        duration_ms REAL NOT NULL,
        provider TEXT NOT NULL,
        api TEXT NOT NULL,
        client TEXT NOT NULL,
        outcome TEXT NOT NULL,
        model TEXT,
        team TEXT,
        user TEXT,
        agent TEXT,
        session TEXT,
        thread TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cache_read_tokens INTEGER,
        cache_write_tokens INTEGER,
        reasoning_tokens INTEGER,
        cost_usd REAL,
        ttft_ms REAL,
        line TEXT NOT NULL
    );
    CREATE INDEX calls_by_start ON calls (start_ms);
    CREATE INDEX calls_by_session ON calls (session, start_ms);
    CREATE TABLE content (
        call_id TEXT PRIMARY KEY NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
        system TEXT,
        input TEXT,
        tools TEXT,
        output TEXT,
        truncated TEXT
    );",
    // 2: the list's filters, each newest first without a scan of the history.
    "CREATE INDEX calls_by_model ON calls (model, start_ms);
    CREATE INDEX calls_by_client ON calls (client, start_ms);
    CREATE INDEX calls_by_team ON calls (team, start_ms);
    CREATE INDEX calls_by_user ON calls (user, start_ms);
    CREATE INDEX calls_by_agent ON calls (agent, start_ms);",
];

/// Why the history could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The directory or file could not be created or its mode set.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// SQLite refused (not a database, locked, a newer schema than this llmtap knows).
    #[error("{path}: {message}")]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// SQLite's message.
        message: String,
    },
}

/// An open history database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn int(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

impl Store {
    /// Opens (creating) the database at `path`: its directory 0700 when llmtap creates it,
    /// the file 0600 always, WAL journal, the schema migrated to this llmtap's.
    pub fn open(path: &Path) -> Result<Store, HistoryError> {
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
        let io = |source| HistoryError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| HistoryError::Io {
                    path: dir.to_owned(),
                    source,
                })?;
        }
        // Created 0600 before SQLite sees it, and set so if it existed: prompts may be in it.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        let sqlite = |e: rusqlite::Error| HistoryError::Sqlite {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let conn = Connection::open(path).map_err(sqlite)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(sqlite)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sqlite)?;
        // Deleted rows (purge, retention) are overwritten, not left readable in free pages:
        // the bundled SQLite does not do it by default.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(sqlite)?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing history (`llmtap report`, `llmtap purge`): a missing file is an
    /// error, not a new database.
    pub fn open_existing(path: &Path) -> Result<Store, HistoryError> {
        if !path.exists() {
            return Err(HistoryError::Io {
                path: path.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no history here (llmtap writes it while it runs; --db names another, \
                     or give report a --calls-file)",
                ),
            });
        }
        Store::open(path)
    }

    fn error(&self, e: rusqlite::Error) -> HistoryError {
        HistoryError::Sqlite {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Runs the migrations this database has not had, in one write transaction taken before
    /// the version is read (two processes opening a new history at once: one migrates, the
    /// other then sees the new version).
    fn migrate(&mut self) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| HistoryError::Sqlite {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| HistoryError::Sqlite {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > MIGRATIONS.len() {
            return Err(HistoryError::Sqlite {
                path: path.clone(),
                message: format!(
                    "schema version {version} is newer than this llmtap knows ({}): written \
                     by a newer llmtap",
                    MIGRATIONS.len()
                ),
            });
        }
        for sql in &MIGRATIONS[version..] {
            tx.execute_batch(sql).map_err(|e| HistoryError::Sqlite {
                path: path.clone(),
                message: e.to_string(),
            })?;
        }
        tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)
            .and_then(|()| tx.commit())
            .map_err(|e| HistoryError::Sqlite {
                path,
                message: e.to_string(),
            })
    }

    /// Writes `records` in one transaction; a call already there (the same id) is left as
    /// it is. `capture_max`: the cap of each content column (`--capture-max-bytes`).
    pub fn insert(
        &mut self,
        records: &[Arc<CallRecord>],
        capture_max: usize,
    ) -> Result<(), rusqlite::Error> {
        let tx = self.conn.transaction()?;
        {
            let mut call = tx.prepare(
                "INSERT OR IGNORE INTO calls (id, start_ms, duration_ms, provider, api, client,
                 outcome, model, team, user, agent, session, thread, input_tokens,
                 output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
                 cost_usd, ttft_ms, line)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                 ?17, ?18, ?19, ?20, ?21)",
            )?;
            let mut content = tx.prepare(
                "INSERT OR IGNORE INTO content (call_id, system, input, tools, output, truncated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for r in records {
                let u = &r.response.usage;
                let written = match (u.cache_write_5m, u.cache_write_1h) {
                    (None, None) => None,
                    (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
                };
                let id = r.id.to_string();
                call.execute(params![
                    id,
                    millis(r.start),
                    r.duration.as_secs_f64() * 1000.0,
                    r.provider.name.to_string(),
                    r.api,
                    r.client.as_str(),
                    r.outcome.as_str(),
                    r.model(),
                    r.team,
                    r.user,
                    r.agent_loop.agent,
                    r.conversation_id,
                    r.agent_loop.thread_id,
                    int(u.input),
                    int(u.output),
                    int(u.cache_read),
                    int(written),
                    int(u.reasoning),
                    r.cost_usd,
                    r.ttft.map(|t| t.as_secs_f64() * 1000.0),
                    super::calls::json(r),
                ])?;
                if let Some(c) = captured(r, capture_max) {
                    content.execute(params![
                        id,
                        c.system,
                        c.input,
                        c.tools,
                        c.output,
                        (!c.truncated.is_empty()).then(|| c.truncated.join(","))
                    ])?;
                }
            }
        }
        tx.commit()
    }

    /// Deletes calls that started before `before` (their content with them), or only their
    /// content when `content_only`; `None`: every call. Returns the rows deleted. Deletes in
    /// chunks of 5,000 so that a writer waits at most one chunk.
    pub fn purge(
        &mut self,
        before: Option<SystemTime>,
        content_only: bool,
    ) -> Result<usize, HistoryError> {
        let cutoff = before.map_or(i64::MAX, millis);
        let sql = if content_only {
            "DELETE FROM content WHERE rowid IN (SELECT content.rowid FROM content
             JOIN calls ON calls.id = content.call_id WHERE calls.start_ms < ?1 LIMIT 5000)"
        } else {
            "DELETE FROM calls WHERE rowid IN
             (SELECT rowid FROM calls WHERE start_ms < ?1 LIMIT 5000)"
        };
        let mut total = 0;
        loop {
            let n = self
                .conn
                .execute(sql, params![cutoff])
                .map_err(|e| self.error(e))?;
            total += n;
            if n == 0 {
                // Out of the write-ahead log too, not only the database's pages.
                if total > 0 {
                    self.conn
                        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                        .map_err(|e| self.error(e))?;
                }
                return Ok(total);
            }
        }
    }

    /// Every call's JSON call line, oldest first (what `llmtap report` reads).
    pub fn lines(&self, mut each: impl FnMut(&str)) -> Result<(), HistoryError> {
        let mut stmt = self
            .conn
            .prepare("SELECT line FROM calls ORDER BY start_ms, id")
            .map_err(|e| self.error(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.error(e))?;
        while let Some(row) = rows.next().map_err(|e| self.error(e))? {
            let line: String = row.get(0).map_err(|e| self.error(e))?;
            each(&line);
        }
        Ok(())
    }

    /// The JSON call line of call `id`, if the history has it.
    pub fn line(&self, id: &str) -> Result<Option<String>, HistoryError> {
        self.conn
            .query_row("SELECT line FROM calls WHERE id = ?1", params![id], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|e| self.error(e))
    }

    /// The captured content of call `id` (JSON arrays as its span would carry them), if any.
    pub fn content(&self, id: &str) -> Result<Option<Content>, HistoryError> {
        self.conn
            .query_row(
                "SELECT system, input, tools, output, truncated FROM content WHERE call_id = ?1",
                params![id],
                |row| {
                    Ok(Content {
                        system: row.get(0)?,
                        input: row.get(1)?,
                        tools: row.get(2)?,
                        output: row.get(3)?,
                        truncated: row.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.error(e))
    }

    /// The call lines matching `filter`, newest first, at most `limit`, strictly older than
    /// call `before` when given (the next page).
    pub fn list(
        &self,
        filter: &Filter,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, HistoryError> {
        let mut sql = String::from("SELECT line FROM calls WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut push = |clause: &str, value: rusqlite::types::Value| {
            args.push(value);
            sql.push_str(&format!(" AND {clause} ?{}", args.len()));
        };
        if let Some(ms) = filter.since_ms {
            push("start_ms >=", ms.into());
        }
        if let Some(ms) = filter.until_ms {
            push("start_ms <", ms.into());
        }
        for (column, value) in filter.columns() {
            if let Some(v) = value {
                push(&format!("{column} ="), v.clone().into());
            }
        }
        if let Some(id) = before {
            args.push(id.to_owned().into());
            let n = args.len();
            sql.push_str(&format!(
                " AND (start_ms, id) < (SELECT start_ms, id FROM calls WHERE id = ?{n})"
            ));
        }
        sql.push_str(&format!(
            " ORDER BY start_ms DESC, id DESC LIMIT {}",
            limit.min(1000)
        ));
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.error(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |row| row.get(0))
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<Vec<String>, _>>()
            .map_err(|e| self.error(e))
    }

    /// The call lines of session `id`, in the order they started (at most 10,000).
    pub fn session(&self, id: &str) -> Result<Vec<String>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare("SELECT line FROM calls WHERE session = ?1 ORDER BY start_ms, id LIMIT 10000")
            .map_err(|e| self.error(e))?;
        let rows = stmt
            .query_map(params![id], |row| row.get(0))
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<Vec<String>, _>>()
            .map_err(|e| self.error(e))
    }

    /// Cost and tokens since `since_ms`, per `bucket_ms` and per value of `by` (`model`,
    /// `team`, `user` or `client`; anything else is `model`): (bucket start, value, cost in
    /// USD, input tokens, output tokens), oldest first.
    pub fn overview(
        &self,
        since_ms: i64,
        bucket_ms: i64,
        by: &str,
    ) -> Result<Vec<OverviewRow>, HistoryError> {
        let column = match by {
            "team" | "user" | "client" => by,
            _ => "model",
        };
        let sql = format!(
            "SELECT (start_ms / ?2) * ?2 AS bucket, coalesce({column}, 'unknown'),
                    coalesce(sum(cost_usd), 0), coalesce(sum(input_tokens), 0),
                    coalesce(sum(output_tokens), 0)
             FROM calls WHERE start_ms >= ?1 GROUP BY bucket, 2 ORDER BY bucket, 2"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.error(e))?;
        let rows = stmt
            .query_map(params![since_ms, bucket_ms.max(1)], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(e))
    }

    /// How many calls, and how many with content, the history holds.
    pub fn counts(&self) -> Result<(u64, u64), HistoryError> {
        let count = |sql: &str| {
            self.conn
                .query_row(sql, [], |row| row.get::<_, i64>(0))
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(|e| self.error(e))
        };
        Ok((
            count("SELECT count(*) FROM calls")?,
            count("SELECT count(*) FROM content")?,
        ))
    }
}

/// One row of [`Store::overview`]: bucket start (Unix milliseconds), the dimension's value,
/// cost in USD, input tokens, output tokens.
pub type OverviewRow = (i64, String, f64, i64, i64);

/// What the call list is filtered by; `None` fields do not filter. Values compare exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Calls that started at or after this (Unix milliseconds).
    pub since_ms: Option<i64>,
    /// Calls that started before this (Unix milliseconds).
    pub until_ms: Option<i64>,
    /// The agent session (`conversation_id`).
    pub session: Option<String>,
    /// The client (`claude-code`, …).
    pub client: Option<String>,
    /// The provider (`anthropic`, …).
    pub provider: Option<String>,
    /// The model (the response's, else the request's).
    pub model: Option<String>,
    /// The team.
    pub team: Option<String>,
    /// The user.
    pub user: Option<String>,
    /// The agent (`main`, a subagent's name).
    pub agent: Option<String>,
    /// The outcome (`ok`, `error`, `cancelled`).
    pub outcome: Option<String>,
}

impl Filter {
    /// The exact-match filters with their columns (names fixed here, never from input).
    fn columns(&self) -> [(&'static str, &Option<String>); 8] {
        [
            ("session", &self.session),
            ("client", &self.client),
            ("provider", &self.provider),
            ("model", &self.model),
            ("team", &self.team),
            ("user", &self.user),
            ("agent", &self.agent),
            ("outcome", &self.outcome),
        ]
    }
}

/// A call's captured content, read back: each part a JSON array in the GenAI conventions'
/// shapes (`gen_ai.system_instructions`, `.input.messages`, `.tool.definitions`,
/// `.output.messages`), `None` when the call had none; `truncated` names the parts cut to
/// `--capture-max-bytes` (`system,input`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// The system prompt's parts.
    pub system: Option<String>,
    /// The conversation sent.
    pub input: Option<String>,
    /// The tools offered.
    pub tools: Option<String>,
    /// What the model answered.
    pub output: Option<String>,
    /// The parts cut to fit, comma-separated.
    pub truncated: Option<String>,
}

/// A call's captured content as the history keeps it: each part the JSON array a span
/// would carry, capped alike ([`super::spans::fit`]).
struct Captured {
    system: Option<String>,
    input: Option<String>,
    tools: Option<String>,
    output: Option<String>,
    truncated: Vec<&'static str>,
}

fn captured(r: &CallRecord, max: usize) -> Option<Captured> {
    let request = r.request.as_ref().and_then(|q| q.content.as_ref());
    if request.is_none() && r.response.output.is_none() {
        return None;
    }
    let mut truncated = Vec::new();
    let mut part = |name: &'static str, items: Option<&[serde_json::Value]>| {
        let items = items.filter(|items| !items.is_empty())?;
        let (json, cut) = super::spans::fit(items, max);
        if cut {
            truncated.push(name);
        }
        Some(json)
    };
    let system = part("system", request.map(|c| c.system.as_slice()));
    let input = part("input", request.map(|c| c.input.as_slice()));
    let tools = part("tools", request.map(|c| c.tools.as_slice()));
    let output = part("output", r.response.output.as_deref());
    Some(Captured {
        system,
        input,
        tools,
        output,
        truncated,
    })
}

/// Counters the writer moves.
#[derive(Debug, Clone)]
pub struct HistoryHealth {
    /// `llmtap_history_dropped_total`: calls not written (queue full, or their batch failed).
    pub dropped: IntCounter,
}

enum Msg {
    Call(Arc<CallRecord>),
    Flush(mpsc::Sender<()>),
}

/// The writer: a bounded queue and the thread that drains it into the database.
#[derive(Debug)]
pub struct History {
    tx: SyncSender<Msg>,
    health: HistoryHealth,
}

impl History {
    /// Opens the database and starts the writer thread. `capture_max`: the content cap
    /// (`--capture-max-bytes`).
    pub fn start(
        config: &HistoryConfig,
        capture_max: usize,
        health: HistoryHealth,
    ) -> Result<History, HistoryError> {
        let store = Store::open(&config.path)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let writer = Writer {
            store,
            capture_max,
            retain: config.retain,
            health: health.clone(),
            warning: RateLimit::new(Duration::from_secs(60)),
        };
        std::thread::Builder::new()
            .name("llmtap-history".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| HistoryError::Io {
                path: config.path.clone(),
                source,
            })?;
        Ok(History { tx, health })
    }

    /// Queues a finished call. Never blocks: a full queue drops it and counts it.
    pub fn record(&self, record: Arc<CallRecord>) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.tx.try_send(Msg::Call(record))
        {
            self.health.dropped.inc();
        }
    }

    /// Waits (at most `timeout`) until every call queued so far is written. Blocking.
    pub fn flush(&self, timeout: Duration) {
        let (done, wait) = mpsc::channel();
        let deadline = Instant::now() + timeout;
        let mut msg = Msg::Flush(done);
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    msg = back;
                    std::thread::park_timeout(Duration::from_millis(5));
                }
                Err(_) => return,
            }
        }
        let _ = wait.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

struct Writer {
    store: Store,
    capture_max: usize,
    retain: Option<Duration>,
    health: HistoryHealth,
    warning: RateLimit,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        let mut batch: Vec<Arc<CallRecord>> = Vec::with_capacity(BATCH);
        let mut oldest: Option<Instant> = None;
        let mut next_retention = Instant::now();
        loop {
            if Instant::now() >= next_retention {
                self.retention();
                next_retention = Instant::now() + RETENTION_EVERY;
            }
            let wait = oldest.map_or(RETENTION_EVERY, |t| DELAY.saturating_sub(t.elapsed()));
            match rx.recv_timeout(wait) {
                Ok(Msg::Call(record)) => {
                    oldest.get_or_insert_with(Instant::now);
                    batch.push(record);
                    if batch.len() >= BATCH {
                        self.write(&mut batch);
                        oldest = None;
                    }
                }
                Ok(Msg::Flush(done)) => {
                    self.write(&mut batch);
                    oldest = None;
                    let _ = done.send(());
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.write(&mut batch);
                    oldest = None;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.write(&mut batch);
                    return;
                }
            }
        }
    }

    fn write(&mut self, batch: &mut Vec<Arc<CallRecord>>) {
        if batch.is_empty() {
            return;
        }
        if let Err(err) = self.store.insert(batch, self.capture_max) {
            self.health.dropped.inc_by(batch.len() as u64);
            if let Some(suppressed) = self.warning.allow() {
                tracing::warn!(
                    target: "llmtap::history",
                    path = %self.store.path.display(),
                    %err,
                    calls = batch.len(),
                    suppressed,
                    "cannot write calls to the history; traffic is unaffected, the calls are \
                     counted in llmtap_history_dropped_total"
                );
            }
        }
        batch.clear();
    }

    fn retention(&mut self) {
        let Some(retain) = self.retain else {
            return;
        };
        let Some(before) = SystemTime::now().checked_sub(retain) else {
            return;
        };
        if let Err(err) = self.store.purge(Some(before), false) {
            tracing::warn!(target: "llmtap::history", %err, "cannot apply --retain");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::exchange::CallId;

    fn record(start: SystemTime) -> Arc<CallRecord> {
        let mut r = crate::telemetry::calls::tests::record();
        r.id = CallId::new();
        r.start = start;
        Arc::new(r)
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn a_new_history_is_private_wal_and_migrated_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new/llmtap.db");
        let store = Store::open(&path).expect("open");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
        let journal: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .expect("journal_mode");
        assert_eq!(journal, "wal");
        drop(store);
        // An existing file keeps its rows and gets 0600 again.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let store = Store::open(&path).expect("reopen");
        assert_eq!(mode(&path), 0o600);
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("user_version");
        assert_eq!(version, MIGRATIONS.len() as i64);
        // A schema from a newer llmtap is refused, not overwritten.
        store
            .conn
            .pragma_update(None, "user_version", 99)
            .expect("set");
        drop(store);
        let err = Store::open(&path).expect_err("newer schema");
        assert!(err.to_string().contains("newer"), "{err}");
        assert!(Store::open_existing(&dir.path().join("missing.db")).is_err());
    }

    #[test]
    fn calls_are_written_once_with_their_line_and_purged_by_age_or_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(&dir.path().join("h.db")).expect("open");
        let day = Duration::from_secs(86_400);
        let now = SystemTime::now();
        let old = record(now - 10 * day);
        let new = record(now);
        store
            .insert(&[old.clone(), new.clone(), new.clone()], 1024)
            .expect("insert");
        assert_eq!(store.counts().expect("counts"), (2, 0), "the same id once");
        let line = store.line(&new.id.to_string()).expect("read").expect("row");
        assert_eq!(line, crate::telemetry::calls::json(&new));
        let mut lines = Vec::new();
        store.lines(|l| lines.push(l.to_owned())).expect("lines");
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains(&old.id.to_string()), "oldest first");
        // Content: only a call that captured some has a row.
        let mut captured = (*record(now)).clone();
        captured.response.output = Some(vec![serde_json::json!({"role": "assistant",
            "parts": [{"type": "text", "content": "x".repeat(5000)}]})]);
        store.insert(&[Arc::new(captured)], 1024).expect("insert");
        assert_eq!(store.counts().expect("counts"), (3, 1));
        let (output, truncated): (String, Option<String>) = store
            .conn
            .query_row("SELECT output, truncated FROM content", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .expect("content");
        assert!(output.len() <= 1024, "capped as spans cap it");
        assert_eq!(truncated.as_deref(), Some("output"));
        let on_disk = |dir: &Path| {
            ["h.db", "h.db-wal"]
                .iter()
                .filter_map(|f| std::fs::read(dir.join(f)).ok())
                .any(|bytes| bytes.windows(64).any(|w| w.iter().all(|b| *b == b'x')))
        };
        assert!(on_disk(dir.path()), "the content is written");
        assert_eq!(store.purge(None, true).expect("purge content"), 1);
        assert_eq!(store.counts().expect("counts"), (3, 0));
        // Purged content is gone from the files, not left in free pages or the log.
        assert!(!on_disk(dir.path()), "purged content still on disk");
        assert_eq!(store.purge(Some(now - day), false).expect("purge old"), 1);
        assert_eq!(store.counts().expect("counts"), (2, 0));
    }

    #[test]
    fn the_writer_batches_flushes_applies_retention_and_counts_what_it_cannot_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.db");
        let dropped = IntCounter::new("dropped", "test").expect("counter");
        let history = History::start(
            &HistoryConfig {
                explicit: true,
                path: path.clone(),
                retain: Some(Duration::from_secs(86_400)),
            },
            1024,
            HistoryHealth {
                dropped: dropped.clone(),
            },
        )
        .expect("start");
        let now = SystemTime::now();
        for _ in 0..10 {
            history.record(record(now));
        }
        history.flush(Duration::from_secs(5));
        assert_eq!(
            Store::open(&path)
                .expect("open")
                .counts()
                .expect("counts")
                .0,
            10
        );
        assert_eq!(dropped.get(), 0);
        // A history that cannot be written (its tables gone) counts its calls, never blocks.
        let store = Store::open(&path).expect("open");
        store
            .conn
            .execute_batch("DROP TABLE content; DROP TABLE calls;")
            .expect("drop");
        history.record(record(now));
        history.flush(Duration::from_secs(5));
        assert_eq!(dropped.get(), 1);
    }

    #[test]
    fn retention_runs_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.db");
        let day = Duration::from_secs(86_400);
        let mut store = Store::open(&path).expect("open");
        let now = SystemTime::now();
        store
            .insert(&[record(now - 40 * day), record(now)], 1024)
            .expect("insert");
        let dropped = IntCounter::new("dropped", "test").expect("counter");
        let history = History::start(
            &HistoryConfig {
                explicit: true,
                path: path.clone(),
                retain: Some(30 * day),
            },
            1024,
            HistoryHealth { dropped },
        )
        .expect("start");
        history.flush(Duration::from_secs(5));
        assert_eq!(
            store.counts().expect("counts").0,
            1,
            "the 40-day-old call is gone"
        );
    }
}
