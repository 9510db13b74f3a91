//! The baseline store: per site and path, the accepted state (metadata and
//! SHA-256), plus the drift already alerted, in SQLite under `state_dir`.
//!
//! SQLite in WAL mode gives what an integrity monitor needs from its memory:
//! a rebuild is one transaction, so `kill -9` at any moment leaves either the
//! old or the new baseline; one-shot commands read while the daemon writes;
//! and admins can inspect it with `sqlite3`. Paths are BLOBs (file names are
//! bytes).

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, Transaction};

use crate::model::{FileState, FileType, RelPath};

/// The database file inside `state_dir`.
pub const DB_FILE: &str = "sitewarden.db";

const SCHEMA_VERSION: i64 = 2;

/// The baseline store cannot be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed: a corrupt or unreadable database, a full disk, a lock
    /// held past the busy timeout.
    #[error("baseline store {path}: {source}")]
    Sql {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// `state_dir` did not exist and could not be created.
    #[error("cannot create state directory {path}: {source}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// A command that needs a baseline found no database in this `state_dir`.
    #[error("no baseline yet in {0}: run `sitewarden baseline` first")]
    Missing(PathBuf),
    /// The database has a schema version this sitewarden does not know.
    #[error("baseline store {path} has schema version {found}, this sitewarden knows {SCHEMA_VERSION}")]
    Version {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
    },
}

/// What the store knows of a site besides its entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiteInfo {
    /// The site name.
    pub name: String,
    /// The site root (as configured) when last recorded, as bytes.
    pub root: Vec<u8>,
    /// When the baseline was last built (ns since the epoch).
    pub baseline_at: Option<i64>,
    /// When the site was last scanned completely.
    pub last_scan_at: Option<i64>,
    /// Paths in its baseline.
    pub files: u64,
    /// Paths whose drift has been alerted and not yet accepted.
    pub drift: u64,
}

/// The baseline database, open (one SQLite connection).
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

const COLS: &str = "type, size, mode, uid, gid, mtime_ns, ctime_ns, dev, ino, sha256, target, nlink";

