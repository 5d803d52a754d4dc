//! Temporary folders edgec keeps only while it runs (a package being written beside its output,
//! scratch programs in the temp directory), and moving a finished package into place.
//!
//! Three layers keep a compile from leaving junk or half a package, whatever stops it:
//! - every temporary folder is registered while it exists, so an interrupt handler (the CLI's,
//!   on SIGINT/SIGTERM) can remove them all before the process exits ([`remove_all_live`]);
//! - each is named with the process id, so when a process dies without cleaning up (kill -9,
//!   a power cut), a later run can tell its folders from those of a compile still running,
//!   and removes them ([`remove_stale`]);
//! - a finished package replaces the old one in one atomic step ([`move_into_place`]); an
//!   interrupt waits for that step to finish.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Folders this process is writing and would leave behind if it stopped now.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Held while a package is moved into place, so an interrupt never lands in the middle.
static SWAP: Mutex<()> = Mutex::new(());

/// Locks a process-wide mutex, poisoned or not.
pub(crate) fn lock<T>(mutex: &'static Mutex<T>) -> MutexGuard<'static, T> {
    // A panic elsewhere must not stop the cleanup.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A temporary folder, removed (with everything in it) when dropped, unless [`kept`](Self::keep).
#[derive(Debug)]
pub struct TempFolder {
    path: Option<PathBuf>,
}

impl TempFolder {
    /// Registers `path` (not yet created) as a temporary folder of this process.
    pub fn new(path: PathBuf) -> TempFolder {
        lock(&LIVE).push(path.clone());
        TempFolder { path: Some(path) }
    }

    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// The folder is no longer temporary (it was moved into place): forget it.
    pub fn keep(mut self) {
        if let Some(path) = self.path.take() {
            unregister(&path);
        }
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_dir_all(&path);
            unregister(&path);
        }
    }
}

fn unregister(path: &Path) {
    let mut live = lock(&LIVE);
    if let Some(i) = live.iter().position(|p| p == path) {
        live.swap_remove(i);
    }
}

/// `std::fs::create_dir_all` for folders in or under temporary ones. It holds the registry's
/// lock while it creates, and [`remove_all_live`] keeps that lock until the process exits, so a
/// thread still writing cannot recreate a folder the interrupt handler has removed: it blocks
/// here instead.
pub fn create_dir_all(path: &Path) -> std::io::Result<()> {
    let _live = lock(&LIVE);
    std::fs::create_dir_all(path)
}

/// Removes every temporary folder of this process; for an interrupt handler that exits right
/// after. It waits for a package being moved into place, and blocks new temporary folders
/// from being registered until the process exits.
pub fn remove_all_live() {
    let swap = lock(&SWAP);
    let live = lock(&LIVE);
    for _ in 0..2 {
        for path in live.iter() {
            let _ = std::fs::remove_dir_all(path);
        }
        // A thread still writing may have recreated a folder just removed: once more.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Held until the process exits.
    std::mem::forget(live);
    std::mem::forget(swap);
}

/// Whether no process with this id is running. Only Linux can tell (`/proc`); elsewhere every
/// process counts as running, so nothing of a live compile is ever removed.
pub fn process_is_gone(pid: u32) -> bool {
    cfg!(target_os = "linux") && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the entries of `dir` named `{prefix}{pid}` or `{prefix}{pid}-{anything}` whose process is gone.
/// Best effort: a folder that cannot be read or removed is left as it is.
pub fn remove_stale(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(process_is_gone) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Scratch folders in the temp directory are named `edgec-{purpose}-{pid}-{n}`.
pub const SCRATCH_PREFIX: &str = "edgec-";

/// Removes the scratch folders (`edgec-{purpose}-{pid}-{n}`) of dead edgec processes from the
/// temp directory, whatever their purpose.
pub fn remove_stale_scratch() {
    let dir = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(SCRATCH_PREFIX)) else {
            continue;
        };
        let mut parts = rest.split('-');
        let purpose_is_a_word = parts
            .next()
            .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphabetic()));
        let pid = parts.next().and_then(|p| p.parse::<u32>().ok());
        if purpose_is_a_word && pid.is_some_and(process_is_gone) && entry.path().is_dir() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Moves the finished package `staged` to `out`, replacing any package there in one atomic
/// step: at every instant `out` is the old package or the new one, whole. Two compiles to the
/// same output may race here; each leaves a whole package, and the last one wins.
pub fn move_into_place(staged: TempFolder, out: &Path) -> std::io::Result<()> {
    let _swap = lock(&SWAP);
    loop {
        match std::fs::rename(staged.path(), out) {
            Ok(()) => {
                staged.keep();
                return Ok(());
            }
            // `out` is a package (a non-empty folder): exchange the two, then remove the old one,
            // which is now at the staging path (dropping `staged` does that).
            Err(e) if out.is_dir() => match exchange(staged.path(), out) {
                Ok(()) => return Ok(()),
                // Another compile removed `out` in between: a plain rename again.
                Err(x) if x.kind() == std::io::ErrorKind::NotFound => continue,
                Err(x) if x.kind() == std::io::ErrorKind::Unsupported => return Err(e),
                Err(x) => return Err(x),
            },
            Err(e) => return Err(e),
        }
    }
}

/// Swaps two paths atomically (Linux `renameat2(RENAME_EXCHANGE)`).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes()).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both pointers are NUL-terminated strings that live across the call.
    let status = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere: move the old package aside, the new one in, then remove the old one. An
/// interrupt waits for both moves (the swap lock); only a hard kill in between leaves the old
/// package beside the output, under a hidden name.
#[cfg(not(target_os = "linux"))]
fn exchange(staged: &Path, out: &Path) -> std::io::Result<()> {
    let aside = staged.with_extension("old");
    std::fs::rename(out, &aside)?;
    std::fs::rename(staged, out)?;
    std::fs::rename(&aside, staged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(dir: &Path, name: &str, content: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("Manifest.json"), content).unwrap();
        path
    }

    #[test]
    fn a_new_package_replaces_the_old_one_and_nothing_is_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = package(dir.path(), "m.mlpackage", "old");
        let staged = TempFolder::new(dir.path().join(".m.mlpackage.edgec-tmp-1"));
        package(dir.path(), ".m.mlpackage.edgec-tmp-1", "new");
        move_into_place(staged, &out).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("Manifest.json")).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(lock(&LIVE).iter().all(|p| !p.starts_with(dir.path())));
    }

    #[test]
    fn a_dropped_temp_folder_is_removed_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scratch");
        let folder = TempFolder::new(path.clone());
        std::fs::create_dir_all(path.join("a/b")).unwrap();
        assert!(lock(&LIVE).contains(&path));
        drop(folder);
        assert!(!path.exists());
        assert!(!lock(&LIVE).contains(&path));
    }
}
