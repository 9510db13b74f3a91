//! Known-good: a site judged against what was deployed (`reference:`, a
//! directory or a .tar.gz release archive). A changed file of the release
//! is critical `tampered`, a new one among the release's folders critical
//! `foreign`; `verify` names both (and what is missing) even in a site
//! that was infected before its first baseline.

mod common;

use std::path::Path;

use common::daemon::Daemon;
use common::Fixture;

/// A release tree: a few core files and a plugin.
fn release(dir: &Path) {
    for (rel, text) in [
        ("index.php", "<?php require 'wp-blog-header.php';\n"),
        ("wp-blog-header.php", "<?php // header\n"),
        ("wp-includes/load.php", "<?php // load\n"),
        ("wp-includes/version.php", "<?php $wp_version = '6.4.2';\n"),
        ("wp-content/plugins/akismet/akismet.php", "<?php // akismet\n"),
    ] {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// A site deployed from `release`, with `reference:` at the directory or
/// at a .tar.gz of it.
fn site(archive: bool) -> (Fixture, std::path::PathBuf) {
    let f = Fixture::new("generic-php", "");
    let rel_dir = f.path("release/wordpress");
    release(&rel_dir);
    release(&f.root());
    let reference = if archive {
        let tgz = f.path("release.tar.gz");
        let ok = std::process::Command::new("tar")
            .arg("czf")
            .arg(&tgz)
            .arg("-C")
            .arg(f.path("release"))
            .arg("wordpress")
            .status()
            .unwrap();
        assert!(ok.success());
        tgz
    } else {
        rel_dir
    };
    f.write_config("generic-php", &format!("    reference: {}\n", reference.display()));
    (f, reference)
}

#[test]
fn a_tampered_and_a_foreign_file_are_critical_with_their_verdict() {
    for archive in [false, true] {
        let (f, reference) = site(archive);
        f.run(["baseline"]).ok();
        let d = Daemon::start(&f);
        f.write("wp-includes/load.php", "<?php // load\neval($_POST['x']);\n");
        f.write("wp-includes/x.php", "<?php system($_GET['c']);");
        f.write("wp-content/plugins/akismet/akismet.php", "<?php // akismet\n");
        let r = d.wait_record("modified", "/wp-includes/load.php");
        assert_eq!((r["severity"].as_str(), r["rule"].as_str()), (Some("critical"), Some("vendor-tampered")), "{r}");
        assert_eq!(r["verdict"]["origin"], "tampered", "{r}");
        assert_eq!(r["verdict"]["package"], "reference", "{r}");
        assert_eq!(r["verdict"]["version"], reference.display().to_string(), "{r}");
        assert!(r["diff"].as_str().is_some_and(|d| d.contains("+eval($_POST['x']);")), "{r}");
        let r = d.wait_record("added", "/wp-includes/x.php");
        assert_eq!((r["severity"].as_str(), r["rule"].as_str()), (Some("critical"), Some("vendor-foreign")), "{r}");
        assert_eq!(r["verdict"]["origin"], "foreign", "{r}");
        // Rewritten with the very bytes of the release: no change at all.
        common::daemon::settle();
        assert!(!d.records().iter().any(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/akismet.php"))));
    }
}

#[test]
fn verify_names_an_infection_older_than_the_baseline() {
    for archive in [false, true] {
        let (f, _) = site(archive);
        // Infected before sitewarden came: the baseline accepts it...
        f.write("wp-blog-header.php", "<?php // header\n@include '/tmp/.x';\n");
        f.write("wp-includes/cache.php", "<?php eval(base64_decode($_POST['p']));");
        std::fs::remove_file(f.abs(b"wp-includes/version.php")).unwrap();
        f.run(["baseline"]).ok();
        assert_eq!(f.run(["check"]).code, 0, "the baseline took the infection in");
        // ...verify does not.
        let r = f.run(["verify"]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stdout.contains("tampered  ") && r.stdout.contains("/wp-blog-header.php"), "{}", r.stdout);
        assert!(r.stdout.contains("foreign") && r.stdout.contains("/wp-includes/cache.php"), "{}", r.stdout);
        assert!(r.stdout.contains("missing") && r.stdout.contains("/wp-includes/version.php"), "{}", r.stdout);
        let j = f.run(["verify", "--json"]);
        let lines: Vec<serde_json::Value> = j.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3, "{}", j.stdout);
        assert!(lines.iter().all(|v| v["site"] == "site" && v["verdict"]["package"] == "reference"));
    }
    // A clean site verifies.
    let (f, _) = site(false);
    let r = f.run(["verify"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("all match"), "{}", r.stdout);
}

#[test]
fn a_hostile_or_missing_reference_is_a_clear_error() {
    let (f, _) = site(false);
    // Missing: the config is refused.
    f.write_config("generic-php", "    reference: /nonexistent/release\n");
    let r = f.run(["config-check"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("reference /nonexistent/release does not exist"), "{}", r.stderr);
    // An archive whose entry climbs out of the tree: refused, nothing written.
    let evil = f.path("evil.tar.gz");
    let script = format!(
        "import tarfile, io\nt = tarfile.open('{}', 'w:gz')\ni = tarfile.TarInfo('../../etc/x.php')\ni.size = 5\nt.addfile(i, io.BytesIO(b'<?php'))\nt.close()\n",
        evil.display()
    );
    assert!(std::process::Command::new("python3").arg("-c").arg(script).status().unwrap().success());
    f.write_config("generic-php", &format!("    reference: {}\n", evil.display()));
    let r = f.run(["verify"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("escapes the archive"), "{}", r.stderr);
    // Not an archive at all.
    let junk = f.path("junk.tar.gz");
    std::fs::write(&junk, vec![0x1f; 1000]).unwrap();
    f.write_config("generic-php", &format!("    reference: {}\n", junk.display()));
    let r = f.run(["verify"]);
    assert_eq!(r.code, 2, "{r:?}");
}
