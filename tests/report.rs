//! Compile reports (`compile --report FILE.json|FILE.html`): the JSON checked field by field
//! against the compile it describes and the package on disk; the CLI's format choice and
//! errors; the HTML rendered by a real headless browser (Debian's `chromium`, which
//! scripts/test.sh installs), whose DOM must hold a row per planned op and per weight, whose
//! script must run and sort, and in which no name can inject markup. Screenshots go to
//! target/tmp/report/. With EDGEC_CORPUS pointing at the real-model corpus, gpt2 and
//! mobilenet_v2 are rendered too.

mod common;

use common::edgec;
use edgec::report::{Report, ReportFile};
use edgec::{CompileOptions, CompileReport};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn test_model(name: &str) -> PathBuf {
    common::repo_root().join(format!("testdata/models/{name}.onnx"))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// 6-bit LUTs: compressible's weights stay compressed under the guard's default bar.
fn palettized() -> CompileOptions {
    CompileOptions {
        weights: vec![edgec::compression::parse_rule("palettize:6").unwrap()],
        ..Default::default()
    }
}

/// `(const ops, other ops)` in the package's `main`, counted from the program itself.
fn op_counts_on_disk(package: &Path) -> (usize, usize) {
    use edgec::proto::coreml::model;
    let pkg = edgec::coreml::inspect::read_package(package).unwrap();
    let Some(model::Type::MlProgram(program)) = &pkg.model.r#type else {
        panic!("{}: not an ML Program", package.display());
    };
    let main = &program.functions["main"];
    let ops = &main.block_specializations[&main.opset].operations;
    let constants = ops
        .iter()
        .filter(|o| o.r#type == "const" || o.r#type.starts_with("constexpr_"))
        .count();
    (constants, ops.len() - constants)
}

#[test]
fn the_json_report_describes_the_compile_and_the_package() {
    let tmp = tempfile::tempdir().unwrap();
    let model = test_model("compressible");
    let package = tmp.path().join("compressible.mlpackage");
    let options = palettized();
    let compile = edgec::compile(&model, &package, &options).unwrap();
    let file = ReportFile::new(tmp.path().join("report.json")).unwrap();
    file.write(&Report::new(&model, &package, &options, &compile)).unwrap();
    let json = read_json(&file.path);

    assert_eq!(json["schema_version"], edgec::report::json::SCHEMA_VERSION);
    assert_eq!(json["edgec_version"], env!("CARGO_PKG_VERSION"));
    let summary = &json["summary"];
    assert_eq!(summary["model"], model.display().to_string());
    assert_eq!(summary["package"], package.display().to_string());
    let sha = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(std::fs::read(&model).unwrap());
        digest.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(summary["source_sha256"], sha);
    assert_eq!(summary["target"], "metal");
    assert_eq!(summary["deployment_target"], "ios16");
    assert_eq!(summary["precision"], "fp16");
    assert_eq!(summary["compute_units"], "all");
    let total: f64 = compile.steps.iter().map(|s| s.duration.as_secs_f64()).sum();
    assert!((summary["seconds"].as_f64().unwrap() - total).abs() < 1e-9);

    // Op counts, against the program on disk.
    let (constants, ops) = op_counts_on_disk(&package);
    let counts = &json["op_counts"];
    assert_eq!(counts["onnx_nodes"], compile.onnx_nodes);
    assert_eq!(counts["mil_ops"], ops);
    assert_eq!(counts["constants"], constants);
    assert_eq!(
        counts["text"],
        format!(
            "{} ONNX nodes → {ops} MIL ops (+{constants} constants)",
            compile.onnx_nodes
        )
    );

    let steps = json["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    let expected: Vec<&str> = compile.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, expected);
    assert!(names.contains(&"compression_guard"), "{names:?}");
    for (row, step) in steps.iter().zip(&compile.steps) {
        assert_eq!(row["nodes_after"], step.nodes_after);
        assert!((row["seconds"].as_f64().unwrap() - step.duration.as_secs_f64()).abs() < 1e-9);
    }

    // The weights: the rows of the package's weights.json, sized as the weight file is.
    let rows = json["weights"].as_array().unwrap();
    assert_eq!(rows.len(), compile.weights.len());
    for (row, w) in rows.iter().zip(&compile.weights) {
        assert_eq!(row["name"], w.name);
        assert_eq!(row["scheme"], w.scheme.to_string());
        assert_eq!(row["bytes_before"], w.bytes_before);
        assert_eq!(row["bytes_after"], w.bytes_after);
    }
    assert_eq!(
        json["weights"],
        read_json(&package.join("Data/com.edgec/weights.json"))["weights"]
    );
    let compressed = rows.iter().filter(|r| r["scheme"] != "dense").count();
    assert!(compressed > 0, "palettize:6 compresses some weight of compressible");
    let sizes = &json["sizes"];
    assert_eq!(sizes["weight_tensors"], rows.len());
    assert_eq!(sizes["compressed_tensors"], compressed);
    let stored: u64 = rows.iter().map(|r| r["bytes_after"].as_u64().unwrap()).sum();
    let dense: u64 = rows.iter().map(|r| r["bytes_before"].as_u64().unwrap()).sum();
    assert_eq!(sizes["weights_stored_bytes"], stored);
    assert_eq!(sizes["weights_dense_bytes"], dense);
    assert!(stored < dense, "{stored} < {dense}");
    let weight_file = std::fs::metadata(package.join("Data/com.apple.CoreML/weights/weight.bin")).unwrap();
    assert_eq!(sizes["weight_file_bytes"], weight_file.len());

    let guard = compile.compression_guard.as_ref().expect("the guard ran");
    let reported = &json["compression_guard"];
    assert_eq!(reported["min_cosine"], guard.min_cosine);
    assert_eq!(reported["reached"], guard.reached());
    assert_eq!(reported["compressed_before"], guard.compressed_before);
    assert_eq!(
        reported["cosine_package"].as_array().unwrap().len(),
        compile.package.outputs.len()
    );

    // The plan: exactly the package's plan.json.
    assert_eq!(json["plan"], read_json(&package.join("Data/com.edgec/plan.json")));
    assert_eq!(json["plan"]["ops"].as_array().unwrap().len(), ops);
}

#[test]
fn compile_writes_the_report_its_extension_names() {
    let tmp = tempfile::tempdir().unwrap();
    let model = test_model("tiny_cnn");
    let package = tmp.path().join("tiny.mlpackage");
    let report = tmp.path().join("Report.JSON");
    let (code, _, stderr) = edgec(&[
        "compile",
        model.to_str().unwrap(),
        "-o",
        package.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("wrote report {}", report.display())),
        "{stderr}"
    );
    let json = read_json(&report);
    assert_eq!(json["summary"]["package"], package.display().to_string());
    assert_eq!(json["plan"], read_json(&package.join("Data/com.edgec/plan.json")));

    let html = tmp.path().join("tiny.Html");
    let (code, _, stderr) = edgec(&[
        "compile",
        model.to_str().unwrap(),
        "-o",
        package.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(std::fs::read_to_string(&html).unwrap().starts_with("<!DOCTYPE html>"));
}

#[test]
fn a_bad_report_path_is_refused_before_compiling_and_a_failed_write_names_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let model = test_model("tiny_cnn");
    let package = tmp.path().join("tiny.mlpackage");
    let compile = |report: &Path| {
        edgec(&[
            "compile",
            model.to_str().unwrap(),
            "-o",
            package.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ])
    };
    let (code, _, stderr) = compile(&tmp.path().join("report.txt"));
    assert_ne!(code, 0);
    assert!(
        stderr.contains("report.txt") && stderr.contains("FILE.json or FILE.html"),
        "{stderr}"
    );
    assert!(!package.exists(), "nothing is compiled for a bad --report");

    let unwritable = tmp.path().join("no such folder/report.html");
    let (code, _, stderr) = compile(&unwritable);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&unwritable.display().to_string()), "{stderr}");
    assert!(package.exists(), "the package is written before the report");
}

/// The browser, if there is one: `$EDGEC_CHROMIUM`, else Debian's /usr/bin/chromium. Without
/// one the browser tests say so and pass, except in CI (`CI` or `EDGEC_REQUIRE_BROWSER` set),
/// where they must run.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("EDGEC_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        return Some(path);
    }
    let required = std::env::var_os("CI").is_some() || std::env::var_os("EDGEC_REQUIRE_BROWSER").is_some();
    assert!(
        !required,
        "no chromium at {}: scripts/test.sh installs it (apt-get install chromium)",
        path.display()
    );
    eprintln!(
        "skipped: no chromium at {} (apt-get install chromium, or set EDGEC_CHROMIUM)",
        path.display()
    );
    None
}

