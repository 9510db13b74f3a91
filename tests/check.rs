//! `baseline`, `check`, `accept` and `diff` driven through the real binary
//! over real temporary trees.

mod common;

use std::os::unix::fs::PermissionsExt;

use base64::Engine as _;
use common::{find, Fixture};

fn wp() -> Fixture {
    let f = Fixture::new("wordpress", "");
    f.write("index.php", "<?php require 'wp-blog-header.php';\n");
    f.write("wp-includes/version.php", "<?php $wp_version = '6.4';\n");
    f.write("wp-content/themes/t/functions.php", "<?php // theme\n");
    f.write("wp-content/themes/t/style.css", "body{}\n");
    f.write("wp-content/uploads/2026/11/photo.jpg", [0xffu8, 0xd8, 0xff, 0xe0]);
    f.write("wp-content/cache/page.html", "<html>cached</html>");
    f.write("wp-config.php", "<?php define('DB_PASSWORD', 'old-secret-1');\n");
    f.write(".htaccess", "RewriteEngine On\n");
    f.run(["baseline"]).ok();
    f
}

#[test]
fn a_fresh_baseline_has_no_drift() {
    let f = wp();
    let r = f.run(["check"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("site: no drift"), "{}", r.stdout);
}

#[test]
fn each_event_kind_is_reported_once_with_its_states() {
    let f = wp();
    f.write("wp-content/themes/t/functions.php", "<?php eval($_POST['x']); // theme\n");
    f.write("wp-content/themes/t/new.js", "alert(1)");
    std::fs::remove_file(f.abs(b"wp-includes/version.php")).unwrap();
    std::fs::set_permissions(f.abs(b"index.php"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, recs) = f.check_json();
    assert_eq!(code, 1);
    assert_eq!(recs.len(), 4, "{recs:#?}");

    let m = find(&recs, "/wp-content/themes/t/functions.php").unwrap();
    assert_eq!(m["event"], "modified");
    assert_eq!(m["detected_by"], "scan");
    assert_ne!(m["before"]["sha256"], m["after"]["sha256"]);
    // A backdoor in a theme: by its content, critical (not the path's medium).
    assert_eq!(m["rule"], "signature:php_request_to_exec", "{m}");
    assert_eq!(m["severity"], "critical");
    // The text rule's name, then the PHP analysis with its evidence.
    assert_eq!(m["signatures"][0], "php_request_to_exec", "{m}");
    assert_eq!(m["signatures"][1], "php_flow_request_to_code: line 1, $_POST['x'] (line 1) reaches eval()", "{m}");

    let a = find(&recs, "/wp-content/themes/t/new.js").unwrap();
    assert_eq!(a["event"], "added");
    assert!(a["before"].is_null());
    assert_eq!(a["after"]["type"], "file");
    assert_eq!(a["after"]["size"], 8);

    let d = find(&recs, "/wp-includes/version.php").unwrap();
    assert_eq!(d["event"], "deleted");
    assert!(d["after"].is_null());
    assert_eq!(d["severity"], "high");

    let md = find(&recs, "/index.php").unwrap();
    assert_eq!(md["event"], "metadata");
    assert_eq!(md["before"]["mode"], "0644");
    assert_eq!(md["after"]["mode"], "0777");
    assert_eq!(md["before"]["sha256"], md["after"]["sha256"]);

    // Every record names an absolute path under the root and the site.
    for r in &recs {
        assert!(r["path"].as_str().unwrap().starts_with(f.root().to_str().unwrap()));
        assert_eq!(r["site"], "site");
        assert!(r["time"].as_str().unwrap().ends_with('Z'));
    }
    // check changes nothing: same answer again, no alert log written.
    assert_eq!(f.check_json().1.len(), 4);
    assert!(!f.path("alerts.jsonl").exists());
}

#[test]
fn restrict_ignore_and_always() {
    let f = wp();
    f.write("wp-content/uploads/2026/11/shell.PhP", "<?php system($_GET['c']);");
    f.write("wp-content/uploads/2026/11/a.php.jpg", "<?php echo 1;");
    f.write("wp-content/uploads/2026/11/new.jpg", [1u8, 2, 3]);
    f.write("wp-content/uploads/.htaccess", "AddHandler php-script .jpg");
    f.write("wp-content/cache/other.html", "cached");
    f.write("wp-content/cache/x.php", "<?php // cache code");
    f.write("readme.txt", "not code");
    let (_, recs) = f.check_json();
    let paths: Vec<&str> = recs.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(recs.len(), 4, "{paths:#?}");
    for (suffix, rule) in [
        ("/uploads/2026/11/shell.PhP", "php-in-uploads"),
        ("/uploads/2026/11/a.php.jpg", "php-in-uploads"),
        ("/uploads/.htaccess", "php-in-uploads"),
        ("/cache/x.php", "code-in-cache"),
    ] {
        let r = find(&recs, suffix).unwrap_or_else(|| panic!("{suffix} not reported: {paths:#?}"));
        assert_eq!(r["severity"], "critical", "{suffix}");
        assert_eq!(r["rule"], rule, "{suffix}");
    }
}

#[test]
fn nodiff_content_never_appears() {
    let f = wp();
    f.write("wp-config.php", "<?php define('DB_PASSWORD', 'new-secret-2');\n");
    let r = f.run(["check", "--json"]);
    assert_eq!(r.code, 1);
    let recs = r.records();
    let c = find(&recs, "/wp-config.php").unwrap();
    assert_eq!(c["event"], "modified");
    assert!(c["diff"].is_null());
    let out = f.run(["diff", f.abs(b"wp-config.php").to_str().unwrap()]).ok();
    assert!(out.stdout.contains("diff suppressed"), "{}", out.stdout);
    for text in [&r.stdout, &r.stderr, &out.stdout] {
        assert!(!text.contains("secret-"), "secret leaked: {text}");
    }
    for entry in common::walk(&f.state()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(!contains(&bytes, b"secret-"), "secret stored in {}", entry.display());
    }
}

#[test]
fn a_symlink_to_a_file_outside_the_root_is_recorded_never_read() {
    let f = wp();
    let outside = f.path("outside-secret.txt");
    std::fs::write(&outside, "root:$6$hash:19000").unwrap();
    std::os::unix::fs::symlink(&outside, f.abs(b"wp-content/themes/t/link.php")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", f.abs(b"wp-content/uploads/s.txt")).unwrap();
    let (_, recs) = f.check_json();
    let l = find(&recs, "/themes/t/link.php").unwrap();
    assert_eq!(l["after"]["type"], "symlink");
    assert_eq!(l["after"]["target"], outside.to_str().unwrap());
    assert!(l["after"].get("sha256").is_none(), "a symlink is never hashed: {l}");
    let s = find(&recs, "/uploads/s.txt").expect("a symlink in uploads is reported");
    assert_eq!(s["after"]["target"], "/etc/shadow");
    assert_eq!(s["severity"], "high");
}

#[test]
fn a_fifo_is_recorded_without_being_opened() {
    let f = wp();
    nix::unistd::mkfifo(&f.abs(b"wp-content/themes/t/pipe.php"), nix::sys::stat::Mode::from_bits_truncate(0o644))
        .unwrap();
    // A reader that opened the FIFO would block forever; Run fails after 60 s.
    let (_, recs) = f.check_json();
    let p = find(&recs, "/themes/t/pipe.php").unwrap();
    assert_eq!(p["after"]["type"], "fifo");
    f.run(["accept"]).ok();
    assert_eq!(f.check_json().0, 0);
}

#[test]
fn odd_names_are_reported_losslessly() {
    let f = wp();
    let newline = b"wp-content/themes/t/a\nb.php".to_vec();
    let invalid = b"wp-content/themes/t/\xff\xfe.php".to_vec();
    f.write(&newline, "<?php");
    f.write(&invalid, "<?php");
    let (_, recs) = f.check_json();
    assert_eq!(recs.len(), 2, "{recs:#?}");
    let n = find(&recs, "/a\nb.php").expect("newline name");
    assert!(n.get("path_base64").is_none());
    let i = find(&recs, "/\\xFF\\xFE.php").expect("invalid UTF-8 name");
    let exact = base64::engine::general_purpose::STANDARD.decode(i["path_base64"].as_str().unwrap()).unwrap();
    assert_eq!(exact, common::bytes(&f.abs(&invalid)));
    // The human table keeps one line per change.
    let human = f.run(["check"]);
    assert_eq!(human.stdout.lines().count(), 3, "{}", human.stdout);
    assert!(human.stdout.contains("a\\x0Ab.php"), "{}", human.stdout);
    // accept takes both by their exact names.
    f.run([std::ffi::OsStr::new("accept"), f.abs(&invalid).as_os_str(), f.abs(&newline).as_os_str()]).ok();
    assert_eq!(f.check_json().0, 0);
}

#[test]
fn files_vanishing_during_a_scan_are_never_an_error() {
    let f = wp();
    for i in 0..4000 {
        f.write(format!("wp-content/themes/t/churn/{i}.php"), "<?php // churn".repeat(50));
    }
    // Delete the files while a re-hashing check walks them: some are seen,
    // some vanish between readdir, lstat, open and read.
    let child = std::process::Command::new(common::BIN)
        .arg("-c")
        .arg(f.config())
        .args(["check", "--json", "--rehash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for i in (0..4000).rev() {
        let _ = std::fs::remove_file(f.abs(format!("wp-content/themes/t/churn/{i}.php").as_bytes()));
    }
    let out = child.wait_with_output().unwrap();
    let code = out.status.code().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(code == 0 || code == 1, "code {code}: {stderr}");
    assert!(!stderr.contains("warning"), "a vanished file is not a problem: {stderr}");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let rec: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(rec["event"], "added");
        assert_eq!(rec["after"]["type"], "file");
        assert!(rec["after"]["sha256"].is_string());
    }
    assert_eq!(f.check_json().0, 0, "all of them are gone now");
}

#[test]
fn accept_all_or_named_paths() {
    let f = wp();
    f.write("wp-content/themes/t/a.js", "a");
    f.write("wp-content/themes/t/b.js", "b");
    f.write("wp-content/themes/t/sub/c.js", "c");
    // Relative path, resolved against the current directory.
    let mut cmd = std::process::Command::new(common::BIN);
    cmd.current_dir(f.root().join("wp-content/themes")).arg("-c").arg(f.config()).args(["accept", "t/a.js"]);
    common::Run::of(cmd).ok();
    let (_, recs) = f.check_json();
    assert_eq!(recs.len(), 2);
    // A directory accepts everything below it.
    f.run(["accept", f.abs(b"wp-content/themes/t/sub").to_str().unwrap()]).ok();
    assert_eq!(f.check_json().1.len(), 1);
    f.run(["accept"]).ok();
    assert_eq!(f.check_json().0, 0);
    // A deleted file accepted by name leaves the baseline.
    std::fs::remove_file(f.abs(b"wp-content/themes/t/b.js")).unwrap();
    f.run(["accept", f.abs(b"wp-content/themes/t/b.js").to_str().unwrap()]).ok();
    assert_eq!(f.check_json().0, 0);
    let outside = f.run(["accept", "/etc/passwd"]);
    assert_eq!(outside.code, 2);
    assert!(outside.stderr.contains("is not inside a site root"), "{}", outside.stderr);
}

#[test]
fn same_size_same_mtime_rewrites_are_found_with_and_without_rehash() {
    let f = wp();
    let p = f.abs(b"wp-content/themes/t/functions.php");
    let before = std::fs::metadata(&p).unwrap();
    // Same size, mtime put back: the stat cache still sees the new ctime,
    // and --rehash sees the content.
    std::fs::write(&p, "<?php // THEME\n").unwrap();
    let t = filetime(before.modified().unwrap());
    nix::sys::stat::utimensat(nix::fcntl::AT_FDCWD, &p, &t, &t, nix::sys::stat::UtimensatFlags::NoFollowSymlink)
        .unwrap();
    let r = f.run(["check", "--json", "--rehash"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.records()[0]["event"], "modified");
    assert_eq!(f.check_json().1.len(), 1);
}

#[test]
fn check_and_status_before_any_baseline() {
    let f = Fixture::new("generic-php", "");
    f.write("index.php", "<?php");
    let r = f.run(["check"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("run `sitewarden baseline`"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1);
    assert!(!f.state().exists(), "check must not create the state directory");
    let s = f.run(["status", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(s.stdout.trim()).unwrap();
    assert_eq!(v["ready"], false);
    assert_eq!(v["outbox"], 0);
    assert_eq!(v["sites"][0]["files"], 0);
    f.run(["baseline"]).ok();
    let s = f.run(["status", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(s.stdout.trim()).unwrap();
    assert_eq!(v["sites"][0]["files"], 1);
    assert!(v["sites"][0]["last_scan"].is_string());
}

#[test]
fn a_large_file_is_hashed_as_a_stream() {
    let f = wp();
    let p = f.abs(b"wp-content/themes/t/big.js");
    let file = std::fs::File::create(&p).unwrap();
    file.set_len(1 << 30).unwrap(); // sparse 1 GiB
    let (_, recs) = f.check_json();
    let big = find(&recs, "/big.js").unwrap();
    assert_eq!(big["after"]["size"], 1u64 << 30);
    // SHA-256 of 1 GiB of zero bytes.
    assert_eq!(big["after"]["sha256"], "49bc20df15e412a64472421e13fe86ff1c5165e18b2afccf160d4dc19fe68a14");
}

fn filetime(t: std::time::SystemTime) -> nix::sys::time::TimeSpec {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap();
    nix::sys::time::TimeSpec::new(d.as_secs() as i64, d.subsec_nanos() as i64)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
