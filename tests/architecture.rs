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

/// The top-level modules of `src/` a file imports (`crate::X`, `crate::{X, …}`), comments
/// and the `#[cfg(test)] mod tests` block left out: a doc link or a test's helper is no
/// dependency of the code.
fn imports(text: &str) -> std::collections::BTreeSet<String> {
    let code = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    let code: String = code
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = std::collections::BTreeSet::new();
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: split at commas outside nested braces.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(ident(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            found.insert(ident(&item));
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|name| !name.is_empty());
    found
}

#[test]
fn no_import_circle_between_top_level_modules() {
    use std::collections::{BTreeMap, BTreeSet};
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            // A test module in a file of its own (`x/tests.rs`) is test code too.
            if path.extension().is_none_or(|x| x != "rs") || path.ends_with("tests.rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap();
            let first = relative.components().next().unwrap();
            let module = first.as_os_str().to_str().unwrap().trim_end_matches(".rs");
            if module == "lib" || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let deps = graph.entry(module.to_owned()).or_default();
            deps.extend(imports(&text).into_iter().filter(|m| m != module));
        }
    }
    // Depth-first search for a back edge; the cycle is printed as a path.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    assert!(graph.len() > 10, "found {} modules", graph.len());
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            panic!("import circle: {}", cycle.join(" -> "));
        }
    }
}

/// Every number ARCHITECTURE.md quotes is the code's: each phrase is built from the constant
/// it names, so changing either alone fails here.
#[test]
fn numbers_in_architecture_md_are_the_codes_constants() {
    use clap::Parser as _;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md"))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let size = |bytes: usize| match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b => format!("{} KiB", b >> 10),
    };
    let limits = llmtap::config::Limits::default();
    let dialect = |name: &str| {
        llmtap::dialects::DIALECTS
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("no dialect {name}"))
            .max_event
    };
    let run = llmtap::cli::Cli::try_parse_from(["llmtap"]).unwrap().run;
    let phrases = [
        format!(
            "request tee {}, non-streamed body {}, one event {}",
            size(limits.request_body),
            size(limits.response_body),
            size(limits.sse_line)
        ),
        format!("decoded bytes {} per body", size(limits.decoded_body)),
        format!(
            "JSON strings over {}",
            size(llmtap::dialects::sse::DEFAULT_KEEP)
        ),
        format!("A full queue ({} Ki calls)", llmtap::telemetry::QUEUE >> 10),
        format!(
            "batches of {} or every {} ms",
            llmtap::telemetry::export::BATCH,
            llmtap::telemetry::export::DELAY.as_millis()
        ),
        format!("default {}; past it", run.label_cap),
        format!(
            "keeps a cap of {})",
            llmtap::telemetry::metrics::Caps::all(run.label_cap).error_type
        ),
        format!(
            "that dialect allows {} events; Anthropic and Chat keep {}, Gemini {}",
            size(dialect("openai_responses")),
            size(dialect("anthropic_messages")),
            size(dialect("gemini_generate_content"))
        ),
        format!(
            "`--observe-budget`, default {}",
            size(run.observe_budget.as_u64() as usize)
        ),
    ];
    for phrase in phrases {
        assert!(
            doc.contains(&phrase),
            "ARCHITECTURE.md should say \"{phrase}\""
        );
    }
}