/// Runs headless chromium on `url` with `args`, in a fresh profile, with a time limit; its
/// stdout.
fn run_chromium(browser: &Path, url: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            panic!("chromium took over 3 minutes on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = reader.join().unwrap();
    let stderr = child
        .stderr
        .take()
        .map(|e| std::io::read_to_string(e).unwrap_or_default());
    assert!(
        status.success(),
        "chromium failed on {url}: {}",
        stderr.unwrap_or_default()
    );
    out
}

fn file_url(path: &Path) -> String {
    let path = path.canonicalize().unwrap();
    let mut url = String::from("file://");
    for byte in path.to_string_lossy().bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => url.push(byte as char),
            _ => url.push_str(&format!("%{byte:02X}")),
        }
    }
    url
}

/// The rows of the table with id `id` in a serialized DOM (each from `<tr` to its `</tr>`).
fn table_rows<'a>(dom: &'a str, id: &str) -> Vec<&'a str> {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the DOM"));
    let body = &dom[start..];
    let body = &body[body.find("<tbody>").expect("a tbody")..];
    let body = &body[..body.find("</tbody>").expect("the tbody ends")];
    body.split("<tr").skip(1).collect()
}

/// The JSON row index of each row of a table, in the order shown.
fn row_order(dom: &str, table: &str) -> Vec<usize> {
    table_rows(dom, table)
        .iter()
        .map(|row| {
            let at = row.find("data-i=\"").unwrap() + 8;
            row[at..at + row[at..].find('"').unwrap()].parse().unwrap()
        })
        .collect()
}

