//! `init --discover`: the web roots of Apache's and nginx's virtual hosts
//! (Debian's apache2 and nginx, three hosts each, in configurations of the
//! test's own: a copy of /etc/apache2 through `APACHE_CONFDIR`, an nginx
//! config through `-c`) and of the hosting panels' layouts, each with its
//! stack; added once, and again only what is new.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Run;

struct Servers {
    _dir: tempfile::TempDir,
    top: PathBuf,
    apache: PathBuf,
    bin: PathBuf,
}

fn servers() -> Servers {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().to_path_buf();
    let www = top.join("srv");
    for (name, marker) in [
        ("a1", "wp-includes/version.php"),
        ("a2", "index.php"),
        ("a3", "index.html"),
        ("n1", "artisan"),
        ("n2", "index.php"),
        ("n3", "index.html"),
    ] {
        let p = www.join(name).join(marker);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "<?php").unwrap();
    }
    // Apache: Debian's configuration, with only these three hosts enabled.
    let apache = top.join("apache2-sw");
    assert!(Command::new("cp").arg("-a").arg("/etc/apache2").arg(&apache).status().unwrap().success());
    for e in std::fs::read_dir(apache.join("sites-enabled")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    for name in ["a1", "a2", "a3"] {
        std::fs::write(
            apache.join(format!("sites-enabled/{name}.conf")),
            format!("<VirtualHost *:80>\n    ServerName {name}.example\n    ServerAlias www.{name}.example\n    DocumentRoot \"{}\"\n</VirtualHost>\n", www.join(name).display()),
        )
        .unwrap();
    }
    // nginx: a configuration of three servers, and a `nginx` that reads it.
    let servers: String = ["n1", "n2", "n3"]
        .iter()
        .map(|n| format!("  server {{\n    listen 127.0.0.1:8089;\n    server_name {n}.example;\n    root {};\n    location / {{ try_files $uri =404; }}\n  }}\n", www.join(n).display()))
        .collect();
    let conf = top.join("nginx.conf");
    std::fs::write(
        &conf,
        format!("pid {0}/nginx.pid;\nerror_log {0}/nginx-error.log;\nevents {{}}\nhttp {{\n  access_log off;\n{servers}}}\n", top.display()),
    )
    .unwrap();
    let bin = top.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("nginx"), format!("#!/bin/sh\nexec /usr/sbin/nginx -c {} \"$@\"\n", conf.display()))
        .unwrap();
    std::fs::set_permissions(bin.join("nginx"), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Panels: cPanel's /home/USER/public_html, Plesk's /var/www/vhosts/DOMAIN/httpdocs.
    for p in ["panel/home/alice/public_html/index.php", "panel/var/www/vhosts/bob.example/httpdocs/wp-config.php"] {
        let p = top.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "<?php").unwrap();
    }
    Servers { _dir: dir, top, apache, bin }
}

fn discover(s: &Servers, config: &Path, extra: &[&str]) -> Run {
    let path = format!("{}:{}", s.bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new(common::BIN);
    cmd.arg("-c").arg(config).args(["init", "--discover", "--panel-root"]).arg(s.top.join("panel")).args(extra);
    cmd.env("APACHE_CONFDIR", &s.apache).env("PATH", path);
    Run::of(cmd)
}

#[test]
fn apache_nginx_and_panel_roots_are_found_and_added_once() {
    let s = servers();
    let config = s.top.join("etc/sitewarden.yaml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let dry = discover(&s, &config, &["--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    println!("{}", dry.stdout);
    let row = |root: &str| {
        dry.stdout.lines().find(|l| l.contains(root)).unwrap_or_else(|| panic!("{root}: {}", dry.stdout)).to_string()
    };
    let a1 = row("/srv/a1 ");
    assert!(a1.contains("a1.example,www.a1.example") && a1.contains("wordpress") && a1.contains("apache"), "{a1}");
    let n1 = row("/srv/n1 ");
    assert!(n1.contains("n1.example") && n1.contains("laravel") && n1.contains("nginx"), "{n1}");
    assert!(row("/srv/a3 ").contains("static"), "{}", dry.stdout);
    assert!(row("/home/alice/public_html").contains("generic-php"), "{}", dry.stdout);
    assert!(row("/vhosts/bob.example/httpdocs").contains("wordpress"), "{}", dry.stdout);
    assert!(dry.stdout.contains("# to add under `sites:`"), "{}", dry.stdout);
    assert!(!config.exists(), "--dry-run writes nothing");
    // For real: 8 sites, a config that loads.
    let r = discover(&s, &config, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut check = Command::new(common::BIN);
    check.arg("-c").arg(&config).arg("config-check");
    let c = Run::of(check);
    assert_eq!(c.code, 0, "{c:?}");
    let text = std::fs::read_to_string(&config).unwrap();
    assert_eq!(text.matches("  - name: ").count(), 8, "{text}");
    for name in ["a1.example", "n1.example", "alice", "bob.example"] {
        assert!(text.contains(&format!("name: \"{name}\"")), "{name}: {text}");
    }
    // Again: nothing new. Then one new nginx host: only it is added.
    let again = discover(&s, &config, &[]);
    assert!(
        again.stdout.contains("no new web root") && again.stdout.matches("already watched").count() == 8,
        "{again:?}"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
    let conf = s.top.join("nginx.conf");
    let n4 = s.top.join("srv/n4");
    std::fs::create_dir_all(&n4).unwrap();
    let more = std::fs::read_to_string(&conf).unwrap().replace(
        "  access_log off;\n",
        &format!("  access_log off;\n  server {{ server_name n4.example; root {}; }}\n", n4.display()),
    );
    std::fs::write(&conf, more).unwrap();
    let r = discover(&s, &config, &[]);
    assert!(r.stderr.contains("added 1 site to"), "{r:?}");
    assert_eq!(std::fs::read_to_string(&config).unwrap().matches("  - name: ").count(), 9);
}

/// Regression (found by tests/fresh-machine.sh, whose /run had no lock
/// directory yet): an `apache2ctl -S` that failed was read as a server
/// without virtual hosts. Now its failure is said, and the other servers'
/// sites are still listed.
#[test]
fn an_apache_that_cannot_answer_is_said_not_taken_for_no_sites() {
    let s = servers();
    let envvars = s.apache.join("envvars");
    let text = std::fs::read_to_string(&envvars).unwrap();
    let broken = s.top.join("no-such-dir/lock");
    std::fs::write(&envvars, format!("{text}\nexport APACHE_LOCK_DIR={}\n", broken.display())).unwrap();
    let config = s.top.join("etc/sitewarden.yaml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let dry = discover(&s, &config, &["--dry-run"]);
    println!("{}", dry.stderr.lines().find(|l| l.contains("apache2ctl")).unwrap_or(""));
    assert!(dry.stderr.contains("`apache2ctl -S` failed"), "{}", dry.stderr);
    assert!(dry.stdout.contains("n1.example"), "nginx's sites still listed: {}", dry.stdout);
}
