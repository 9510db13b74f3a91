//! After a directory is renamed and renamed back (inside the root, or out
//! of it and back; at once or with a pause), every later change inside it
//! is still alerted in realtime, and the watch count matches the
//! directories that exist.

mod common;

use std::time::Duration;

use common::daemon::Daemon;
use common::Fixture;

fn site() -> Fixture {
    let f = Fixture::new("generic-php", "");
    f.write("index.php", "<?php");
    f.write("plugins/x/a.php", "<?php // a");
    f.write("plugins/x/sub/b.php", "<?php // b");
    f.run(["baseline"]).ok();
    f
}

fn dance(f: &Fixture, away: &std::path::Path, pause: Duration) {
    let x = f.abs(b"plugins/x");
    std::fs::rename(&x, away).unwrap();
    std::thread::sleep(pause);
    std::fs::rename(away, &x).unwrap();
}

fn three_later_changes_are_realtime(f: &Fixture, d: &Daemon, tag: &str) {
    // Let the dance itself be judged first.
    std::thread::sleep(Duration::from_millis(800));
    f.write("plugins/x/a.php", format!("<?php // a {tag}"));
    f.write(format!("plugins/x/sub/new-{tag}.php"), "<?php // new");
    f.write("plugins/x/sub/b.php", format!("<?php // b {tag}"));
    for (event, suffix) in
        [("added", format!("/plugins/x/sub/new-{tag}.php")), ("modified", "/plugins/x/sub/b.php".to_string())]
    {
        let r = d.wait_record(event, &suffix);
        assert_eq!(r["detected_by"], "realtime", "{tag}: {r}");
    }
    let recs = d.records();
    let a = recs
        .iter()
        .filter(|r| {
            r["path"].as_str().is_some_and(|p| p.ends_with("/plugins/x/a.php")) && r["detected_by"] == "realtime"
        })
        .count();
    assert!(a >= 1, "{tag}: a.php edit not alerted in realtime: {recs:#?}");
    // The watches are those of the directories that exist: root, plugins,
    // plugins/x, plugins/x/sub (the status file is refreshed every 10 s).
    let dirs = count_dirs(&f.root());
    let start = std::time::Instant::now();
    loop {
        let s: serde_json::Value = serde_json::from_str(f.run(["status", "--json"]).ok().stdout.trim()).unwrap();
        let watches = s["sites"][0]["watches"].as_u64().unwrap_or(0) as usize;
        if watches == dirs {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{tag}: {watches} watches for {dirs} directories");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_directory_renamed_inside_the_root_and_back_stays_watched() {
    for pause in [Duration::ZERO, Duration::from_secs(1)] {
        let f = site();
        let d = Daemon::start(&f);
        dance(&f, &f.abs(b"plugins/x.tmp"), pause);
        three_later_changes_are_realtime(&f, &d, &format!("inside-{}", pause.as_millis()));
    }
}

#[test]
fn a_directory_moved_out_of_the_root_and_back_stays_watched() {
    for pause in [Duration::ZERO, Duration::from_secs(1)] {
        let f = site();
        let d = Daemon::start(&f);
        let away = f.path("away");
        dance(&f, &away, pause);
        three_later_changes_are_realtime(&f, &d, &format!("outside-{}", pause.as_millis()));
    }
}

/// Directories at and below `dir`.
fn count_dirs(dir: &std::path::Path) -> usize {
    1 + std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| count_dirs(&e.path()))
        .sum::<usize>()
}
