//! What the tester keeps: the history of the requests sent (the last `HISTORY_LEN`, newest
//! last, walked back with ctrl-r) and the collection of saved, named requests. Both live next
//! to the store (`.epoxy-tester-history.json`, `.epoxy-tester-requests.json`), written whole
//! and atomically; without a file (`--readonly`) they are kept in memory only.

use super::send::{Named, Saved};
use std::path::{Path, PathBuf};

/// How many requests the history keeps.
pub const HISTORY_LEN: usize = 100;

/// Writes `text` to `p` through a temporary file, so that a reader never sees half of it.
fn write_atomically(p: &Path, text: &str) -> std::io::Result<()> {
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, p)
}

/// A JSON file's value, or the default when it is missing or unreadable.
fn read_json<T: serde::de::DeserializeOwned + Default>(p: Option<&Path>) -> T {
    p.and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// The requests sent, oldest first.
#[derive(Debug, Default)]
pub struct History {
    pub entries: Vec<Saved>,
    /// Where ctrl-r is in the history (None: not walking it).
    pos: Option<usize>,
    file: Option<PathBuf>,
}

impl History {
    /// The history kept in `file` (empty if there is none yet).
    pub fn load(file: Option<&Path>) -> History {
        History {
            entries: read_json(file),
            pos: None,
            file: file.map(Path::to_path_buf),
        }
    }

    /// Adds a request sent (moving an identical one to the end), keeps the last `HISTORY_LEN`,
    /// and writes the file.
    pub fn remember(&mut self, s: Saved) {
        self.entries.retain(|h| *h != s);
        self.entries.push(s);
        if self.entries.len() > HISTORY_LEN {
            let drop = self.entries.len() - HISTORY_LEN;
            self.entries.drain(..drop);
        }
        self.pos = None;
        if let Some(p) = &self.file
            && let Ok(text) = serde_json::to_string_pretty(&self.entries)
            && let Err(e) = write_atomically(p, &text)
        {
            tracing::warn!(file = %p.display(), error = %e, "cannot save the tester's history");
        }
    }

    /// The entry before the last one returned (from the newest, cycling), and where it is
    /// (`3/5`, counted from the newest).
    pub fn prev(&mut self) -> Option<(Saved, String)> {
        let n = self.entries.len();
        if n == 0 {
            return None;
        }
        let pos = match self.pos {
            Some(0) | None => n - 1,
            Some(p) => p - 1,
        };
        self.pos = Some(pos);
        Some((self.entries[pos].clone(), format!("{}/{n}", n - pos)))
    }
}

/// The saved, named requests, sorted by name.
#[derive(Debug, Default)]
pub struct Collection {
    pub items: Vec<Named>,
    file: Option<PathBuf>,
}

impl Collection {
    /// The collection kept next to the history file `history` (empty if there is none yet).
    pub fn load(history: Option<&Path>) -> Collection {
        let file = history.map(|h| h.with_file_name(".epoxy-tester-requests.json"));
        Collection {
            items: read_json(file.as_deref()),
            file,
        }
    }

    /// Keeps `request` under `name` (replacing one of the same name) and writes the file.
    pub fn keep(&mut self, name: &str, request: Saved) -> Result<(), String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("keep NAME: a name for the request".into());
        }
        match self.items.iter_mut().find(|n| n.name == name) {
            Some(n) => n.request = request,
            None => self.items.push(Named {
                name: name.to_string(),
                request,
            }),
        }
        self.items.sort_by(|a, b| a.name.cmp(&b.name));
        self.save()
    }

    /// Drops the request `name` and writes the file.
    pub fn forget(&mut self, name: &str) -> Result<(), String> {
        self.items.retain(|n| n.name != name);
        self.save()
    }

    fn save(&self) -> Result<(), String> {
        let Some(p) = &self.file else {
            return Ok(());
        };
        let text = serde_json::to_string_pretty(&self.items).map_err(|e| e.to_string())?;
        write_atomically(p, &text).map_err(|e| format!("{}: {e}", p.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str) -> Saved {
        Saved {
            method: "GET".into(),
            path: path.into(),
            ..Saved::default()
        }
    }

    #[test]
    fn the_history_keeps_the_last_hundred_once_each_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".epoxy-tester-history.json");
        let mut h = History::load(Some(&file));
        assert!(h.prev().is_none(), "empty");
        for i in 0..HISTORY_LEN + 5 {
            h.remember(req(&format!("/{i}")));
        }
        h.remember(req("/50"));
        assert_eq!(h.entries.len(), HISTORY_LEN);
        assert_eq!(h.entries.first().unwrap().path, "/5", "the oldest dropped");
        assert_eq!(
            h.entries.last().unwrap().path,
            "/50",
            "sent again: the newest"
        );
        assert_eq!(h.entries.iter().filter(|s| s.path == "/50").count(), 1);
        // ctrl-r walks back from the newest, and cycles.
        let mut h = History::load(Some(&file));
        assert_eq!(h.entries.len(), HISTORY_LEN, "read back from the file");
        let (s, at) = h.prev().unwrap();
        assert_eq!((s.path.as_str(), at.as_str()), ("/50", "1/100"));
        let (s, _) = h.prev().unwrap();
        assert_eq!(s.path, "/104");
        for _ in 0..HISTORY_LEN - 1 {
            h.prev();
        }
        assert_eq!(h.prev().unwrap().0.path, "/104", "cycled round");
    }

    #[test]
    fn the_collection_is_kept_by_name_next_to_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let history = dir.path().join(".epoxy-tester-history.json");
        let mut c = Collection::load(Some(&history));
        assert_eq!(
            c.keep("  ", req("/x")),
            Err("keep NAME: a name for the request".into())
        );
        c.keep("zeta", req("/z")).unwrap();
        c.keep("alpha", req("/a")).unwrap();
        c.keep("zeta", req("/z2")).unwrap();
        let text = std::fs::read_to_string(dir.path().join(".epoxy-tester-requests.json")).unwrap();
        let on_disk: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(on_disk[0]["name"], "alpha");
        assert_eq!(on_disk[1]["path"], "/z2", "the same name replaced");
        c.forget("alpha").unwrap();
        let c = Collection::load(Some(&history));
        let names: Vec<&str> = c.items.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["zeta"]);
        // Without a file: in memory only.
        let mut m = Collection::load(None);
        m.keep("a", req("/")).unwrap();
        assert_eq!(m.items.len(), 1);
    }
}
