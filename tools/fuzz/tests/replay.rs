//! Replays every committed input of each fuzz target through the same checks cargo fuzz runs, on
//! stable: its seeds (`fuzz/seeds/<target>/`: the sample events, publish bodies and the
//! simulator's answers), the corpus fuzzing grew (`fuzz/corpus/<target>/`, minimised), and every
//! crash once found (`fuzz/regressions/<target>/`).

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut found = Vec::new();
    for folder in ["seeds", "corpus", "regressions"].map(|kind| root.join(kind).join(target)) {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                let bytes = std::fs::read(&path).expect("a corpus file");
                found.push((path, bytes));
            }
        }
    }
    found.sort();
    found
}

fn replay(target: &str, check: fn(&[u8])) {
    let inputs = inputs(target);
    assert!(inputs.len() >= 5, "{target}: the committed corpus is missing ({} inputs)", inputs.len());
    for (path, bytes) in &inputs {
        let outcome = std::panic::catch_unwind(|| check(bytes));
        assert!(outcome.is_ok(), "{target}: {} fails its checks again", path.display());
    }
}

#[test]
fn the_webhook_corpus_replays_clean() {
    replay("webhook", fuzz_targets::webhook);
}

#[test]
fn the_publish_request_corpus_replays_clean() {
    replay("publish_request", fuzz_targets::publish_request);
}

#[test]
fn the_service_answers_corpus_replays_clean() {
    replay("service_answers", fuzz_targets::service_answers);
}
