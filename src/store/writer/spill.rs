//! The spill file: an append-only, local copy of every write not yet in the store.
//!
//! Each write the writer takes is appended as one JSON line (`{"seq":…,"write":…}`) before
//! it is tried against the store; kept writes (everything but lag samples) are fsynced, so
//! a plan, an audit row or a drill step survives SIGKILL and power loss once its append
//! returns. When every queued write has landed, the file is truncated. At start the file
//! is read back in order and its writes go first (every write is idempotent by its id, so a
//! write that had landed before the crash lands once). A torn last line (the process died in
//! the middle of an append) is skipped; an unreadable line elsewhere is skipped and the file
//! is kept aside as `spill.jsonl.corrupt-<unix time>` for a human to read.
//!
//! One orchestrator per directory: an exclusive lock on `lock` refuses a second one.
//! Writes the store refuses for good go to `dead-letters.jsonl` here when the store refuses
//! the dead-letter row too.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::Write;
use crate::store::dead_letters::DeadLetter;

/// The spill file's name in its directory.
pub const FILE: &str = "spill.jsonl";
/// The dead letters' file, used when the store refuses a dead-letter row.
pub const DEAD_LETTERS: &str = "dead-letters.jsonl";

/// Why the spill directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    /// The directory or a file in it could not be created, opened, read or written.
    #[error("orchestrator.spill_dir `{path}`: {what}: {source}")]
    Io {
        /// The path concerned.
        path: String,
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Another orchestrator holds the directory.
    #[error(
        "orchestrator.spill_dir `{0}` is in use by another orchestrator process; give each orchestrator its own directory"
    )]
    Locked(String),
    /// A write could not be encoded (should not happen: every write is plain data).
    #[error("encoding a {kind} write for the spill file: {source}")]
    Encode {
        /// The write's kind.
        kind: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// One line of the file.
#[derive(Serialize, Deserialize)]
struct Line<W> {
    seq: u64,
    write: W,
}

/// What reading the file back found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Replay {
    /// Writes read back, in order.
    pub writes: usize,
    /// A torn last line, skipped.
    pub torn: bool,
    /// Unreadable lines skipped (the file was kept aside).
    pub unreadable: usize,
}

/// The spill file's state, for status.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SpillStatus {
    /// The file.
    pub path: String,
    /// Writes in the file now (not yet all in the store).
    pub entries: u64,
    /// The file's size.
    pub bytes: u64,
    /// Writes read back from it at start.
    pub replayed: u64,
    /// The last error appending to it (the write stays in memory).
    pub last_error: Option<String>,
}

/// The open spill directory.
pub struct Spill {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    next_seq: u64,
    entries: u64,
    bytes: u64,
    replayed: u64,
    last_error: Option<String>,
    /// Held for the lock; released when dropped.
    _lock: File,
}

impl std::fmt::Debug for Spill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spill").field("path", &self.path).field("entries", &self.entries).finish()
    }
}

fn io<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(std::io::Error) -> SpillError + 'a {
    move |source| SpillError::Io { path: path.display().to_string(), what, source }
}

