//! ARCHITECTURE.md must not drift from the tree: every path it names exists, and every test
//! it names is a test function, every metric it names is spelled in `names.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn every_path_and_test_named_in_architecture_md_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut paths = 0;
    let mut tests = 0;
    let sources: String = std::fs::read_dir(root.join("tests"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let names = std::fs::read_to_string(root.join("src/telemetry/names.rs")).unwrap();
    // Words in backticks: paths (contain '/') or test names (snake_case with underscores).
    for token in doc.split('`').skip(1).step_by(2) {
        let token = token.trim();
        let first = token.split('/').next().unwrap_or_default();
        if [
            "src",
            "tests",
            "crates",
            "deploy",
            "dashboards",
            "benches",
            "scripts",
        ]
        .contains(&first)
            && token.contains('/')
        {
            assert!(
                root.join(token).exists(),
                "ARCHITECTURE.md names missing path {token}"
            );
            paths += 1;
        } else if token.starts_with("llmtap_") {
            let metric = token.split('{').next().unwrap_or_default();
            assert!(
                names.contains(&format!("\"{metric}\"")),
                "ARCHITECTURE.md names unknown metric {metric}"
            );
        } else if token.len() > 20
            && token
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
        {
            assert!(
                sources.contains(&format!("fn {token}(")),
                "ARCHITECTURE.md names missing test {token}"
            );
            tests += 1;
        }
    }
    for line in doc.lines().filter(|l| l.contains("src/")) {
        for word in line.split_whitespace().filter(|w| w.starts_with("src/")) {
            let word = word.trim_end_matches([',', '.', ')']);
            assert!(
                root.join(word).exists(),
                "ARCHITECTURE.md flow names missing {word}"
            );
            paths += 1;
        }
    }
    assert!(
        paths > 10 && tests > 5,
        "found {paths} paths and {tests} tests"
    );
}