impl Store {
    /// Opens the store, creating `state_dir` (0700) and the database.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        if !state_dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(state_dir)
                .map_err(|source| StoreError::StateDir { path: state_dir.to_path_buf(), source })?;
        }
        let path = state_dir.join(DB_FILE);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let store = Store::open_with(&path, flags)?;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        Ok(store)
    }

    /// Opens the store with a small page cache (256 KiB), for the daemon's
    /// long-lived connections (its workers and its judge): each connection
    /// has its own cache, a scan goes through a site once so would not hit
    /// it again, and 2 MiB each is most of an idle daemon's growth.
    pub fn open_lean(state_dir: &Path) -> Result<Store, StoreError> {
        let store = Store::open(state_dir)?;
        store.conn.pragma_update(None, "cache_size", -256).map_err(store.err())?;
        Ok(store)
    }

    /// Opens an existing store; never creates anything.
    pub fn open_existing(state_dir: &Path) -> Result<Store, StoreError> {
        let path = state_dir.join(DB_FILE);
        if !path.is_file() {
            return Err(StoreError::Missing(state_dir.to_path_buf()));
        }
        Store::open_with(&path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
    }

    fn open_with(path: &Path, flags: OpenFlags) -> Result<Store, StoreError> {
        let err = |source| StoreError::Sql { path: path.to_path_buf(), source };
        let conn = Connection::open_with_flags(path, flags).map_err(err)?;
        // A writer (the daemon, or a rebuild) holds the lock briefly; wait.
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        let store = Store { conn, path: path.to_path_buf() };
        store.migrate()?;
        Ok(store)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sql { path: self.path.clone(), source }
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let version: i64 = self.conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(self.err())?;
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        if version == 1 {
            // Version 2 keeps the link count (a file with another name
            // elsewhere can be written without an event here).
            return self
                .conn
                .execute_batch(&format!(
                    "BEGIN;
                     ALTER TABLE baseline ADD COLUMN nlink INTEGER NOT NULL DEFAULT 1;
                     ALTER TABLE drift ADD COLUMN nlink INTEGER;
                     PRAGMA user_version = {SCHEMA_VERSION};
                     COMMIT;"
                ))
                .map_err(self.err());
        }
        if version != 0 {
            return Err(StoreError::Version { path: self.path.clone(), found: version });
        }
        self.conn
            .execute_batch(&format!(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS sites (
                     name TEXT PRIMARY KEY, root BLOB NOT NULL,
                     baseline_at INTEGER, last_scan_at INTEGER
                 ) WITHOUT ROWID;
                 -- The accepted state of every watched path.
                 CREATE TABLE IF NOT EXISTS baseline (
                     site TEXT NOT NULL, path BLOB NOT NULL,
                     type TEXT NOT NULL, size INTEGER NOT NULL, mode INTEGER NOT NULL,
                     uid INTEGER NOT NULL, gid INTEGER NOT NULL,
                     mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
                     dev INTEGER NOT NULL, ino INTEGER NOT NULL,
                     sha256 BLOB, target BLOB, nlink INTEGER NOT NULL DEFAULT 1,
                     PRIMARY KEY (site, path)
                 ) WITHOUT ROWID;
                 -- Drift already alerted: the observed state (NULL type: deleted).
                 CREATE TABLE IF NOT EXISTS drift (
                     site TEXT NOT NULL, path BLOB NOT NULL, alerted_at INTEGER NOT NULL,
                     type TEXT, size INTEGER, mode INTEGER, uid INTEGER, gid INTEGER,
                     mtime_ns INTEGER, ctime_ns INTEGER, dev INTEGER, ino INTEGER,
                     sha256 BLOB, target BLOB, nlink INTEGER,
                     PRIMARY KEY (site, path)
                 ) WITHOUT ROWID;
                 PRAGMA user_version = {SCHEMA_VERSION};
                 COMMIT;"
            ))
            .map_err(self.err())
    }

    /// True when a baseline was built for `site`.
    pub fn has_baseline(&self, site: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row("SELECT baseline_at IS NOT NULL FROM sites WHERE name = ?1", [site], |r| r.get(0))
            .optional()
            .map(|v| v.unwrap_or(false))
            .map_err(self.err())
    }

    /// The accepted states of a site.
    pub fn load(&self, site: &str) -> Result<HashMap<RelPath, FileState>, StoreError> {
        self.states(&format!("SELECT path, {COLS} FROM baseline WHERE site = ?1"), params![site])
    }

    /// The accepted states of `dir` and everything below it (the whole site
    /// when `dir` is empty).
    pub fn load_under(&self, site: &str, dir: &[u8]) -> Result<HashMap<RelPath, FileState>, StoreError> {
        if dir.is_empty() {
            return self.load(site);
        }
        let (lo, hi) = below(dir);
        // Two searches of the primary key, not one OR (with which SQLite
        // reads every row of the site: in a storm of new files on fanotify
        // that was 45 % of the daemon's CPU).
        self.states(
            &format!(
                "SELECT path, {COLS} FROM baseline WHERE site = ?1 AND path = ?2 \
                 UNION ALL SELECT path, {COLS} FROM baseline WHERE site = ?1 AND path >= ?3 AND path < ?4"
            ),
            params![site, dir, lo, hi],
        )
    }

    /// Runs a `SELECT path, COLS ...` and collects the states by path.
    fn states(&self, sql: &str, args: impl rusqlite::Params) -> Result<HashMap<RelPath, FileState>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(self.err())?;
        let rows =
            stmt.query_map(args, |r| Ok((r.get::<_, Vec<u8>>(0)?, state_from_row(r, 1)?))).map_err(self.err())?;
        let mut map = HashMap::new();
        for row in rows {
            let (path, state) = row.map_err(self.err())?;
            if let Some(state) = state {
                map.insert(path, state);
            }
        }
        Ok(map)
    }

    /// The accepted state of one path.
    pub fn get(&self, site: &str, rel: &[u8]) -> Result<Option<FileState>, StoreError> {
        self.conn
            .query_row(&format!("SELECT {COLS} FROM baseline WHERE site = ?1 AND path = ?2"), params![site, rel], |r| {
                state_from_row(r, 0)
            })
            .optional()
            .map(Option::flatten)
            .map_err(self.err())
    }

    /// What the store knows of a site (`None` if never seen).
    pub fn site_info(&self, site: &str) -> Result<Option<SiteInfo>, StoreError> {
        let info = self
            .conn
            .query_row("SELECT name, root, baseline_at, last_scan_at FROM sites WHERE name = ?1", [site], |r| {
                Ok(SiteInfo {
                    name: r.get(0)?,
                    root: r.get(1)?,
                    baseline_at: r.get(2)?,
                    last_scan_at: r.get(3)?,
                    files: 0,
                    drift: 0,
                })
            })
            .optional()
            .map_err(self.err())?;
        let Some(mut info) = info else {
            return Ok(None);
        };
        info.files = self
            .conn
            .query_row("SELECT count(*) FROM baseline WHERE site = ?1 AND type != 'dir'", [site], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(self.err())? as u64;
        info.drift = self
            .conn
            .query_row("SELECT count(*) FROM drift WHERE site = ?1", [site], |r| r.get::<_, i64>(0))
            .map_err(self.err())? as u64;
        Ok(Some(info))
    }

    /// The drift already alerted for a path: `Some(None)` means it was
    /// alerted as deleted.
    pub fn alerted(&self, site: &str, rel: &[u8]) -> Result<Option<Option<FileState>>, StoreError> {
        self.conn
            .query_row(&format!("SELECT {COLS} FROM drift WHERE site = ?1 AND path = ?2"), params![site, rel], |r| {
                state_from_row(r, 0)
            })
            .optional()
            .map_err(self.err())
    }

    /// Like [`Store::alerted`], with when it was alerted (ns).
    pub fn alerted_at(&self, site: &str, rel: &[u8]) -> Result<Option<(Option<FileState>, i64)>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT alerted_at, {COLS} FROM drift WHERE site = ?1 AND path = ?2"),
                params![site, rel],
                |r| Ok((state_from_row(r, 1)?, r.get::<_, i64>(0)?)),
            )
            .optional()
            .map_err(self.err())
    }

    /// Every SHA-256 the baseline or the alerted drift refers to (what the
    /// content store must keep).
    pub fn referenced_hashes(&self) -> Result<std::collections::HashSet<[u8; 32]>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT sha256 FROM baseline WHERE sha256 IS NOT NULL UNION SELECT sha256 FROM drift WHERE sha256 IS NOT NULL")
            .map_err(self.err())?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).map_err(self.err())?;
        let mut out = std::collections::HashSet::new();
        for row in rows {
            if let Ok(sha) = <[u8; 32]>::try_from(row.map_err(self.err())?.as_slice()) {
                out.insert(sha);
            }
        }
        Ok(out)
    }

    /// Paths of a site whose regular file has more than one hard link, as
    /// accepted or as last alerted.
    pub fn linked_paths(&self, site: &str) -> Result<Vec<RelPath>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT path FROM baseline WHERE site = ?1 AND type = 'file' AND nlink > 1
                 UNION SELECT path FROM drift WHERE site = ?1 AND type = 'file' AND nlink > 1",
            )
            .map_err(self.err())?;
        let rows = stmt.query_map([site], |r| r.get::<_, Vec<u8>>(0)).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Paths of a site whose drift has been alerted and not accepted.
    pub fn drift_paths(&self, site: &str) -> Result<Vec<RelPath>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT path FROM drift WHERE site = ?1").map_err(self.err())?;
        let rows = stmt.query_map([site], |r| r.get::<_, Vec<u8>>(0)).map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// Paths strictly below `dir` whose drift has been alerted.
    pub fn drift_under(&self, site: &str, dir: &[u8]) -> Result<Vec<RelPath>, StoreError> {
        let (lo, hi) = below(dir);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path FROM drift WHERE site = ?1 AND path >= ?2 AND path < ?3")
            .map_err(self.err())?;
        let rows = stmt.query_map(params![site, lo, hi], |r| r.get::<_, Vec<u8>>(0)).map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// Makes `entries` the whole baseline of `site`, in one transaction:
    /// a crash leaves the old baseline or the new one, never a mix.
    pub fn write_baseline(
        &mut self,
        site: &str,
        root: &[u8],
        entries: &[(RelPath, FileState)],
        started: i64,
    ) -> Result<(), StoreError> {
        let w = self.write()?;
        w.clear_site(site)?;
        for (rel, state) in entries {
            w.put(site, rel, Some(state))?;
        }
        w.site_done(site, root, Some(started), Some(started))?;
        w.commit()
    }

    /// Starts a write transaction (a rebuild, an accept, a batch of alerts).
    pub fn write(&mut self) -> Result<Writer<'_>, StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|source| StoreError::Sql { path: path.clone(), source })?;
        Ok(Writer { tx, path })
    }
}

