//! Bad configs: each gives exit 2, one line on stderr naming the file, line
//! and column, and creates nothing under `state_dir`.

mod common;

use common::{Fixture, Run};

/// Writes `config` (with `{root}` and `{state}` substituted), runs
/// `config-check` and `baseline`, and returns the error line.
fn error_of(config: &str) -> String {
    let f = Fixture::new("generic-php", "");
    std::fs::create_dir(f.root().join("sub")).unwrap();
    let text = config.replace("{root}", f.root().to_str().unwrap()).replace("{state}", f.state().to_str().unwrap());
    std::fs::write(f.config(), text).unwrap();
    let mut last = String::new();
    for cmd in ["config-check", "baseline", "check", "status"] {
        let r: Run = f.run([cmd]);
        assert_eq!(r.code, 2, "{cmd}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{cmd}: one line expected: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{cmd}: {}", r.stdout);
        assert!(!f.state().exists(), "{cmd} created the state directory on a bad config");
        last = r
            .stderr
            .trim_end()
            .replace(f.config().to_str().unwrap(), "CONFIG")
            .replace(f.root().to_str().unwrap(), "ROOT");
    }
    last
}

#[test]
fn yaml_syntax_error() {
    let e = error_of("state_dir: {state}\nsites:\n  - name: a\n    root: {root}\n   profile: [x\n");
    assert!(e.starts_with("sitewarden: CONFIG:5:"), "{e}");
}

#[test]
fn unknown_key() {
    let e = error_of("state_dir: {state}\nsites:\n  - name: a\n    root: {root}\n    ignor: [\"x/**\"]\n");
    assert!(e.starts_with("sitewarden: CONFIG:5:5: sites[0]: unknown field `ignor`, expected one of"), "{e}");
    let e = error_of("state_dir: {state}\nscan: {interval: 4h, intervall: 1h}\nsites:\n  - {name: a, root: {root}}\n");
    assert!(e.starts_with("sitewarden: CONFIG:2:") && e.contains("unknown field `intervall`"), "{e}");
}

#[test]
fn bad_glob() {
    let e =
        error_of("state_dir: {state}\nsites:\n  - name: a\n    root: {root}\n    ignore: [\"ok/**\", \"cache/[a\"]\n");
    assert!(e.starts_with("sitewarden: CONFIG:5:23: sites[0].ignore[1]: invalid glob 'cache/[a'"), "{e}");
}

#[test]
fn missing_or_non_directory_root() {
    let e = error_of("state_dir: {state}\nsites:\n  - name: a\n    root: /nonexistent/site\n");
    assert_eq!(e, "sitewarden: CONFIG:4:11: sites[0].root: site root /nonexistent/site does not exist");
    let e = error_of("state_dir: {state}\nsites:\n  - name: a\n    root: /etc/hostname\n");
    assert_eq!(e, "sitewarden: CONFIG:4:11: sites[0].root: site root /etc/hostname is not a directory");
}

#[test]
fn bad_values() {
    let e = error_of("state_dir: {state}\nscan:\n  interval: 4 hours\nsites:\n  - {name: a, root: {root}}\n");
    assert!(e.starts_with("sitewarden: CONFIG:3:13: scan.interval: "), "{e}");
    let e = error_of("state_dir: {state}\nsites:\n  - {name: a, root: {root}, profile: wordpres}\n");
    assert!(e.starts_with("sitewarden: CONFIG:3:") && e.contains("unknown profile 'wordpres'"), "{e}");
    let e = error_of("state_dir: {state}\nsites:\n  - {name: a, root: {root}}\n  - {name: a, root: /tmp}\n");
    assert!(e.contains("duplicate site name 'a'"), "{e}");
    let e = error_of("state_dir: relative/state\nsites:\n  - {name: a, root: {root}}\n");
    assert!(e.contains("must be an absolute path"), "{e}");
    let e = error_of("state_dir: {state}\nsites:\n  - name: a\n    root: {root}\n    rules: [{id: x, match: \"*.php\", severity: urgent}]\n");
    assert!(e.starts_with("sitewarden: CONFIG:5:") && e.contains("unknown variant `urgent`"), "{e}");
    let e = error_of("");
    assert!(e.contains("the config is empty"), "{e}");
    let e = error_of("state_dir: {state}\nscan: {interval: 0s}\nsites:\n  - {name: a, root: {root}}\n");
    assert!(e.contains("must be more than zero"), "{e}");
    let e = error_of("state_dir: {state}\nsites:\n  - {name: a, root: {root}}\n  - {name: b, root: {root}/sub}\n");
    assert!(e.contains("are nested"), "{e}");
    let e =
        error_of("state_dir: {state}\nalerts:\n  email: {to: [], from: a@b.c}\nsites:\n  - {name: a, root: {root}}\n");
    assert!(e.starts_with("sitewarden: CONFIG:3:") && e.contains("at least one recipient"), "{e}");
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    let f = Fixture::new("generic-php", "");
    for args in [&["check", "--bogus"][..], &["frobnicate"], &["accept", "--site"]] {
        let r = f.run(args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
    }
    let r = f.run(["accept", "/etc/passwd"]);
    assert_eq!(r.code, 2);
    assert!(!f.state().exists(), "a refused accept creates nothing");
}

#[test]
fn missing_config_file() {
    let f = Fixture::new("generic-php", "");
    std::fs::remove_file(f.config()).unwrap();
    let r = f.run(["check"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot read config"), "{}", r.stderr);
}

#[test]
fn a_good_config_is_printed_back() {
    let f = Fixture::new(
        "wordpress",
        "    ignore: [\"wp-content/my-cache/**\"]\n    quarantine:\n      - { match: \"**/.htaccess\", action: keep }\n",
    );
    let cfg = std::fs::read_to_string(f.config()).unwrap().replacen(
        "\nsites:",
        "\nscan: {throttle_mb_per_sec: 50}\nsites:",
        1,
    );
    std::fs::write(f.config(), cfg).unwrap();
    let r = f.run(["config-check"]).ok();
    assert!(r.stdout.contains("profile: wordpress"), "{}", r.stdout);
    assert!(r.stdout.contains("at most 50 MB/s"), "{}", r.stdout);
    assert!(r.stdout.contains("wp-content/my-cache/**"), "{}", r.stdout);
    assert!(r.stdout.ends_with("config OK\n"));
}

#[test]
fn profiles_are_listed_and_local_files_override() {
    let f = Fixture::new("generic-php", "");
    let r = f.run(["profiles"]).ok();
    assert!(r.stdout.contains("wordpress") && r.stdout.contains("generic-php"), "{}", r.stdout);
    std::fs::create_dir(f.path("profiles")).unwrap();
    std::fs::write(f.path("profiles/mine.yaml"), "description: \"my stack\"\nrestrict: [\"**/*.py\"]\n").unwrap();
    let r = f.run(["profiles"]).ok();
    assert!(r.stdout.contains("my stack"), "{}", r.stdout);
    f.write_config("mine", "");
    f.write("app.py", "print(1)");
    f.write("index.php", "<?php");
    f.run(["baseline"]).ok();
    let s: serde_json::Value = serde_json::from_str(f.run(["status", "--json"]).ok().stdout.trim()).unwrap();
    assert_eq!(s["sites"][0]["files"], 1);
    // A broken local profile is reported at its own file, line and column.
    std::fs::write(f.path("profiles/mine.yaml"), "description: x\nignore: [\"a/[\"]\n").unwrap();
    let r = f.run(["check"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("profiles/mine.yaml:2:"), "{}", r.stderr);
}