/// What a rendered report must show: a row per planned op and per weight, in program order,
/// and the filters the script reveals (so it ran without an error).
fn check_dom(dom: &str, json: &Value, what: &str) {
    let ops = json["plan"]["ops"].as_array().unwrap();
    let op_rows = table_rows(dom, "op-table");
    assert_eq!(op_rows.len(), ops.len(), "{what}: a row per op");
    for (k, (row, op)) in op_rows.iter().zip(ops).enumerate() {
        assert!(
            row.contains(&format!("data-i=\"{k}\"")),
            "{what}: row {k} in program order"
        );
        let unit = op["unit"].as_str().unwrap();
        assert!(
            row.contains(&format!("class=\"unit {unit}\"")),
            "{what}: row {k}: {row}"
        );
    }
    let weights = json["weights"].as_array().unwrap();
    assert_eq!(
        table_rows(dom, "weight-table").len(),
        weights.len(),
        "{what}: a row per weight"
    );
    assert_eq!(
        table_rows(dom, "step-table").len(),
        json["steps"].as_array().unwrap().len(),
        "{what}: a row per step"
    );
    let segments = json["plan"]["segments"].as_array().unwrap();
    assert_eq!(
        dom.matches("class=\"block ").count(),
        segments.len(),
        "{what}: a timeline block per segment"
    );
    assert!(
        dom.contains("<div class=\"toolbar\" id=\"op-filters\">"),
        "{what}: the script ran and showed the filters"
    );
}

/// A PNG's width and height, from its header.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 24,
        "{} is a PNG",
        path.display()
    );
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Renders `html`, checks its DOM and saves a screenshot as `name.png`.
fn render_and_check(browser: &Path, html: &Path, json: &Value, name: &str) {
    let url = file_url(html);
    let dom = run_chromium(browser, &url, &["--dump-dom"]);
    check_dom(&dom, json, name);

    let png = screenshot_dir().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    run_chromium(
        browser,
        &url,
        &[&format!("--screenshot={}", png.display()), "--window-size=1400,2200"],
    );
    assert_eq!(png_size(&png), (1400, 2200), "{}", png.display());
    eprintln!("screenshot: {}", png.display());
}

