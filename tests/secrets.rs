//! Secrets never leave the server, whatever their name: the leak matrix.
//! Every variant a careless admin or an attacker makes of a site's
//! credentials (upper case, editor and backup copies, nested installs,
//! renamed or copied files, hard links, other stacks' config files) is
//! written with its own random password under a running daemon that mails
//! every alert; then no mail (decoded), no log line, no daemon output and
//! no file under `state_dir` (content store decompressed) may hold any of
//! them. Also: state stays bounded, and real WordPress has no false secret.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::daemon::Daemon;
use common::smtp::SmtpServer;
use common::Fixture;

/// A password nobody else writes.
fn password(tag: &str) -> String {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("Pw{tag}x{:x}", n ^ (std::process::id() as u128) << 64)
}

/// A variant: site, path, its password, whether it must be alerted.
type Case = (String, String, String, bool);

/// The sites of the matrix: one per profile, each with its config file.
const SITES: &[(&str, &str, &str)] = &[
    ("wp", "wordpress", "wp-config.php"),
    ("drupal", "drupal", "sites/default/settings.php"),
    ("joomla", "joomla", "configuration.php"),
    ("magento", "magento", "app/etc/env.php"),
    ("laravel", "laravel", ".env"),
];

/// Writes the config of a five-site daemon that mails everything.
fn matrix(smtp_port: u16) -> Fixture {
    let f = Fixture::new("wordpress", "");
    let mut text = format!(
        "state_dir: {}\nalerts:\n  log: {}\n  email:\n    to: [ops@example.com]\n    from: sw@example.com\n    smtp: {{ host: 127.0.0.1, port: {smtp_port}, tls: none }}\n    min_severity: info\n    digest_seconds: 1\nsites:\n",
        f.state().display(),
        f.path("alerts.jsonl").display()
    );
    for (name, profile, config) in SITES {
        let root = f.dir.path().join(name);
        std::fs::create_dir_all(&root).unwrap();
        write(&root, "index.php", "<?php echo 1;\n");
        write(&root, config, &config_text(profile, "baseline-password-not-secret-test"));
        text.push_str(&format!("  - name: {name}\n    root: {}\n    profile: {profile}\n", root.display()));
    }
    std::fs::write(f.config(), text).unwrap();
    f.run(["baseline"]).ok();
    f
}

fn write(root: &Path, rel: &str, content: &str) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, content).unwrap();
    p
}

/// A config file of `profile`'s stack holding `pw`.
fn config_text(profile: &str, pw: &str) -> String {
    match profile {
        "wordpress" => format!("<?php\ndefine( 'DB_NAME', 'wp' );\ndefine( 'DB_PASSWORD', '{pw}' );\n"),
        "drupal" => {
            format!("<?php\n$databases['default']['default'] = [\n  'database' => 'd',\n  'password' => '{pw}',\n];\n")
        }
        "joomla" => format!("<?php\nclass JConfig {{\n\tpublic $user = 'j';\n\tpublic $password = '{pw}';\n}}\n"),
        "magento" => format!("<?php\nreturn ['db' => ['connection' => ['default' => ['password' => '{pw}']]]];\n"),
        "laravel" => format!("APP_NAME=shop\nAPP_KEY=base64:{pw}\nDB_PASSWORD={pw}\n"),
        _ => unreachable!(),
    }
}