/// A write transaction: all of it lands, or none of it.
pub struct Writer<'a> {
    tx: Transaction<'a>,
    path: PathBuf,
}

impl Writer<'_> {
    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sql { path: self.path.clone(), source }
    }

    /// Forgets the whole baseline and alerted drift of a site.
    pub fn clear_site(&self, site: &str) -> Result<(), StoreError> {
        self.tx.execute("DELETE FROM baseline WHERE site = ?1", [site]).map_err(self.err())?;
        self.tx.execute("DELETE FROM drift WHERE site = ?1", [site]).map_err(self.err())?;
        Ok(())
    }

    /// Accepts `state` for a path (or its absence, with `None`) and forgets
    /// any drift alerted for it.
    pub fn accept(&self, site: &str, rel: &[u8], state: Option<&FileState>) -> Result<(), StoreError> {
        self.put(site, rel, state)?;
        self.forget_drift(site, rel)
    }

    /// Writes the accepted state of a path (`None`: absent), leaving the
    /// drift table alone (a rebuild clears it once, up front).
    pub fn put(&self, site: &str, rel: &[u8], state: Option<&FileState>) -> Result<(), StoreError> {
        match state {
            Some(s) => {
                let mut stmt = self
                    .tx
                    .prepare_cached(&format!(
                        "INSERT OR REPLACE INTO baseline (site, path, {COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
                    ))
                    .map_err(self.err())?;
                stmt.execute(params![
                    site,
                    rel,
                    s.kind.as_str(),
                    s.size as i64,
                    s.mode,
                    s.uid,
                    s.gid,
                    s.mtime_ns,
                    s.ctime_ns,
                    s.dev as i64,
                    s.ino as i64,
                    s.sha256.as_ref().map(|h| &h[..]),
                    s.target.as_deref(),
                    s.nlink,
                ])
                .map_err(self.err())?;
            }
            None => {
                let mut stmt =
                    self.tx.prepare_cached("DELETE FROM baseline WHERE site = ?1 AND path = ?2").map_err(self.err())?;
                stmt.execute(params![site, rel]).map_err(self.err())?;
            }
        }
        Ok(())
    }

    /// Records that the drift `state` (None: deleted) of a path was alerted.
    pub fn mark_alerted(
        &self,
        site: &str,
        rel: &[u8],
        state: Option<&FileState>,
        at_ns: i64,
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached(&format!(
                "INSERT OR REPLACE INTO drift (site, path, alerted_at, {COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
            ))
            .map_err(self.err())?;
        stmt.execute(params![
            site,
            rel,
            at_ns,
            state.map(|s| s.kind.as_str()),
            state.map(|s| s.size as i64),
            state.map(|s| s.mode),
            state.map(|s| s.uid),
            state.map(|s| s.gid),
            state.map(|s| s.mtime_ns),
            state.map(|s| s.ctime_ns),
            state.map(|s| s.dev as i64),
            state.map(|s| s.ino as i64),
            state.and_then(|s| s.sha256.as_ref().map(|h| h.to_vec())),
            state.and_then(|s| s.target.clone()),
            state.map(|s| s.nlink),
        ])
        .map_err(self.err())?;
        Ok(())
    }

    /// Forgets alerted drift of a path (accepted, or back to the baseline).
    pub fn forget_drift(&self, site: &str, rel: &[u8]) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached("DELETE FROM drift WHERE site = ?1 AND path = ?2").map_err(self.err())?;
        stmt.execute(params![site, rel]).map_err(self.err())?;
        Ok(())
    }

    /// Records a completed baseline build (`baseline_at`) and/or full scan.
    pub fn site_done(
        &self,
        site: &str,
        root: &[u8],
        baseline_at: Option<i64>,
        scan_at: Option<i64>,
    ) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO sites (name, root, baseline_at, last_scan_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET root = excluded.root,
                     baseline_at = coalesce(excluded.baseline_at, baseline_at),
                     last_scan_at = coalesce(excluded.last_scan_at, last_scan_at)",
                params![site, root, baseline_at, scan_at],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Makes the writes durable; a `Writer` dropped uncommitted discards them.
    pub fn commit(self) -> Result<(), StoreError> {
        let path = self.path.clone();
        self.tx.commit().map_err(|source| StoreError::Sql { path, source })
    }
}