/// The script sorts: by the address (`#sort=`), and by clicks on a header.
fn check_sorting(browser: &Path, html: &Path, json: &Value, name: &str) {
    let url = file_url(html);
    // The op of largest cost share comes first when the address asks for that order.
    let ops = json["plan"]["ops"].as_array().unwrap();
    let share = |k: usize| ops[k]["cost_share"].as_f64().unwrap();
    let sorted = run_chromium(browser, &format!("{url}#sort=ops.cost_share.desc"), &["--dump-dom"]);
    let order = row_order(&sorted, "op-table");
    assert_eq!(order.len(), ops.len());
    assert!(
        order.windows(2).all(|w| share(w[0]) >= share(w[1])),
        "{name}: sorted by cost share, largest first: {order:?}"
    );

    // Clicks on a header: the first sorts numbers largest first, the second smallest first.
    let weights = json["weights"].as_array().unwrap();
    let stored = |k: usize| weights[k]["bytes_after"].as_u64().unwrap();
    for (clicks, descending) in [(1, true), (2, false)] {
        let page = std::fs::read_to_string(html).unwrap();
        let click = "document.querySelector('#weight-table th[data-key=bytes_after]').click();".repeat(clicks);
        let at = page.rfind("</body>").unwrap();
        let clicked = html.with_file_name(format!("{name}-clicked.html"));
        std::fs::write(
            &clicked,
            format!("{}<script>{click}</script>{}", &page[..at], &page[at..]),
        )
        .unwrap();
        let dom = run_chromium(browser, &file_url(&clicked), &["--dump-dom"]);
        let order = row_order(&dom, "weight-table");
        assert_eq!(order.len(), weights.len());
        assert!(
            order.windows(2).all(|w| if descending {
                stored(w[0]) >= stored(w[1])
            } else {
                stored(w[0]) <= stored(w[1])
            }),
            "{name}: {clicks} click(s) on `stored`: {order:?}"
        );
        let sort = if descending { "descending" } else { "ascending" };
        assert!(
            dom.contains(&format!("data-key=\"bytes_after\" tabindex=\"0\" aria-sort=\"{sort}\"")),
            "{name}: the header says how it sorts"
        );
    }
}

/// The JSON report a page embeds.
fn embedded_json(page: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"edgec-report\">";
    let start = page.find(open).expect("the page embeds its JSON") + open.len();
    let len = page[start..].find("</script>").unwrap();
    serde_json::from_str(&page[start..start + len]).unwrap()
}

/// Compiles `model` with `--report NAME.html`; the page and the JSON it embeds.
fn compile_with_html(model: &Path, dir: &Path, name: &str, extra: &[&str]) -> (PathBuf, Value) {
    let package = dir.join(format!("{name}.mlpackage"));
    let html = dir.join(format!("{name}.html"));
    let mut args = vec![
        "compile",
        model.to_str().unwrap(),
        "-o",
        package.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, _, stderr) = edgec(&args);
    assert_eq!(code, 0, "{name}: {stderr}");
    let json = embedded_json(&std::fs::read_to_string(&html).unwrap());
    // The page's data is the package's own plan.
    assert_eq!(
        json["plan"],
        read_json(&package.join("Data/com.edgec/plan.json")),
        "{name}"
    );
    (html, json)
}

#[test]
fn html_reports_render_in_a_browser() {
    let Some(browser) = chromium() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for (name, extra) in [
        // 4 bits: the guard leaves every weight dense again, and says why.
        ("compressible", &["--weights", "palettize:4"][..]),
        ("compressible_6bit", &["--weights", "palettize:6"][..]),
        ("tiny_cnn", &[][..]),
        ("placement_mix", &[][..]),
    ] {
        let model = test_model(name.trim_end_matches("_6bit"));
        let (html, json) = compile_with_html(&model, tmp.path(), name, extra);
        render_and_check(&browser, &html, &json, name);
        if name == "compressible_6bit" {
            check_sorting(&browser, &html, &json, name);
        }
    }
}