impl Spill {
    /// Opens (creating) `dir`, locks it, and reads back the writes a previous run left.
    ///
    /// # Errors
    /// [`SpillError`] when the directory cannot be used or another process holds it.
    pub fn open(dir: &Path) -> Result<(Spill, Vec<Write>, Replay), SpillError> {
        std::fs::create_dir_all(dir).map_err(io(dir, "creating the directory"))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path, "opening the lock file"))?;
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => return Err(SpillError::Locked(dir.display().to_string())),
            Err(e) => return Err(io(&lock_path, "locking")(e.into())),
        }
        let path = dir.join(FILE);
        let (writes, replay, next_seq) = read_back(&path)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(io(&path, "opening the spill file"))?;
        let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        let spill = Spill {
            dir: dir.to_path_buf(),
            path,
            file,
            next_seq,
            entries: writes.len() as u64,
            bytes,
            replayed: writes.len() as u64,
            last_error: None,
            _lock: lock,
        };
        Ok((spill, writes, replay))
    }

    /// Appends `w`; fsyncs when `sync`. Returns its sequence number.
    ///
    /// # Errors
    /// [`SpillError`]; the caller keeps the write in memory.
    pub fn append(&mut self, w: &Write, sync: bool) -> Result<u64, SpillError> {
        let seq = self.next_seq;
        let mut text = serde_json::to_vec(&Line { seq, write: w })
            .map_err(|source| SpillError::Encode { kind: w.kind(), source })?;
        text.push(b'\n');
        let done = self.file.write_all(&text).map_err(io(&self.path, "appending"));
        let done =
            done.and_then(|()| if sync { self.file.sync_data().map_err(io(&self.path, "fsync")) } else { Ok(()) });
        match done {
            Ok(()) => {
                self.next_seq += 1;
                self.entries += 1;
                self.bytes += text.len() as u64;
                self.last_error = None;
                Ok(seq)
            }
            Err(e) => {
                self.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Empties the file: everything in it is in the store.
    ///
    /// # Errors
    /// [`SpillError`]; the file then still holds writes already stored (replaying them is harmless).
    pub fn clear(&mut self) -> Result<(), SpillError> {
        self.file.set_len(0).map_err(io(&self.path, "truncating"))?;
        self.file.seek(SeekFrom::Start(0)).map_err(io(&self.path, "rewinding"))?;
        self.entries = 0;
        self.bytes = 0;
        Ok(())
    }

    /// Writes in the file now.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Appends a dead letter to `dead-letters.jsonl` (fsynced).
    ///
    /// # Errors
    /// [`SpillError`].
    pub fn dead_letter(&self, d: &DeadLetter) -> Result<(), SpillError> {
        let path = self.dir.join(DEAD_LETTERS);
        let mut f = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path, "opening"))?;
        let mut text = serde_json::to_vec(d).map_err(|source| SpillError::Encode { kind: "dead_letter", source })?;
        text.push(b'\n');
        f.write_all(&text).map_err(io(&path, "appending"))?;
        f.sync_data().map_err(io(&path, "fsync"))
    }

    /// Its state.
    pub fn status(&self) -> SpillStatus {
        SpillStatus {
            path: self.path.display().to_string(),
            entries: self.entries,
            bytes: self.bytes,
            replayed: self.replayed,
            last_error: self.last_error.clone(),
        }
    }
}