/// A state from the `COLS` columns starting at `at`; `None` if `type` is NULL.
fn state_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Option<FileState>> {
    let kind: Option<String> = r.get(at)?;
    let Some(kind) = kind else { return Ok(None) };
    let sha: Option<Vec<u8>> = r.get(at + 9)?;
    Ok(Some(FileState {
        kind: FileType::parse(&kind).unwrap_or(FileType::File),
        size: r.get::<_, i64>(at + 1)? as u64,
        mode: r.get(at + 2)?,
        uid: r.get(at + 3)?,
        gid: r.get(at + 4)?,
        mtime_ns: r.get(at + 5)?,
        ctime_ns: r.get(at + 6)?,
        dev: r.get::<_, i64>(at + 7)? as u64,
        ino: r.get::<_, i64>(at + 8)? as u64,
        sha256: sha.and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok()),
        target: r.get(at + 10)?,
        nlink: r.get::<_, Option<u32>>(at + 11)?.unwrap_or(1),
    }))
}

/// The key range of the paths strictly below `dir`: they sort between
/// `dir/` and `dir0` ('0' follows '/').
fn below(dir: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut lo = dir.to_vec();
    lo.push(b'/');
    let mut hi = dir.to_vec();
    hi.push(b'0');
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n: u8) -> FileState {
        FileState {
            kind: FileType::File,
            size: n as u64,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime_ns: 1,
            ctime_ns: 2,
            dev: u64::MAX,
            ino: 4,
            sha256: Some([n; 32]),
            target: None,
            nlink: 1,
        }
    }

    #[test]
    fn round_trips_states_and_drift() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let w = store.write().unwrap();
        w.accept("s", b"a\xff\nb.php", Some(&state(1))).unwrap();
        w.mark_alerted("s", b"gone.php", None, 5).unwrap();
        w.site_done("s", b"/r", Some(1), Some(1)).unwrap();
        w.commit().unwrap();
        let map = store.load("s").unwrap();
        assert_eq!(map.get(&b"a\xff\nb.php"[..]), Some(&state(1)));
        assert_eq!(store.alerted("s", b"gone.php").unwrap(), Some(None));
        let info = store.site_info("s").unwrap().unwrap();
        assert_eq!((info.files, info.drift), (1, 1));
        let w = store.write().unwrap();
        for p in [&b"d"[..], b"d/x", b"d/y/z", b"d0", b"d.x", b"dd/x", b"c"] {
            w.accept("s", p, Some(&state(2))).unwrap();
        }
        w.commit().unwrap();
        let mut under: Vec<_> = store.load_under("s", b"d").unwrap().into_keys().collect();
        under.sort();
        assert_eq!(under, vec![b"d".to_vec(), b"d/x".to_vec(), b"d/y/z".to_vec()]);
    }

    #[test]
    fn an_uncommitted_rebuild_leaves_the_old_baseline() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let w = store.write().unwrap();
        w.accept("s", b"old", Some(&state(1))).unwrap();
        w.commit().unwrap();
        {
            let w = store.write().unwrap();
            w.clear_site("s").unwrap();
            w.accept("s", b"new", Some(&state(2))).unwrap();
            // dropped without commit
        }
        let map = store.load("s").unwrap();
        assert!(map.contains_key(&b"old"[..]) && map.len() == 1);
    }
}