/// Every file below `dir`, gzip blobs decompressed.
fn state_texts(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for p in common::walk(dir) {
        let Ok(raw) = std::fs::read(&p) else { continue };
        if p.extension().is_some_and(|e| e == "gz") {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut plain).unwrap();
            out.push((p.clone(), plain));
        }
        out.push((p, raw));
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn no_variant_of_a_secret_leaks_to_mail_log_output_or_state() {
    let smtp_dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(smtp_dir.path(), None);
    let f = matrix(smtp.port);
    let d = Daemon::start(&f);
    let root = |site: &str| f.dir.path().join(site);
    // (site, path written, how: text | link-to:PATH) and whether it must be
    // alerted (an ignored path is not, but must not be stored either).
    let mut cases: Vec<Case> = Vec::new();
    let add = |cases: &mut Vec<Case>, site: &str, rel: &str, profile: &str, alerted: bool| {
        let pw = password(&format!("{}{}", cases.len(), site));
        write(&root(site), rel, &config_text(profile, &pw));
        cases.push((site.to_string(), rel.to_string(), pw, alerted));
    };
    // WordPress: the file itself, its name in upper case, editors' and
    // admins' copies, nested installs, renamed and copied.
    for rel in [
        "wp-config.php",
        "WP-CONFIG.PHP",
        ".wp-config.php.swp",
        "#wp-config.php#",
        "wp-config.php~",
        "wp-config.php.bak",
        "wp-config.php.save",
        "wp-config.php.orig",
        "wp-config.php.old",
        "backup/wp-config.php",
        "blog2/wp-config.php",
        "blog2/WP-Config.php.BAK",
        "config.php",
        "wp-content/plugins/p/old-config.php",
    ] {
        add(&mut cases, "wp", rel, "wordpress", true);
    }
    // A .env dropped in a WordPress root.
    // (not watched in a WordPress root: never stored either)
    add(&mut cases, "wp", ".env", "laravel", false);
    // Drupal, Joomla, Magento, Laravel: their config files, copies, nesting.
    for rel in ["sites/default/settings.php", "sites/default/settings.local.php", "sites/default/settings.php.bak"] {
        add(&mut cases, "drupal", rel, "drupal", true);
    }
    add(&mut cases, "drupal", "modules/custom/m/old_settings.php", "drupal", true);
    for rel in ["configuration.php", "CONFIGURATION.PHP.bak", "administrator/configuration.php"] {
        add(&mut cases, "joomla", rel, "joomla", true);
    }
    for rel in ["app/etc/env.php", "app/etc/env.php.save", "app/etc/env.php.dist"] {
        add(&mut cases, "magento", rel, "magento", true);
    }
    for rel in [".env", ".env.backup", "config/database.php"] {
        add(&mut cases, "laravel", rel, "laravel", true);
    }
    // A plugin file that carries an API key line.
    let key = format!("AKIA{}", &password("K").to_uppercase().replace('X', "Q")[..16]);
    let key = key.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>()[..20].to_string();
    write(&root("wp"), "wp-content/plugins/p/api.php", &format!("<?php\n$k = '{key}';\necho 1;\n"));
    cases.push(("wp".into(), "wp-content/plugins/p/api.php".into(), key, true));
    // A hard link to the real wp-config.php under an innocent name.
    std::fs::hard_link(root("wp").join("wp-config.php"), root("wp").join("wp-content/plugins/p/hl.php")).unwrap();
    let linked = cases[0].2.clone();
    cases.push(("wp".into(), "wp-content/plugins/p/hl.php".into(), linked, true));
    // An ignored text file with a password: never alerted, never stored.
    add(&mut cases, "wp", "wp-content/uploads/notes.txt", "wordpress", false);
    // Credentials written into code, each in a form an admin or an attacker
    // uses: a constant of a plugin, a settings array, a connection call, a
    // config copied into one line, guarded, silenced or split defines.
    let code = |cases: &mut Vec<Case>, site: &str, rel: &str, text: &dyn Fn(&str) -> String| {
        let pw = password(&format!("{}{}", cases.len(), site));
        write(&root(site), rel, &text(&pw));
        cases.push((site.to_string(), rel.to_string(), pw, true));
    };
    code(&mut cases, "wp", "wp-content/plugins/q/keys.php", &|pw| {
        format!("<?php\ndefine('MY_API_SECRET', '{pw}');\necho 1;\n")
    });
    code(&mut cases, "drupal", "modules/custom/m/m.module", &|pw| format!("<?php\n$settings['api_token'] = '{pw}';\n"));
    code(&mut cases, "wp", "wp-content/plugins/q/db.php", &|pw| {
        format!("<?php\n$link = mysqli_connect('localhost', 'root', '{pw}');\n")
    });
    code(&mut cases, "wp", "wp-content/plugins/q/wpdb.php", &|pw| {
        format!("<?php\n$db = new wpdb('wp', '{pw}', 'wp', 'localhost');\n")
    });
    code(&mut cases, "wp", "wp-content/plugins/q/oneline.php", &|pw| {
        format!("<?php define('DB_NAME','wp'); define('DB_USER','wp'); define('DB_PASSWORD','{pw}'); define('DB_HOST','localhost');\n")
    });
    code(&mut cases, "wp", "wp-content/plugins/q/guarded.php", &|pw| {
        format!("<?php\nif (!defined('DB_PASSWORD')) define('DB_PASSWORD', '{pw}');\n")
    });
    code(&mut cases, "wp", "wp-content/plugins/q/silenced.php", &|pw| {
        format!("<?php\n@define('DB_PASSWORD', '{pw}');\n")
    });
    code(&mut cases, "wp", "wp-content/plugins/q/split.php", &|pw| {
        format!("<?php\ndefine('DB_'.'PASSWORD', '{pw}');\n")
    });
    add(&mut cases, "laravel", ".env.local", "laravel", true);
    // A base64 copy of wp-config.php pasted as a string into a script: the
    // copy itself must not leave the server either.
    {
        use base64::Engine as _;
        let pw = password("b64");
        let b64 = base64::engine::general_purpose::STANDARD.encode(config_text("wordpress", &pw));
        write(&root("wp"), "wp-content/plugins/q/blob.js", &format!("var cfg = \"{b64}\";\nconsole.log(1);\n"));
        cases.push(("wp".into(), "wp-content/plugins/q/blob.js".into(), pw, true));
        cases.push(("wp".into(), "wp-content/plugins/q/blob.js".into(), b64, true));
    }

    for (site, rel, _, alerted) in &cases {
        if *alerted {
            let path = format!("/{site}/{rel}");
            d.wait_for(&format!("the record of {path}"), |r| {
                r.iter().any(|x| x["path"].as_str().is_some_and(|p| p.ends_with(&path)))
            });
        }
    }
    let alerted = cases.iter().filter(|c| c.3).count();
    smtp.wait_messages(1, Duration::from_secs(60));
    // Give the digest of the last records time to go out.
    std::thread::sleep(Duration::from_secs(3));
    let mails: Vec<String> = smtp.messages().iter().map(|m| m.raw.clone() + &m.body).collect();
    assert!(!mails.is_empty(), "{}", mails.len());
    let log = std::fs::read_to_string(f.path("alerts.jsonl")).unwrap();
    let check = f.run(["check", "--json"]).stdout;
    let state = state_texts(&f.state());
    // The hard link's section says why there is no diff (its content holds
    // the secret, or it has another name), never that it was too large.
    let all_mail = mails.join("\n");
    let hl = all_mail.find("wp-content/plugins/p/hl.php").expect("the hard link in a mail");
    let section = &all_mail[hl..all_mail[hl..].find("----------").map(|e| hl + e).unwrap_or(all_mail.len())];
    assert!(section.contains("diff suppressed") || section.contains("more than one hard link"), "{section}");
    assert!(!all_mail.contains("too large to diff"), "{section}");
    let mut leaks = Vec::new();
    for (site, rel, pw, _) in &cases {
        for (what, text) in [("mail", mails.join("\n")), ("alert log", log.clone()), ("daemon output", d.stderr())] {
            if text.contains(pw.as_str()) {
                leaks.push(format!("{site}/{rel} in the {what}"));
            }
        }
        if check.contains(pw.as_str()) {
            leaks.push(format!("{site}/{rel} in check --json"));
        }
        for (file, bytes) in &state {
            if contains(bytes, pw) {
                leaks.push(format!("{site}/{rel} in {}", file.display()));
            }
        }
    }
    println!(
        "leak matrix: {} variants ({alerted} alerted), {} mails, {} state files: {} leaks",
        cases.len(),
        mails.len(),
        state.len(),
        leaks.len()
    );
    assert!(leaks.is_empty(), "{leaks:#?}");
    assert!(cases.len() >= 25);
    // Each secret's record says why it has no diff.
    for r in log.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()) {
        let p = r["path"].as_str().unwrap_or("");
        if p.contains("config") || p.contains("settings") || p.contains(".env") || p.ends_with("api.php") {
            assert!(r["diff"].is_null() || !r["diff"].as_str().unwrap().contains("Pw"), "{r}");
        }
        if p.ends_with("/wp/WP-CONFIG.PHP") || p.ends_with("/wp/config.php") {
            assert_eq!(r["diff_note"], "secret", "{r}");
        }
    }
}

