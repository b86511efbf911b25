//! The directory store: `<dir>/<plural>/<namespace>/<name>.yaml`, one resource per file.
//!
//! - resourceVersion is a digest of the file's bytes, so an external edit changes it too;
//! - writes take an exclusive lock on `<dir>/.epoxy.lock` (across processes), check the
//!   precondition, write a temp file and rename it over the target (atomic);
//! - a file that cannot be read is reported in the listing and never rewritten or deleted;
//! - a watcher (inotify through `notify`, plus a slow rescan as a safety net) republishes the
//!   whole state whenever a file changes.

use super::{Listing, Precondition, Result, Store, StoreError};
use crate::api::{DEFAULT_NAMESPACE, Kind, ParseError, Resource, ResourceKey, parse_one};
use notify::Watcher;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

pub struct DirStore {
    root: PathBuf,
    watch: Mutex<Option<watch::Receiver<Arc<Listing>>>>,
}

/// Where the CLI's store lives when no `--dir` is given: `EPOXY_DIR`, else
/// `$XDG_DATA_HOME/epoxy/store`, else `~/.local/share/epoxy/store`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("EPOXY_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("epoxy").join("store")
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The version of a file's content.
fn version_of(bytes: &[u8]) -> String {
    format!("{:x}", md5::compute(bytes))[..16].to_string()
}