/// Reads the file back: its writes in order, what was skipped, the next sequence number.
fn read_back(path: &Path) -> Result<(Vec<Write>, Replay, u64), SpillError> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Replay::default(), 1)),
        Err(e) => return Err(io(path, "opening the spill file")(e)),
    };
    let mut lines = Vec::new();
    let mut reader = BufReader::new(f);
    loop {
        let mut buf = Vec::new();
        let n = reader.read_until(b'\n', &mut buf).map_err(io(path, "reading the spill file"))?;
        if n == 0 {
            break;
        }
        lines.push(buf);
    }
    let mut replay = Replay::default();
    let mut writes = Vec::new();
    let mut next_seq = 1;
    let last = lines.len().saturating_sub(1);
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_slice::<Line<Write>>(line) {
            Ok(l) => {
                next_seq = next_seq.max(l.seq + 1);
                writes.push(l.write);
            }
            Err(_) if i == last && !line.ends_with(b"\n") => replay.torn = true,
            Err(_) => replay.unreadable += 1,
        }
    }
    replay.writes = writes.len();
    if replay.unreadable > 0 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let aside = path.with_extension(format!("jsonl.corrupt-{now}"));
        std::fs::copy(path, &aside).map_err(io(&aside, "keeping the unreadable spill file aside"))?;
    }
    if replay.torn || replay.unreadable > 0 {
        // Rewrite the file with the readable writes only, so appends start on a line of their own.
        let mut text = Vec::new();
        for (i, w) in writes.iter().enumerate() {
            serde_json::to_writer(&mut text, &Line { seq: i as u64 + 1, write: w })
                .map_err(|source| SpillError::Encode { kind: w.kind(), source })?;
            text.push(b'\n');
        }
        next_seq = writes.len() as u64 + 1;
        let tmp = path.with_extension("jsonl.tmp");
        std::fs::write(&tmp, &text).map_err(io(&tmp, "rewriting the spill file"))?;
        File::open(&tmp).and_then(|f| f.sync_all()).map_err(io(&tmp, "fsync"))?;
        std::fs::rename(&tmp, path).map_err(io(path, "replacing the spill file"))?;
    }
    Ok((writes, replay, next_seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AuditRecord;

    fn audit(n: u128) -> Write {
        Write::Audit(AuditRecord {
            id: uuid::Uuid::from_u128(n),
            at: chrono::DateTime::from_timestamp(1_700_000_000, 123_456_000).expect("a valid time"),
            actor: "tester".into(),
            action: "drill.start".into(),
            target: Some("primary".into()),
            outcome: "201 Created".into(),
            request_id: None,
            details: serde_json::json!({ "reason": "nul \u{0} inside" }),
        })
    }

    fn ids(ws: &[Write]) -> Vec<u128> {
        ws.iter()
            .map(|w| match w {
                Write::Audit(a) => a.id.as_u128(),
                other => panic!("unexpected {}", other.kind()),
            })
            .collect()
    }

    #[test]
    fn writes_appended_are_read_back_in_order_by_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, back, _) = Spill::open(dir.path()).unwrap();
            assert!(back.is_empty());
            for n in 1..=3 {
                s.append(&audit(n), true).unwrap();
            }
            assert_eq!(s.entries(), 3);
        }
        let (s, back, replay) = Spill::open(dir.path()).unwrap();
        assert_eq!(ids(&back), vec![1, 2, 3]);
        assert_eq!(back[0], audit(1), "a write reads back equal to what was appended");
        assert_eq!(replay, Replay { writes: 3, torn: false, unreadable: 0 });
        assert_eq!(s.status().replayed, 3);
    }

    #[test]
    fn a_cleared_file_reads_back_empty_and_sequence_numbers_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _, _) = Spill::open(dir.path()).unwrap();
        assert_eq!(s.append(&audit(1), false).unwrap(), 1);
        s.clear().unwrap();
        assert_eq!(s.append(&audit(2), true).unwrap(), 2);
        drop(s);
        let (_, back, _) = Spill::open(dir.path()).unwrap();
        assert_eq!(ids(&back), vec![2]);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_appends_start_on_a_fresh_line() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _, _) = Spill::open(dir.path()).unwrap();
            s.append(&audit(1), true).unwrap();
        }
        let path = dir.path().join(FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":2,\"write\":{\"kind\":\"aud").unwrap();
        drop(f);
        {
            let (mut s, back, replay) = Spill::open(dir.path()).unwrap();
            assert_eq!(ids(&back), vec![1]);
            assert!(replay.torn);
            s.append(&audit(3), true).unwrap();
        }
        let (_, back, replay) = Spill::open(dir.path()).unwrap();
        assert_eq!(ids(&back), vec![1, 3]);
        assert!(!replay.torn);
    }

    #[test]
    fn an_unreadable_line_is_skipped_and_the_file_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _, _) = Spill::open(dir.path()).unwrap();
            s.append(&audit(1), true).unwrap();
        }
        let path = dir.path().join(FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"not json\n").unwrap();
        drop(f);
        {
            let (mut s, _, _) = Spill::open(dir.path()).unwrap();
            s.append(&audit(2), true).unwrap();
        }
        let (_, back, _) = Spill::open(dir.path()).unwrap();
        assert_eq!(ids(&back), vec![1, 2]);
        let aside = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().starts_with("spill.jsonl.corrupt-"));
        assert!(aside, "the unreadable file is kept aside");
    }

    #[test]
    fn a_dead_letter_the_store_refused_is_kept_whole_in_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _, _) = Spill::open(dir.path()).unwrap();
        let e = crate::store::StoreError::bad_value("outcome", "x", "text");
        let letter = DeadLetter::new(&audit(7), &e, chrono::Utc::now());
        s.dead_letter(&letter).unwrap();
        s.dead_letter(&letter).unwrap();
        let text = std::fs::read_to_string(dir.path().join(DEAD_LETTERS)).unwrap();
        let back: Vec<DeadLetter> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(back, vec![letter.clone(), letter.clone()]);
        let write: Write = serde_json::from_str(&back[0].payload).unwrap();
        assert_eq!(write, audit(7), "the payload is the refused write itself");
        assert_eq!(s.entries(), 0, "dead letters are not in the spill file");
    }

    #[test]
    fn a_second_orchestrator_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_held, _, _) = Spill::open(dir.path()).unwrap();
        let e = Spill::open(dir.path()).unwrap_err();
        assert!(matches!(e, SpillError::Locked(_)), "{e}");
        assert!(e.to_string().contains("its own directory"), "{e}");
    }
}