#[test]
fn a_credential_line_in_an_ordinary_diff_is_redacted() {
    let f = Fixture::new("wordpress", "");
    f.write("wp-content/themes/t/functions.php", "<?php\n// theme\n");
    f.run(["baseline"]).ok();
    f.write(
        "wp-content/themes/t/functions.php",
        "<?php\n// theme\n$token = 'AKIAIOSFODNN7EXAMPLE';\nadd_action('init', 'x');\n",
    );
    let (_, recs) = f.check_json();
    let r = common::find(&recs, "/functions.php").unwrap();
    let diff = r["diff"].as_str().unwrap();
    assert!(diff.contains("+[redacted: secret]") && diff.contains("+add_action('init', 'x');"), "{diff}");
    assert!(!diff.contains("AKIA"), "{diff}");
}

fn dir_bytes(p: &Path) -> u64 {
    common::walk(p).iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum()
}

#[test]
fn state_stays_bounded_under_rewrites() {
    let f = Fixture::new("wordpress", "");
    let cfg = std::fs::read_to_string(f.config()).unwrap();
    std::fs::write(f.config(), cfg.replacen("\nsites:", "\nstate:\n  content_max: 1MiB\nsites:", 1)).unwrap();
    f.write("index.php", "<?php");
    f.write("wp-content/themes/t/big.php", "<?php\n");
    f.run(["baseline"]).ok();
    let d = Daemon::start(&f);
    let content = f.state().join("content");
    let before = dir_bytes(&content);
    // 1,000 rewrites of an ignored text file: not one byte stored.
    for i in 0..1000 {
        f.write("wp-content/uploads/notes.txt", format!("note {i}: the password is hunter{i}\n"));
    }
    // The probe's content is index.php's, kept already: it adds nothing.
    f.write("wp-content/uploads/probe.php", "<?php");
    d.wait_record("added", "/uploads/probe.php");
    let ignored = dir_bytes(&content) - before;
    // 100 rewrites of a watched 100 KiB file (incompressible): capped.
    for i in 0..100u32 {
        let mut text = format!("<?php // v{i}\n");
        let mut x = i.wrapping_mul(2_654_435_761);
        while text.len() < 100 * 1024 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            text.push_str(&format!("{x:08x}"));
        }
        f.write("wp-content/themes/t/big.php", text);
        std::thread::sleep(Duration::from_millis(30));
    }
    f.write("wp-content/themes/t/done.php", "<?php");
    d.wait_record("added", "/themes/t/done.php");
    std::thread::sleep(Duration::from_millis(500));
    let watched = dir_bytes(&content);
    println!("content store: +{ignored} bytes for 1000 ignored rewrites; {watched} bytes after 100 rewrites of 100 KiB (cap 1 MiB)");
    assert_eq!(ignored, 0);
    assert!(watched <= 1 << 20, "{watched} bytes");
    let s: serde_json::Value = serde_json::from_str(f.run(["status", "--json"]).ok().stdout.trim()).unwrap();
    assert!(s["content_bytes"].as_u64().unwrap() <= 1 << 20, "{s}");
}