impl DirStore {
    /// Opens (and creates) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(io_err(&root))?;
        Ok(DirStore {
            root,
            watch: Mutex::new(None),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds `key`.
    pub fn path_of(&self, key: &ResourceKey) -> PathBuf {
        self.root
            .join(key.kind.plural())
            .join(&key.namespace)
            .join(format!("{}.yaml", key.name))
    }

    /// The version of the file at `path` (`None` if there is none), without parsing it.
    fn version_on_disk(&self, path: &Path) -> Result<Option<String>> {
        match fs::read(path) {
            Ok(b) => Ok(Some(version_of(&b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Reads one file; the resource's identity comes from its path.
    fn read_file(&self, kind: Kind, namespace: &str, path: &Path) -> Result<Option<Resource>> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(path)(e)),
        };
        let origin = path.display().to_string();
        let text = String::from_utf8(bytes.clone()).map_err(|_| {
            StoreError::Unreadable(ParseError {
                origin: origin.clone(),
                line: None,
                column: None,
                reason: "not UTF-8 text".into(),
            })
        })?;
        let mut r = parse_one(&text, &origin).map_err(StoreError::Unreadable)?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let unreadable = |reason: String| {
            StoreError::Unreadable(ParseError {
                origin: origin.clone(),
                line: None,
                column: None,
                reason,
            })
        };
        if r.kind() != kind {
            return Err(unreadable(format!(
                "holds a {} but lies under {}/",
                r.kind().name(),
                kind.plural()
            )));
        }
        if r.name() != stem {
            return Err(unreadable(format!(
                "metadata.name `{}` does not match the file name `{stem}`",
                r.name()
            )));
        }
        match r.meta().namespace.as_deref() {
            None | Some("") => r.meta_mut().namespace = Some(namespace.to_string()),
            Some(ns) if ns != namespace => {
                return Err(unreadable(format!(
                    "metadata.namespace `{ns}` does not match its folder `{namespace}`"
                )));
            }
            _ => {}
        }
        r.meta_mut().resource_version = Some(version_of(&bytes));
        Ok(Some(r))
    }

    /// What the resource files look like from outside (path, size, modification time, inode),
    /// without reading them: the safety-net rescan re-reads only when this changes, so a
    /// store of megabytes costs a few directory reads every 2 s, not a parse. (What it cannot
    /// see: a rewrite in place to the same size within one tick of the filesystem's clock and
    /// without an inotify event; local filesystems keep nanoseconds, and inotify reports it.)
    fn fingerprint(&self) -> Vec<(PathBuf, u64, Option<SystemTime>, u64)> {
        let mut out = Vec::new();
        for kind in Kind::ALL {
            let Ok(namespaces) = fs::read_dir(self.root.join(kind.plural())) else {
                continue;
            };
            for ns in namespaces.flatten() {
                let Ok(files) = fs::read_dir(ns.path()) else {
                    continue;
                };
                for f in files.flatten() {
                    if f.file_name().to_string_lossy().starts_with('.') {
                        continue;
                    }
                    if let Ok(m) = f.metadata() {
                        use std::os::unix::fs::MetadataExt;
                        out.push((f.path(), m.len(), m.modified().ok(), m.ino()));
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// Reads the whole directory; unreadable files are listed as errors.
    pub fn scan(&self) -> Listing {
        let mut listing = Listing::default();
        for kind in Kind::ALL {
            let kdir = self.root.join(kind.plural());
            let Ok(namespaces) = fs::read_dir(&kdir) else {
                continue;
            };
            for ns in namespaces.flatten() {
                let ns_name = ns.file_name().to_string_lossy().to_string();
                if ns_name.starts_with('.') || !ns.path().is_dir() {
                    continue;
                }
                let Ok(files) = fs::read_dir(ns.path()) else {
                    continue;
                };
                for f in files.flatten() {
                    let name = f.file_name().to_string_lossy().to_string();
                    if name.starts_with('.') || !(name.ends_with(".yaml") || name.ends_with(".yml"))
                    {
                        continue;
                    }
                    match self.read_file(kind, &ns_name, &f.path()) {
                        Ok(Some(r)) => {
                            listing.resources.insert(r.key(), r);
                        }
                        Ok(None) => {}
                        Err(StoreError::Unreadable(e)) => listing.errors.push(e),
                        Err(e) => listing.errors.push(ParseError {
                            origin: f.path().display().to_string(),
                            line: None,
                            column: None,
                            reason: e.to_string(),
                        }),
                    }
                }
            }
        }
        listing.errors.sort_by(|a, b| a.origin.cmp(&b.origin));
        listing
    }

    /// Runs `f` holding the store's write lock (shared by every process using this directory).
    fn locked<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let lock_path = self.root.join(".epoxy.lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        let out = f();
        let _ = lock.unlock();
        out
    }

    /// Writes `resource`, if `pre` holds, to a temporary file beside its own (synced when
    /// `sync`): the caller holds the lock, and renames it into place.
    fn stage(&self, mut resource: Resource, pre: &Precondition, sync: bool) -> Result<Staged> {
        if resource.namespace().is_empty() {
            resource.meta_mut().namespace = Some(DEFAULT_NAMESPACE.to_string());
        }
        let key = resource.key();
        if let Some(p) = crate::api::naming::name_problem(&key.name)
            .or_else(|| crate::api::naming::namespace_problem(&key.namespace))
        {
            return Err(StoreError::Invalid(format!("{key}: {p}")));
        }
        let path = self.path_of(&key);
        // The version is the bytes' digest: a replaced file whose version is the one the write
        // was based on parsed when it was read, and is not parsed again. Otherwise it is, so
        // that a file that does not parse is reported (and never overwritten).
        let on_disk = self.version_on_disk(&path)?;
        let read_at_version =
            matches!((pre, &on_disk), (Precondition::Version(v), Some(d)) if v == d);
        if !read_at_version {
            let current = match on_disk {
                Some(_) => self.read_file(key.kind, &key.namespace, &path)?,
                None => None,
            };
            pre.check(&key, current.as_ref())?;
        }
        // The version is derived from the bytes; it is never stored in the file.
        resource.meta_mut().resource_version = None;
        let text = resource.to_yaml();
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let tmp = dir.join(format!(".{}.yaml.tmp-{}", key.name, std::process::id()));
        let write = || -> std::io::Result<()> {
            // A secret's file is readable by its owner only, as its key material should be.
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            if key.kind == crate::api::Kind::Secret {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            f.write_all(text.as_bytes())?;
            if sync {
                f.sync_all()?;
            }
            Ok(())
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&path)(e));
        }
        resource.meta_mut().resource_version = Some(version_of(text.as_bytes()));
        Ok(Staged {
            resource,
            tmp,
            path,
        })
    }

    /// Writes many resources under one lock: each to a temporary file, then the file system
    /// synced once (`syncfs`, not an fsync per file: 10,000 files took 10 s), then each renamed
    /// into place and the file system synced again. A resource whose precondition fails, or
    /// whose file cannot be written, gets its error; the others are written.
    pub fn put_many_sync(&self, writes: Vec<(Resource, Precondition)>) -> Vec<Result<Resource>> {
        let mut results: Vec<Result<Resource>> = Vec::with_capacity(writes.len());
        let mut staged: Vec<(usize, PathBuf, PathBuf)> = Vec::new();
        let locked = self.locked(|| {
            for (i, (resource, pre)) in writes.into_iter().enumerate() {
                match self.stage(resource, &pre, false) {
                    Ok(s) => {
                        staged.push((i, s.tmp, s.path));
                        results.push(Ok(s.resource));
                    }
                    Err(e) => results.push(Err(e)),
                }
            }
            sync_file_system(&self.root)?;
            for (i, tmp, path) in &staged {
                if let Err(e) = fs::rename(tmp, path) {
                    let _ = fs::remove_file(tmp);
                    results[*i] = Err(io_err(path)(e));
                }
            }
            sync_file_system(&self.root)
        });
        if let Err(e) = locked {
            // Nothing is known to be durable: every staged write reports the failure.
            let message = e.to_string();
            for (i, tmp, _) in staged {
                let _ = fs::remove_file(&tmp);
                results[i] = Err(StoreError::Invalid(message.clone()));
            }
        }
        results
    }

    pub fn put_sync(&self, resource: Resource, pre: Precondition) -> Result<Resource> {
        self.locked(|| {
            let s = self.stage(resource, &pre, true)?;
            if let Err(e) = fs::rename(&s.tmp, &s.path) {
                let _ = fs::remove_file(&s.tmp);
                return Err(io_err(&s.path)(e));
            }
            Ok(s.resource)
        })
    }

    pub fn delete_sync(&self, key: &ResourceKey, pre: Precondition) -> Result<()> {
        let path = self.path_of(key);
        self.locked(|| {
            let current = match self.read_file(key.kind, &key.namespace, &path) {
                Ok(c) => c,
                // Deleting an unreadable file by name is the user's explicit choice.
                Err(StoreError::Unreadable(_)) if pre == Precondition::Any => {
                    fs::remove_file(&path).map_err(io_err(&path))?;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            if current.is_none() {
                return Err(StoreError::NotFound(key.clone()));
            }
            pre.check(key, current.as_ref())?;
            fs::remove_file(&path).map_err(io_err(&path))
        })
    }

    /// Starts the watcher: file events (debounced) and a rescan every 2 s both republish.
    fn start_watch(&self) -> watch::Receiver<Arc<Listing>> {
        let (tx, rx) = watch::channel(Arc::new(self.scan()));
        let (ev_tx, ev_rx) = std::sync::mpsc::channel::<()>();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res
                && is_relevant(&ev)
            {
                let _ = ev_tx.send(());
            }
        });
        let watcher = match watcher {
            Ok(mut w) => match w.watch(&self.root, notify::RecursiveMode::Recursive) {
                Ok(()) => Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "file watching unavailable; rescanning every 2s");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "file watching unavailable; rescanning every 2s");
                None
            }
        };
        let root = self.root.clone();
        std::thread::Builder::new()
            .name("epoxy-dir-watch".into())
            .spawn(move || {
                let _keep = watcher;
                let store = DirStore {
                    root,
                    watch: Mutex::new(None),
                };
                let mut seen = store.fingerprint();
                loop {
                    let event = match ev_rx.recv_timeout(Duration::from_secs(2)) {
                        Ok(()) => true,
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => false,
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                            std::thread::sleep(Duration::from_secs(2));
                            false
                        }
                    };
                    if event {
                        // Let a burst of events (temp file, rename) settle, then rescan once.
                        std::thread::sleep(Duration::from_millis(30));
                        while ev_rx.try_recv().is_ok() {}
                        seen = store.fingerprint();
                    } else {
                        // No event (or no watcher): rescan only when the files look different.
                        let now = store.fingerprint();
                        if now == seen {
                            if tx.is_closed() {
                                return;
                            }
                            continue;
                        }
                        seen = now;
                    }
                    let next = store.scan();
                    if tx.is_closed() {
                        return;
                    }
                    tx.send_if_modified(|cur| {
                        if **cur == next {
                            false
                        } else {
                            *cur = Arc::new(next);
                            true
                        }
                    });
                }
            })
            .ok();
        rx
    }
}

/// Whether a file event can change the store: a write, create, rename or removal of a
/// resource file or folder. Reads (our own rescans cause them) and dotfiles (temp files, the
/// lock, state files kept next to the store) are not.
fn is_relevant(ev: &notify::Event) -> bool {
    use notify::EventKind;
    if matches!(ev.kind, EventKind::Access(_) | EventKind::Other) {
        return false;
    }
    ev.paths.iter().any(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| !n.starts_with('.'))
    })
}

#[async_trait::async_trait]
impl Store for DirStore {
    fn describe(&self) -> String {
        format!("dir {}", self.root.display())
    }

    async fn list(&self) -> Result<Listing> {
        Ok(self.scan())
    }

    async fn get(&self, key: &ResourceKey) -> Result<Resource> {
        self.read_file(key.kind, &key.namespace, &self.path_of(key))?
            .ok_or_else(|| StoreError::NotFound(key.clone()))
    }

    async fn put(&self, resource: Resource, pre: Precondition) -> Result<Resource> {
        self.put_sync(resource, pre)
    }

    async fn put_many(&self, writes: Vec<(Resource, Precondition)>) -> Vec<Result<Resource>> {
        self.put_many_sync(writes)
    }

    async fn delete(&self, key: &ResourceKey, pre: Precondition) -> Result<()> {
        self.delete_sync(key, pre)
    }

    fn watch(&self) -> watch::Receiver<Arc<Listing>> {
        let mut guard = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        guard.get_or_insert_with(|| self.start_watch()).clone()
    }
}

/// A resource written to its temporary file, to be renamed into place.
struct Staged {
    resource: Resource,
    tmp: PathBuf,
    path: PathBuf,
}

/// Makes everything written on the file system holding `dir` durable (`syncfs(2)`).
#[allow(unsafe_code)]
fn sync_file_system(dir: &Path) -> Result<()> {
    let d = fs::File::open(dir).map_err(io_err(dir))?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: `d` is an open file descriptor for the duration of the call.
        if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
            return Err(io_err(dir)(std::io::Error::last_os_error()));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        d.sync_all().map_err(io_err(dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The safety-net rescan re-reads only when the fingerprint moves: it must move for every
    /// kind of change a missed event could hide, and stay put otherwise.
    #[test]
    fn the_fingerprint_moves_with_every_change_to_a_resource_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).unwrap();
        let empty = store.fingerprint();
        let ns = dir.path().join("upstreams").join("default");
        fs::create_dir_all(&ns).unwrap();
        let file = ns.join("a.yaml");
        fs::write(&file, "spec: {}\n").unwrap();
        let one = store.fingerprint();
        assert_ne!(one, empty, "a new file");
        assert_eq!(store.fingerprint(), one, "nothing changed");
        // A rewrite of the same size (a new modification time).
        std::thread::sleep(Duration::from_millis(20));
        fs::write(&file, "spec: []\n").unwrap();
        let rewritten = store.fingerprint();
        assert_ne!(rewritten, one, "rewritten in place");
        // Replaced by rename, as epoxy and editors write (a new inode).
        let tmp = ns.join(".a.yaml.tmp");
        fs::write(&tmp, "spec: []\n").unwrap();
        fs::rename(&tmp, &file).unwrap();
        assert_ne!(store.fingerprint(), rewritten, "replaced by rename");
        // Dotfiles (temp files, state kept next to the store) are not resources.
        let before = store.fingerprint();
        fs::write(ns.join(".scratch"), "x").unwrap();
        assert_eq!(store.fingerprint(), before, "a dotfile");
        fs::remove_file(&file).unwrap();
        assert_eq!(store.fingerprint(), empty, "removed");
    }
}
