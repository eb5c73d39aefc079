//! The layering, checked over the sources: which crate may depend on which, and which
//! module may import which inside each crate. An arrow that runs back up, or a circle,
//! fails here before it can settle in.
//!
//! The check reads `Cargo.toml` dependencies and the `crate::`, `super::` and `self::`
//! paths of every source file (comments, strings and `#[cfg(test)]` items left out: a
//! test may reach across to build its fixture).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The workspace's crates, lowest first, with the workspace crates and the outside ones
/// each must not depend on.
const CRATES: [(&str, &[&str]); 5] = [
    (
        "core",
        &[
            "latent_live_training",
            "latent_live",
            "nice-plug",
            "nice-plug-egui",
            "egui",
        ],
    ),
    (
        "training",
        &["latent_live", "nice-plug", "nice-plug-egui", "egui"],
    ),
    ("plugin", &["latent_live_training"]),
    ("xtask", &[]),
    ("tests", &[]),
];

/// The top-level modules of each crate, lowest first: a module may import its own
/// submodules and the modules of a lower rank, never one of its own rank or above. The
/// crate root (`lib.rs`, `main.rs`) may import them all.
const MODULES: [(&str, &[&[&str]]); 3] = [
    ("core", &[&["files"], &["music"], &["model"]]),
    (
        "training",
        &[&["corpus"], &["eval", "train"], &["analysis"]],
    ),
    // The worker, the audio thread and the editor meet only in `link`.
    (
        "plugin",
        &[
            // `testing` (tests and benchmarks only) imports nothing of the crate.
            &["state", "testing"],
            &["params"],
            &["link"],
            &["worker", "audio", "editor"],
        ],
    ),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn no_crate_depends_on_one_above_it() {
    let workspace = fs::read_to_string(root().join("Cargo.toml")).unwrap();
    for (krate, _) in CRATES {
        assert!(
            workspace.contains(&format!("\"{krate}\"")),
            "{krate} is not a workspace member"
        );
    }
    for (krate, forbidden) in CRATES {
        let manifest = fs::read_to_string(root().join(krate).join("Cargo.toml")).unwrap();
        for (section, deps) in dependency_sections(&manifest) {
            if let Some(bad) = forbidden.iter().find(|bad| deps.contains(**bad)) {
                panic!("{krate}/Cargo.toml [{section}] names {bad}, which is not below it");
            }
        }
    }
}

#[test]
fn no_module_imports_one_of_its_rank_or_above() {
    let mut problems = Vec::new();
    for (krate, ranks) in MODULES {
        let graph = import_graph(&root().join(krate).join("src"));
        let rank_of = |module: &str| ranks.iter().position(|rank| rank.contains(&module));
        for top in graph.keys().filter_map(|m| m.first()) {
            if rank_of(top).is_none() {
                problems.push(format!(
                    "{krate}: module `{top}` has no place in the layering"
                ));
            }
        }
        for (from, targets) in &graph {
            let Some(from_top) = from.first() else {
                continue;
            };
            for to in targets {
                let to_top = &to[0];
                if to_top == from_top {
                    continue;
                }
                let (Some(a), Some(b)) = (rank_of(from_top), rank_of(to_top)) else {
                    continue;
                };
                if b >= a {
                    problems.push(format!(
                        "{krate}: `{}` imports `{}`",
                        from.join("::"),
                        to.join("::")
                    ));
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "arrows that run back up:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_module_imports_run_in_a_circle() {
    let mut problems = Vec::new();
    for (krate, _) in MODULES {
        let graph = import_graph(&root().join(krate).join("src"));
        // Every module's imports, with those of its submodules folded in: a circle between
        // two folders counts, whichever files of them it runs through.
        let mut folded: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for (from, targets) in &graph {
            for depth in 1..=from.len() {
                let node = from[..depth].to_vec();
                for to in targets {
                    // Sibling-or-cousin edges only: a module using its own submodule, or
                    // a submodule its parent, is containment, not a circle.
                    let to_node: Vec<String> = to.iter().take(depth).cloned().collect();
                    if to_node.len() == depth
                        && to_node[..depth - 1] == node[..depth - 1]
                        && to_node != node
                    {
                        folded.entry(node.clone()).or_default().insert(to_node);
                    }
                }
            }
        }
        for cycle in cycles(&folded) {
            problems.push(format!(
                "{krate}: {}",
                cycle
                    .iter()
                    .map(|m| m.join("::"))
                    .collect::<Vec<_>>()
                    .join(" -> ")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "import circles:\n{}",
        problems.join("\n")
    );
}

/// `[dependencies]`-like sections of a manifest, by name, with the crates each names.
fn dependency_sections(manifest: &str) -> Vec<(String, BTreeSet<String>)> {
    let mut sections: Vec<(String, BTreeSet<String>)> = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((header.to_string(), BTreeSet::new()));
        } else if let Some((section, deps)) = sections.last_mut() {
            if section.contains("dependencies") && !line.starts_with('#') {
                if let Some(name) = line
                    .split(['=', '.'])
                    .next()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                {
                    deps.insert(name.to_string());
                }
            }
        }
    }
    sections.retain(|(section, _)| section.contains("dependencies"));
    sections
}

/// Each module of the crate under `src` (by path, `[]` for the root) and the modules of
/// the same crate it names.
fn import_graph(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let files = rust_files(src);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_path(src, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_path(src, file);
        let code = without_tests(&without_comments_and_strings(
            &fs::read_to_string(file).unwrap(),
        ));
        let mut targets = BTreeSet::new();
        for path in paths(&code) {
            let absolute = match path.first().map(String::as_str) {
                Some("crate") => path[1..].to_vec(),
                Some("super") => {
                    let mut base = module.clone();
                    let mut rest = &path[..];
                    while rest.first().map(String::as_str) == Some("super") {
                        base.pop();
                        rest = &rest[1..];
                    }
                    base.extend(rest.iter().cloned());
                    base
                }
                Some("self") => module.iter().chain(&path[1..]).cloned().collect(),
                _ => continue,
            };
            // The longest prefix that is a module of this crate.
            if let Some(target) = (1..=absolute.len())
                .rev()
                .map(|n| absolute[..n].to_vec())
                .find(|p| modules.contains(p))
            {
                if target != module && !module.starts_with(&target) {
                    targets.insert(target);
                }
            }
        }
        graph.insert(module, targets);
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("src/main.rs") {
            // (`main.rs` is a crate of its own, over the library.)
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `lib.rs` the root.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The code with comments and string and char literals blanked (doc links in comments
/// are not imports).
fn without_comments_and_strings(code: &str) -> String {
    let bytes = code.as_bytes();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &code[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').map_or(bytes.len(), |n| i + n);
            i = end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(bytes.len(), |n| i + n + 2);
            i = end;
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].chars().take_while(|&c| c == '#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let start = i + 2 + hashes;
            i = code[start..]
                .find(&close)
                .map_or(bytes.len(), |n| start + n + close.len());
            out.push_str("\"\"");
        } else if bytes[i] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if bytes[i] == b'\'' && is_char_literal(rest) {
            let len = rest[1..].find('\'').unwrap() + 2;
            i += len;
            out.push_str("' '");
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `'a'`, `'\n'`, `'\''`, `'\u{1F600}'`; not a lifetime (`'a`).
fn is_char_literal(rest: &str) -> bool {
    let mut chars = rest.chars().skip(1);
    matches!(
        (chars.next(), chars.next()),
        (Some('\\'), Some(_)) | (Some(_), Some('\''))
    )
}

/// The code without the items under `#[cfg(test)]`.
fn without_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        // The item ends at its first `;` outside braces, or with the brace block it opens.
        let mut depth = 0usize;
        let mut end = item.len();
        for (i, c) in item.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Every path that starts with `crate`, `super` or `self`, with `use` groups expanded:
/// `crate::{a::b, c}` is `crate::a::b` and `crate::c`.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate", "super", "self"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start).map(|n| from + n) {
            from = at + start.len();
            let before = at.checked_sub(1).map(|i| bytes[i]);
            if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':') {
                continue;
            }
            if !code[from..].starts_with("::") {
                continue;
            }
            let (tails, _) = path_tail(&code[from + 2..]);
            for tail in tails {
                found.push(std::iter::once(start.to_string()).chain(tail).collect());
            }
        }
    }
    found
}

/// The segments after a `::`: one path, or a `{...}` group of them. Returns the paths and
/// the bytes read.
fn path_tail(code: &str) -> (Vec<Vec<String>>, usize) {
    let code_trimmed = code.trim_start();
    let skipped = code.len() - code_trimmed.len();
    if let Some(group) = code_trimmed.strip_prefix('{') {
        let mut paths = Vec::new();
        let mut at = 0;
        loop {
            let rest = group[at..].trim_start_matches(|c: char| c.is_whitespace() || c == ',');
            at = group.len() - rest.len();
            if rest.starts_with('}') || rest.is_empty() {
                return (paths, skipped + 1 + at + 1);
            }
            let (tails, used) = path_tail(rest);
            paths.extend(tails);
            at += used.max(1);
            // `e as f`: the new name is not a path.
            let after = group[at..].trim_start();
            if let Some(renamed) = after
                .strip_prefix("as")
                .filter(|r| r.starts_with(char::is_whitespace))
            {
                let renamed = renamed.trim_start();
                let name = renamed
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(renamed.len());
                at = group.len() - renamed.len() + name;
            }
        }
    }
    let ident_len = code_trimmed
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(code_trimmed.len());
    if ident_len == 0 {
        // `*` or something else that names no module.
        return (vec![vec![]], skipped + 1);
    }
    let ident = code_trimmed[..ident_len].to_string();
    let after = &code_trimmed[ident_len..];
    if let Some(more) = after.strip_prefix("::") {
        let (tails, used) = path_tail(more);
        let paths = tails
            .into_iter()
            .map(|t| std::iter::once(ident.clone()).chain(t).collect())
            .collect();
        return (paths, skipped + ident_len + 2 + used);
    }
    // `x as y` renames the last segment; the rest of the item is not part of the path.
    (vec![vec![ident]], skipped + ident_len)
}

/// The circles of a directed graph, each once, as the modules it runs through.
fn cycles(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    let mut found: Vec<Vec<Vec<String>>> = Vec::new();
    for start in graph.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        while let Some((node, path)) = stack.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if next == start {
                    let mut cycle = path.clone();
                    // One rotation of each circle: the one starting at its least module.
                    let least = cycle.iter().enumerate().min_by_key(|(_, m)| *m).unwrap().0;
                    cycle.rotate_left(least);
                    if !found.contains(&cycle) {
                        found.push(cycle);
                    }
                } else if !path.contains(next) && next > start {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    found
}

#[test]
fn the_graph_holds_the_imports_it_checks() {
    let graph = import_graph(&root().join("plugin").join("src"));
    let module = |path: &str| path.split("::").map(String::from).collect::<Vec<_>>();
    for (from, to) in [
        ("audio::sequencer", "params"),
        ("worker::inference", "link"),
        ("editor", "link::view"),
        ("state", "state::clips"),
    ] {
        let from = module(from);
        assert!(
            graph[&from].contains(&module(to)),
            "{from:?} -> {to}: {:?}",
            graph[&from]
        );
    }
}

#[test]
fn the_path_reader_reads_groups_renames_and_relative_paths() {
    let code = without_tests(&without_comments_and_strings(
        "use crate::{a::b, c::{d, e as f}};\n// crate::comment\nlet s = \"crate::string\";\nuse \
         super::super::g;\n#[cfg(test)]\nmod tests { use crate::h; }\nfn x() { crate::i::j(); }",
    ));
    let mut found = paths(&code);
    found.sort();
    let expect: Vec<Vec<String>> = [
        &["crate", "a", "b"][..],
        &["crate", "c", "d"],
        &["crate", "c", "e"],
        &["crate", "i", "j"],
        &["super", "super", "g"],
    ]
    .iter()
    .map(|p| p.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(found, expect);
}
