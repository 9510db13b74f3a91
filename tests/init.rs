//! `sitewarden init`: a commented config that loads, the stack detected
//! from marker files, no duplicate site, `--force`.

mod common;

use std::path::Path;
use std::process::Command;

use common::Run;

fn init(config: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(common::BIN);
    cmd.arg("-c").arg(config).arg("init").args(args);
    Run::of(cmd)
}

#[test]
fn each_stack_is_detected_from_its_markers() {
    let cases: &[(&str, &[&str])] = &[
        ("wordpress", &["wp-config.php", "wp-includes/version.php"]),
        ("wordpress", &["wp-includes/version.php"]),
        ("drupal", &["core/lib/Drupal.php", "index.php"]),
        ("drupal", &["web/core/lib/Drupal.php"]),
        ("laravel", &["artisan", "public/index.php"]),
        ("magento", &["app/etc/env.php", "pub/index.php"]),
        ("joomla", &["libraries/src/Version.php", "index.php"]),
        ("generic-php", &["index.php", "lib/x.php"]),
        ("static", &["index.html", "js/app.js"]),
    ];
    for (want, markers) in cases {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("www");
        for m in *markers {
            let p = root.join(m);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "<?php").unwrap();
        }
        let config = dir.path().join("sitewarden.yaml");
        let r = init(&config, &["--root", root.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(r.stderr.contains(&format!("profile {want}")), "{markers:?}: {}", r.stderr);
        let text = std::fs::read_to_string(&config).unwrap();
        assert!(text.contains(&format!("profile: {want}")), "{text}");
        assert!(text.starts_with("# sitewarden configuration"), "commented");
        let mut check = Command::new(common::BIN);
        check.arg("-c").arg(&config).arg("config-check");
        let c = Run::of(check);
        assert_eq!(c.code, 0, "{c:?}");
        assert!(c.stdout.contains(&format!("profile: {want}")));
    }
}

#[test]
fn init_adds_sites_once_and_force_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let blog = dir.path().join("blog");
    let shop = dir.path().join("shop");
    std::fs::create_dir_all(blog.join("wp-includes")).unwrap();
    std::fs::create_dir_all(&shop).unwrap();
    let config = dir.path().join("etc/sitewarden.yaml");
    let r = init(&config, &["--profile", "wordpress", "--root", blog.to_str().unwrap(), "--email", "ops@example.com"]);
    assert_eq!(r.code, 0, "{r:?}");
    let first = std::fs::read_to_string(&config).unwrap();
    assert!(first.contains("to: [\"ops@example.com\"]"), "{first}");
    // The same root again: nothing added, nothing rewritten.
    let r = init(&config, &["--profile", "wordpress", "--root", blog.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("already watched"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), first);
    // Another root: added, the rest of the file kept.
    let r = init(&config, &["--profile", "static", "--root", shop.to_str().unwrap(), "--name", "shop"]);
    assert_eq!(r.code, 0, "{r:?}");
    let second = std::fs::read_to_string(&config).unwrap();
    assert!(second.starts_with(&first[..first.find("sites:").unwrap()]));
    assert!(second.contains("name: \"shop\""));
    let mut check = Command::new(common::BIN);
    check.arg("-c").arg(&config).arg("config-check");
    let c = Run::of(check).ok();
    assert!(c.stdout.contains("site blog:") && c.stdout.contains("site shop:"), "{}", c.stdout);
    // --force writes a fresh file for the one site.
    let r = init(&config, &["--profile", "static", "--root", shop.to_str().unwrap(), "--force"]);
    assert_eq!(r.code, 0, "{r:?}");
    let third = std::fs::read_to_string(&config).unwrap();
    assert!(!third.contains("blog") && third.contains("profile: static"), "{third}");
    // Bad input writes nothing.
    let r = init(&config, &["--profile", "nope", "--root", blog.to_str().unwrap(), "--force"]);
    assert_eq!(r.code, 2);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), third);
    let r = init(&config, &["--root", "/nonexistent/www"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
}

#[test]
fn profiles_lists_every_profile_and_prints_one() {
    let mut cmd = Command::new(common::BIN);
    cmd.args(["-c", "/nonexistent/sitewarden.yaml", "profiles"]);
    let r = Run::of(cmd).ok();
    for p in ["wordpress", "drupal", "joomla", "magento", "laravel", "static", "generic-php"] {
        assert!(r.stdout.lines().any(|l| l.starts_with(p)), "{p} missing: {}", r.stdout);
    }
    let mut cmd = Command::new(common::BIN);
    cmd.args(["-c", "/nonexistent/sitewarden.yaml", "profiles", "drupal"]);
    let r = Run::of(cmd).ok();
    assert!(r.stdout.contains("sites/*/files/php/twig"), "{}", r.stdout);
}
