//! A newcomer's first hour: what the README tells them exists. (The walkthrough itself runs
//! against a fresh `make run` in `make smoke-local`, tools/local/walkthrough.py.)

use std::collections::BTreeSet;

/// Every `make <target>` a document names: in backticks, or at the start of a code line.
fn targets_named(text: &str) -> BTreeSet<String> {
    text.match_indices("make ")
        .filter(|(at, _)| {
            let before = &text[..*at];
            before.ends_with('`') || before.ends_with('\n') || before.ends_with("$ ")
        })
        .filter_map(|(at, _)| {
            // The first word after `make` and its flags (`make -s items`).
            let target = text[at + 5..].split_whitespace().find(|word| !word.starts_with('-'))?;
            let target: String = target.chars().take_while(|c| c.is_ascii_lowercase() || *c == '-').collect();
            (!target.is_empty()).then_some(target)
        })
        .collect()
}

#[test]
fn make_help_lists_every_target_the_documents_name() {
    let root = integration_tests::root();
    let mut named = BTreeSet::new();
    for doc in ["README.md", "docs/architecture.md", "tools/zernio-sim/README.md"] {
        named.extend(targets_named(&std::fs::read_to_string(root.join(doc)).unwrap()));
    }
    assert!(named.contains("run") && named.contains("test") && named.contains("items"), "{named:?}");
    let help =
        std::process::Command::new("make").args(["-s", "--no-print-directory", "help"]).current_dir(&root).output();
    let help = help.expect("make");
    assert!(help.status.success(), "{}", String::from_utf8_lossy(&help.stderr));
    let help = String::from_utf8(help.stdout).unwrap();
    let listed: BTreeSet<String> = help
        .lines()
        .filter_map(|l| l.strip_prefix("make "))
        .map(|l| l.chars().take_while(|c| c.is_ascii_lowercase() || *c == '-').collect())
        .collect();
    let missing: Vec<&String> = named.difference(&listed).collect();
    assert!(missing.is_empty(), "make help does not list {missing:?}:\n{help}");
    let makefile = std::fs::read_to_string(root.join("Makefile")).unwrap();
    for target in &listed {
        assert!(makefile.contains(&format!("\n{target}:")), "make help lists {target}, which the Makefile lacks");
    }
}
