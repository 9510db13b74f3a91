//! Crash safety: `kill -9` of `baseline` at any moment leaves a store that
//! opens and holds either the old or the new baseline, never a mix.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::Fixture;

#[test]
fn kill_9_during_baseline_leaves_old_or_new() {
    let f = Fixture::new("generic-php", "");
    f.write("index.php", "<?php // old");
    f.run(["baseline"]).ok();
    for d in 0..100 {
        for i in 0..200 {
            f.write(format!("lib/{d}/{i}.php"), format!("<?php // file {d}/{i}\n{}", "x".repeat(2000)));
        }
    }
    // Kill at several points of the rebuild: early, middle, late.
    let mut interrupted = 0;
    for delay_ms in [20u64, 80, 200, 400] {
        let mut child = Command::new(common::BIN)
            .arg("-c")
            .arg(f.config())
            .arg("baseline")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let (code, recs) = f.check_json();
        let added = recs.iter().filter(|r| r["event"] == "added").count();
        assert!(
            (code == 1 && added == 20_000 && recs.len() == 20_000) || (code == 0 && recs.is_empty()),
            "after kill at {delay_ms} ms: code {code}, {} records, {added} added",
            recs.len()
        );
        interrupted += usize::from(code == 1);
    }
    assert!(interrupted > 0, "no kill landed before the rebuild committed");
    // And the store still completes a rebuild.
    f.run(["baseline"]).ok();
    assert_eq!(f.check_json().0, 0);
    let s: serde_json::Value = serde_json::from_str(f.run(["status", "--json"]).ok().stdout.trim()).unwrap();
    assert_eq!(s["sites"][0]["files"], 20_001);
}
