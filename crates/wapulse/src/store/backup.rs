//! `wapulse store backup` and `wapulse store restore`: a consistent copy
//! of the whole store (journal, snapshots, alert state, the outbox,
//! silences, history) while the service runs and writes, and its return
//! into an empty data directory.
//!
//! The copy is SQLite's `VACUUM INTO` over a read-only connection: one
//! read transaction, so it is the store as of one commit (WAL readers do
//! not block the writer, and the writer does not tear the copy), never a
//! file copy of a database and its WAL taken at different instants. It is
//! written beside the target as `<target>.partial`, checked like `store
//! check`, made a single self-contained file (rollback journal, not WAL),
//! synced and only then renamed: a backup killed half-way leaves the source
//! untouched and no file under the target's name.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use super::sqlite::{FILE_NAME, Inspection, classify, inspect_connection, open_existing_read_only};

fn failed(what: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{what}")
}

/// `<path>.partial`: where a file is written before it is renamed into
/// place.
fn partial(path: &Path) -> PathBuf {
    sidecar(path, ".partial")
}

/// Flushes `path` to disk, and the directory that names it.
fn sync(path: &Path) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
    file.sync_all()
        .map_err(|e| failed(format!("{}: {e}", path.display())))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Directories cannot be opened for sync everywhere; where they
        // can, the rename that follows is durable too.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Checks a backup file as `store check` checks a store.
fn check_file(
    path: &Path,
    decode_snapshot: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<Inspection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| classify(path, e))?;
    let report = inspect_connection(&conn, path, decode_snapshot).map_err(|e| match e {
        StoreError::Corrupt { .. } => failed(format!(
            "{} is not a wapulse backup (not an SQLite database)",
            path.display()
        )),
        other => other.into(),
    })?;
    if !report.problems.is_empty() {
        return Err(failed(format!(
            "{} is not sound: {}",
            path.display(),
            report.problems.join("; ")
        )));
    }
    Ok(report)
}

/// Copies the store in `dir` to the new file `target`, consistent as of
/// one commit, while the service may run and write. Returns the check of
/// the copy. A `target` that exists is never overwritten.
pub fn backup(
    dir: &Path,
    target: &Path,
    decode_snapshot: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<Inspection> {
    if target.exists() {
        return Err(failed(format!(
            "{} already exists: a backup never overwrites a file; name a new one",
            target.display()
        )));
    }
    let (conn, source) = open_existing_read_only(dir)?;
    let work = partial(target);
    // What a killed backup left behind.
    for leftover in [work.clone(), sidecar(&work, "-journal")] {
        if leftover.exists() {
            std::fs::remove_file(&leftover)
                .map_err(|e| failed(format!("{}: {e}", leftover.display())))?;
        }
    }
    let name = work
        .to_str()
        .ok_or_else(|| failed(format!("{}: not a UTF-8 path", work.display())))?;
    conn.execute("VACUUM INTO ?1", [name])
        .map_err(|e| match classify(&source, e) {
            StoreError::Full(m) => failed(format!("{} (the disk is full): {m}", work.display())),
            other => failed(format!("the copy to {} failed: {other}", work.display())),
        })?;
    drop(conn);
    let result = (|| {
        // One self-contained file: no WAL beside it.
        let copy = Connection::open(&work).map_err(|e| classify(&work, e))?;
        copy.pragma_update(None, "journal_mode", "DELETE")
            .map_err(|e| classify(&work, e))?;
        drop(copy);
        let report = check_file(&work, &decode_snapshot)?;
        sync(&work)?;
        std::fs::rename(&work, target).map_err(|e| failed(format!("{}: {e}", target.display())))?;
        sync(target)?;
        Ok(Inspection {
            path: target.display().to_string(),
            ..report
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&work);
    }
    result
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Puts the backup `file` in place as the store of `dir`, which must be
/// empty (or not exist): a directory a wapulse uses holds its store, and a
/// restore never mixes two. Returns the check of the backup.
pub fn restore(
    file: &Path,
    dir: &Path,
    decode_snapshot: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<Inspection> {
    if !file.is_file() {
        return Err(failed(format!("{}: no such backup file", file.display())));
    }
    let report = check_file(file, &decode_snapshot)?;
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir)
            .map_err(|e| failed(format!("--data-dir {}: {e}", dir.display())))?;
        if entries.next().is_some() {
            return Err(failed(format!(
                "--data-dir {} is not empty: restore only into an empty directory (a directory \
                 a wapulse uses holds its store; stop it and restore into a new one)",
                dir.display()
            )));
        }
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| failed(format!("--data-dir {}: {e}", dir.display())))?;
    let store = dir.join(FILE_NAME);
    let work = partial(&store);
    std::fs::copy(file, &work).map_err(|e| failed(format!("{}: {e}", work.display())))?;
    sync(&work)?;
    std::fs::rename(&work, &store).map_err(|e| failed(format!("{}: {e}", store.display())))?;
    sync(&store)?;
    Ok(Inspection {
        path: store.display().to_string(),
        ..report
    })
}