/// The compile of tiny_cnn with markup for names: the page must show it as text.
fn hostile_report(dir: &Path) -> (CompileReport, PathBuf, PathBuf, CompileOptions) {
    let model = test_model("tiny_cnn");
    let package = dir.join("tiny.mlpackage");
    let options = CompileOptions::default();
    let mut compile = edgec::compile(&model, &package, &options).unwrap();
    let hostile = "</script><img id=\"injected\" src=x onerror=\"document.title='owned'\">&amp;{{data}}";
    compile.plan.ops[0].name = hostile.to_string();
    compile.plan.segments[0].first_op = hostile.to_string();
    compile.weights[0].name = hostile.to_string();
    compile.steps[0].name = hostile.to_string();
    (compile, model, package, options)
}

#[test]
fn names_are_text_in_the_page_never_markup() {
    let tmp = tempfile::tempdir().unwrap();
    let (compile, model, package, options) = hostile_report(tmp.path());
    let report = Report::new(&model, &package, &options, &compile);
    let html = edgec::report::html::render(&report);
    // The only script ends are the page's own two.
    assert_eq!(html.matches("</script").count(), 2, "{html}");
    assert!(!html.contains("<img"));

    let Some(browser) = chromium() else {
        return;
    };
    let file = ReportFile::new(tmp.path().join("hostile.html")).unwrap();
    file.write(&report).unwrap();
    let dom = run_chromium(&browser, &file_url(&file.path), &["--dump-dom"]);
    // Serialized, text escapes `<` and attribute values `"`: only an element reads like this.
    assert!(
        !dom.contains("<img id=\"injected\""),
        "markup from a name reached the DOM"
    );
    assert!(!dom.contains("<title>owned"));
    let first_row = table_rows(&dom, "op-table")[0];
    assert!(
        first_row.contains("&lt;/script&gt;&lt;img id=\"injected\""),
        "the name is shown as text: {first_row}"
    );
    // The embedded JSON still parsed (the script ran) and rows still match it.
    let json = edgec::report::json::to_json(&report);
    check_dom(&dom, &json, "hostile names");
}

/// `--input-shape` values for a corpus model's symbolic dims: its meta.json's `freeze_shapes`,
/// else the shape of the input in inputs.npz.
fn corpus_shape_args(dir: &Path) -> Vec<String> {
    let meta = read_json(&dir.join("meta.json"));
    let fixed = &meta["freeze_shapes"];
    let given = edgec::npy::read_npz(&dir.join("inputs.npz")).unwrap_or_default();
    let mut args = Vec::new();
    for input in meta["inputs"].as_array().into_iter().flatten() {
        let name = input["name"].as_str().unwrap();
        let dims = input["shape"].as_array().unwrap();
        if dims.iter().all(Value::is_u64) {
            continue;
        }
        let frozen: Option<Vec<u64>> = dims
            .iter()
            .map(|d| d.as_u64().or_else(|| fixed[d.as_str()?].as_u64()))
            .collect();
        let shape = frozen.or_else(|| {
            given
                .iter()
                .find(|(k, _)| k.strip_prefix("input:").unwrap_or(k) == name)
                .map(|(_, a)| a.shape.iter().map(|&d| d as u64).collect())
        });
        if let Some(shape) = shape {
            let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
            args.push("--input-shape".to_string());
            args.push(format!("{name}={}", dims.join("x")));
        }
    }
    args
}

#[test]
fn corpus_reports_render_in_a_browser() {
    let Some(corpus) = std::env::var_os("EDGEC_CORPUS").map(PathBuf::from) else {
        eprintln!("skipped: EDGEC_CORPUS is not set (the real-model corpus, e.g. /work/corpus-out)");
        return;
    };
    let Some(browser) = chromium() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for (name, weights) in [("mobilenet_v2", "palettize:6"), ("gpt2", "palettize:8")] {
        let dir = corpus.join(name);
        let model = dir.join("model.onnx");
        assert!(model.exists(), "EDGEC_CORPUS has no {}", model.display());
        let mut extra = corpus_shape_args(&dir);
        extra.extend(["--weights".to_string(), weights.to_string()]);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let started = Instant::now();
        let (html, json) = compile_with_html(&model, tmp.path(), name, &extra);
        eprintln!("{name}: compiled in {:.1} s", started.elapsed().as_secs_f64());
        render_and_check(&browser, &html, &json, name);
    }
}