#[test]
fn a_htaccess_rewrite_loop_is_one_quarantine_item() {
    let f = Fixture::new("wordpress", "");
    f.write("index.php", "<?php");
    f.write(".htaccess", "deny from all\n");
    f.run(["baseline"]).ok();
    let d = Daemon::start(&f);
    // Each rewrite is whole (written aside, renamed over): the same content
    // every time, never a half-written one in between.
    for _ in 0..30 {
        let tmp = f.write(".htaccess.new", "AddHandler application/x-httpd-php .png\n");
        std::fs::rename(tmp, f.abs(b".htaccess")).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    d.wait_record("modified", "/.htaccess");
    let items: Vec<_> = std::fs::read_dir(f.state().join("quarantine")).unwrap().flatten().collect();
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(items[0].path().join("meta.json")).unwrap()).unwrap();
    println!("30 rewrites with the same content: {} item(s), count {}", items.len(), meta["count"]);
    assert_eq!(items.len(), 1, "one item for the same content");
    assert!(meta["count"].as_u64().unwrap() >= 2, "{meta}");
    assert_eq!(std::fs::read_to_string(f.abs(b".htaccess")).unwrap(), "deny from all\n");
}

/// Regression: `wp-content/languages/fa_IR.mo` (a compiled translation of
/// `wordpress-l10n`, which the README's `apt-get install wordpress` brings
/// in) holds the words `password: PASSWORD` and was taken for a secret.
#[test]
fn real_trees_have_no_false_secret() {
    const WP: &str = "/usr/share/wordpress";
    for needed in ["wp-content/languages/fa_IR.mo", "wp-content/languages/admin-de_DE.mo"] {
        assert!(
            Path::new(WP).join(needed).exists(),
            "{WP}/{needed} missing: apt-get install wordpress-l10n (.ci/run does)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = sitewarden::config::Config::ephemeral("wordpress", Path::new(WP), &dir.path().join("s")).unwrap();
    let policy = &cfg.sites[0].policy;
    let secrets = policy.secrets();
    for tree in [WP, "/usr/share/php", "/usr/share/phpmyadmin", "/usr/share/roundcube"] {
        let (mut files, mut lines) = (0, 0);
        let mut line_samples = Vec::new();
        let mut flagged = Vec::new();
        for p in common::walk(Path::new(tree)) {
            let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
            if !meta.is_file() {
                continue;
            }
            files += 1;
            let rel = p.strip_prefix(tree).unwrap().as_os_str().as_encoded_bytes().to_vec();
            let bytes = std::fs::read(&p).unwrap_or_default();
            if (tree == WP && policy.nodiff(&rel)) || secrets.holds(&bytes) {
                let why = secrets.explain(&bytes).join("+");
                flagged.push(format!(
                    "{} ({})",
                    String::from_utf8_lossy(&rel),
                    if why.is_empty() { "by name" } else { &why }
                ));
            } else if secrets.mentions(&bytes) {
                lines += 1;
                if line_samples.len() < 6 {
                    let why = secrets.explain(&bytes).join("+");
                    line_samples.push(format!("{} ({why})", String::from_utf8_lossy(&rel)));
                }
            }
        }
        println!(
            "{tree}: {files} files, {} treated as secrets {flagged:?}, {lines} with a line redacted in diffs, such as {line_samples:?}",
            flagged.len()
        );
        assert!(files > 300, "{tree}: {files} files");
        let allowed = |f: &String| tree == WP && f.rsplit('/').next().unwrap().starts_with("wp-config");
        assert!(flagged.iter().all(allowed), "{tree}: {flagged:?}");
    }
}
