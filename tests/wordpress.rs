//! The WordPress profile over the real WordPress tree of Debian's
//! `wordpress` package: a clean baseline and check, and planted files
//! classified as expected.

mod common;

use std::process::Command;

use common::{find, Fixture};

const WP: &str = "/usr/share/wordpress";
const THEME_FILE: &str = "wp-content/themes/twentytwentythree/patterns/post-meta.php";

#[test]
fn the_real_wordpress_tree() {
    if !std::path::Path::new(WP).join("wp-includes/version.php").exists() {
        panic!("{WP} missing: apt-get install wordpress (.ci/run does)");
    }
    // A Recommends of `wordpress`, so absent unless installed by name.
    if !std::path::Path::new(WP).join(THEME_FILE).exists() {
        panic!("{WP}/{THEME_FILE} missing: apt-get install wordpress-theme-twentytwentythree (.ci/run does)");
    }
    let f = Fixture::new("wordpress", "");
    std::fs::remove_dir(f.root()).unwrap();
    let st = Command::new("cp").arg("-a").arg(WP).arg(f.root()).status().unwrap();
    assert!(st.success());
    let b = f.run(["baseline"]).ok();
    assert!(b.stderr.contains("baseline of"), "{}", b.stderr);
    let (code, recs) = f.check_json();
    assert_eq!(code, 0, "a fresh baseline of real WordPress is clean: {recs:#?}");
    let s: serde_json::Value = serde_json::from_str(f.run(["status", "--json"]).ok().stdout.trim()).unwrap();
    assert!(s["sites"][0]["files"].as_u64().unwrap() > 1000, "{s}");

    f.write("wp-content/uploads/2026/11/x.PhP", "<?php system($_GET['c']);");
    f.write("wp-content/uploads/2026/11/cat.php.jpg", "<?php echo 1;");
    f.write("wp-content/uploads/2026/11/cat.jpg", [0xffu8, 0xd8]);
    f.write("wp-content/uploads/.htaccess", "AddHandler php-script .jpg");
    f.write("wp-content/cache/x.php", "<?php");
    let theme = f.abs(THEME_FILE.as_bytes());
    let mut text = std::fs::read_to_string(&theme).unwrap();
    text.push_str("\n// injected\n");
    std::fs::write(&theme, text).unwrap();
    let mut v = std::fs::read_to_string(f.abs(b"wp-includes/version.php")).unwrap();
    v.push_str("\n@eval($_POST['x']);\n");
    std::fs::write(f.abs(b"wp-includes/version.php"), v).unwrap();
    let (code, recs) = f.check_json();
    assert_eq!(code, 1);
    let expect = [
        ("/wp-content/uploads/2026/11/x.PhP", "added", "critical", "php-in-uploads"),
        ("/wp-content/uploads/2026/11/cat.php.jpg", "added", "critical", "php-in-uploads"),
        ("/wp-content/uploads/.htaccess", "added", "critical", "php-in-uploads"),
        ("/wp-content/cache/x.php", "added", "critical", "code-in-cache"),
        ("/wp-content/themes/twentytwentythree/patterns/post-meta.php", "modified", "medium", "theme-code"),
        // A backdoor appended to a core file: critical by its content.
        ("/wp-includes/version.php", "modified", "critical", "signature:php_request_to_exec"),
    ];
    for (path, event, severity, rule) in expect {
        let r = find(&recs, path).unwrap_or_else(|| panic!("{path} not reported"));
        assert_eq!(
            (r["event"].as_str(), r["severity"].as_str(), r["rule"].as_str()),
            (Some(event), Some(severity), Some(rule)),
            "{path}"
        );
    }
    assert_eq!(recs.len(), expect.len(), "nothing else: {recs:#?}");
    let core = find(&recs, "/wp-includes/version.php").unwrap();
    assert!(core["diff"].as_str().unwrap().contains("+@eval($_POST['x']);"), "{core}");
}

/// The `sh` blocks of the README's quick start, in order: the build-and-watch
/// line, the plant line, the test suite line (comments left out).
fn quick_start_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("## Quick start").expect("README has a quick start");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    section
        .split("```sh\n")
        .skip(1)
        .map(|b| b[..b.find("```").unwrap()].lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n"))
        .collect()
}

/// Regression (a newcomer's first try): the README's plant line named
/// `wp-content/uploads/`, which Debian's WordPress does not have, and the
/// line `watch` printed did not say the shell had been removed.
#[test]
fn the_readme_quick_start_reports_and_removes_the_planted_shell() {
    let blocks = quick_start_blocks();
    assert_eq!(blocks.len(), 3, "{blocks:#?}");
    let watch = blocks[0].rsplit(" && ").next().unwrap().to_string();
    assert!(watch.starts_with("./target/release/sitewarden watch --profile wordpress /tmp/blog"), "{watch}");
    let dir = tempfile::tempdir().unwrap();
    let blog = dir.path().join("blog");
    assert!(Command::new("cp").arg("-a").arg(WP).arg(&blog).status().unwrap().success());
    let blog_s = blog.to_str().unwrap();
    let mut cmd = Command::new(common::BIN);
    cmd.args(watch.replace("/tmp/blog", blog_s).split_whitespace().skip(1));
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::BufRead;
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line = err.next().expect("watch exited before it was ready").unwrap();
        if line.starts_with("sitewarden: ready") {
            break;
        }
    }
    std::thread::spawn(move || for _ in err {});
    let plant = blocks[1].replace("/tmp/blog", blog_s);
    assert!(Command::new("sh").arg("-c").arg(&plant).status().unwrap().success(), "{plant}");
    let shell = blog.join("wp-content/uploads/2026/12/x.php");
    let line = std::io::BufReader::new(child.stdout.take().unwrap()).lines().next().unwrap().unwrap();
    println!("{line}");
    for part in ["CRITICAL", "added", "uploads/2026/12/x.php", "[php-in-uploads, realtime]", "quarantine: removed"] {
        assert!(line.contains(part), "{part:?} not in {line:?}");
    }
    assert!(line.contains("signatures: "), "the signature is named: {line}");
    assert!(!shell.exists(), "the planted shell is still there");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    assert!(child.wait().unwrap().success());
}
