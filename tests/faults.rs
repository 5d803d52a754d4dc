//! Faults around a compile: interrupted (SIGINT, kill -9) at any point, two compiles racing to
//! one output, a full disk, a read-only folder. Each leaves the old package or the new one,
//! whole, and no temporary folder — or, where nothing can be written, a clear error.

mod common;

use common::files;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A test folder with an MLP big enough to interrupt, and the two packages it compiles to
/// (fp32 and palettized), as references for "whole".
struct Setup {
    dir: tempfile::TempDir,
    model: PathBuf,
    /// A private temp directory (TMPDIR) so scratch folders can be counted.
    tmp: PathBuf,
    old: BTreeMap<String, Vec<u8>>,
    new: BTreeMap<String, Vec<u8>>,
}

const OLD: &[&str] = &["--precision", "fp32"];
const NEW: &[&str] = &["--weights", "palettize:4", "--weights-min-cosine", "0.9"];

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("mlp.onnx");
        common::write_mlp(&model, 1024, 8);
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let mut setup = Setup {
            dir,
            model,
            tmp,
            old: BTreeMap::new(),
            new: BTreeMap::new(),
        };
        let reference = setup.dir.path().join("reference.mlpackage");
        setup.compile(&reference, OLD).wait_ok();
        setup.old = files(&reference);
        setup.compile(&reference, NEW).wait_ok();
        setup.new = files(&reference);
        std::fs::remove_dir_all(&reference).unwrap();
        assert_ne!(setup.old, setup.new);
        setup
    }

    fn out_dir(&self) -> PathBuf {
        let out = self.dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        out
    }

    fn compile(&self, out: &Path, flags: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_edgec"))
            .arg("compile")
            .arg(&self.model)
            .arg("-o")
            .arg(out)
            .args(flags)
            .env("TMPDIR", &self.tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("edgec runs")
    }

    /// The package at `out` is the old one or the new one, byte for byte.
    fn assert_whole(&self, out: &Path, when: &str) {
        assert!(out.is_dir(), "{when}: no package at all");
        let got = files(out);
        assert!(
            got == self.old || got == self.new,
            "{when}: a package that is neither the old nor the new one"
        );
    }

    /// Nothing but the package in its folder, and no scratch folder in the temp directory.
    fn assert_clean(&self, out: &Path, when: &str) {
        let beside: Vec<_> = std::fs::read_dir(out.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "m.mlpackage")
            .collect();
        assert!(beside.is_empty(), "{when}: left beside the package: {beside:?}");
        let scratch: Vec<_> = std::fs::read_dir(&self.tmp)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(scratch.is_empty(), "{when}: left in the temp directory: {scratch:?}");
    }
}

trait WaitOk {
    fn wait_ok(self);
}

impl WaitOk for Child {
    fn wait_ok(self) {
        let out = self.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// How long the new compile takes here, so the interrupts can land all along it.
fn duration_of_new_compile(setup: &Setup, out: &Path) -> Duration {
    let start = Instant::now();
    setup.compile(out, NEW).wait_ok();
    start.elapsed()
}

/// SIGINT at points spread over the whole compile: the process exits 130 having removed its
/// temporary folders itself, or finished first; the package is whole either way.
#[test]
#[cfg(target_os = "linux")]
fn sigint_at_any_point_cleans_up_and_leaves_a_whole_package() {
    let setup = Setup::new();
    let out = setup.out_dir().join("m.mlpackage");
    let total = duration_of_new_compile(&setup, &out);
    let mut interrupted = 0;
    for step in 0..8u32 {
        setup.compile(&out, OLD).wait_ok();
        let child = setup.compile(&out, NEW);
        std::thread::sleep(total * step / 8);
        signal(&child, "-INT");
        let result = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        match result.status.code() {
            Some(130) => {
                interrupted += 1;
                assert!(stderr.contains("interrupted"), "{stderr}");
            }
            Some(0) => {}
            // Delivered before main installed the handler: nothing was written yet.
            None => {}
            other => panic!("step {step}: exit {other:?}: {stderr}"),
        }
        let when = format!("SIGINT at {step}/8 of the compile");
        setup.assert_whole(&out, &when);
        // Cleaned up by the interrupted process itself, not by a later run.
        setup.assert_clean(&out, &when);
    }
    assert!(interrupted > 0, "no SIGINT landed during a compile");
}

/// kill -9 at points spread over the whole compile: the package is whole, and the next compile
/// removes what the killed one left.
#[test]
#[cfg(target_os = "linux")]
fn kill_9_at_any_point_leaves_a_whole_package_and_the_next_compile_cleans_up() {
    let setup = Setup::new();
    let out = setup.out_dir().join("m.mlpackage");
    let total = duration_of_new_compile(&setup, &out);
    for step in 0..8u32 {
        setup.compile(&out, OLD).wait_ok();
        let mut child = setup.compile(&out, NEW);
        std::thread::sleep(total * step / 8);
        signal(&child, "-KILL");
        let _ = child.wait();
        let when = format!("kill -9 at {step}/8 of the compile");
        setup.assert_whole(&out, &when);
        setup.compile(&out, OLD).wait_ok();
        setup.assert_whole(&out, &when);
        setup.assert_clean(&out, &format!("{when}, then a compile"));
    }
}

/// Two compiles to one output at once: both succeed, the package is one of theirs, whole.
#[test]
fn two_compiles_to_one_output_each_write_whole() {
    let setup = Setup::new();
    let out = setup.out_dir().join("m.mlpackage");
    for round in 0..3 {
        let a = setup.compile(&out, OLD);
        let b = setup.compile(&out, NEW);
        a.wait_ok();
        b.wait_ok();
        let when = format!("round {round} of two racing compiles");
        setup.assert_whole(&out, &when);
        setup.assert_clean(&out, &when);
    }
}

/// A tmpfs mounted for the test, unmounted on drop; `None` when mounting is not allowed here.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, options: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn compile_to(model: &Path, out: &Path) -> (i32, String) {
    let result = Command::new(env!("CARGO_BIN_EXE_edgec"))
        .arg("compile")
        .arg(model)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    (
        result.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&result.stderr).into_owned(),
    )
}

/// A disk too small for the package: a clear error, and nothing left on it.
#[test]
#[cfg(target_os = "linux")]
fn a_full_disk_is_a_clear_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("mlp.onnx");
    common::write_mlp(&model, 512, 4); // 2 MB of fp16 weights
    let Some(mount) = Mount::tmpfs(&dir.path().join("small"), "size=1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    };
    let out = mount.0.join("m.mlpackage");
    let (code, stderr) = compile_to(&model, &out);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no space left on the disk"), "{stderr}");
    assert!(!stderr.contains("os error"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&mount.0).unwrap().collect();
    assert!(left.is_empty(), "left on the full disk: {left:?}");
}

/// A read-only folder: a clear error, nothing written.
#[test]
#[cfg(target_os = "linux")]
fn a_read_only_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::repo_root().join("testdata/models/tiny_cnn.onnx");
    let Some(mount) = Mount::tmpfs(&dir.path().join("ro"), "ro,size=1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    };
    let (code, stderr) = compile_to(&model, &mount.0.join("m.mlpackage"));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("the file system is read-only"), "{stderr}");
}
