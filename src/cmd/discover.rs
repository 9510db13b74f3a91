//! `sitewarden init --discover`: the web roots of this server, found where
//! the web servers and the hosting panels keep them, each with its stack
//! detected, printed as a table and added to CONFIG (or printed as YAML
//! with `--dry-run`). Running it again adds only roots not watched yet.
//!
//! - Apache: `apache2ctl -S` names every virtual host with the file and
//!   line where it starts; its `DocumentRoot` (and `ServerName`,
//!   `ServerAlias`) are read from that block.
//! - nginx: `nginx -T` prints the whole configuration; each `server { }`
//!   block's `server_name` and `root` are taken.
//! - Panels: `/home/*/public_html` (cPanel, DirectAdmin), `/var/www/vhosts/
//!   */httpdocs` (Plesk), `/var/www/*` (Debian's default layout, ISPConfig
//!   and hand-made servers).
//!
//! A root that does not exist, or is not a directory, is skipped; the same
//! directory found twice is one site with the names of both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One web root found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The directory (canonical).
    pub root: PathBuf,
    /// The host names that serve it.
    pub names: Vec<String>,
    /// Who said so (`apache`, `nginx`, `panel`).
    pub by: Vec<&'static str>,
}

/// Every web root of this server; `panel_root`: where the panel layouts
/// are looked for (`/`).
pub fn discover(panel_root: &Path) -> Vec<Found> {
    let mut found: BTreeMap<PathBuf, Found> = BTreeMap::new();
    let mut add = |root: PathBuf, names: Vec<String>, by: &'static str| {
        let Ok(real) = std::fs::canonicalize(&root) else { return };
        if !real.is_dir() {
            return;
        }
        let f = found.entry(real.clone()).or_insert_with(|| Found { root: real, names: Vec::new(), by: Vec::new() });
        for n in names {
            if !f.names.contains(&n) {
                f.names.push(n);
            }
        }
        if !f.by.contains(&by) {
            f.by.push(by);
        }
    };
    for (root, names) in apache() {
        add(root, names, "apache");
    }
    for (root, names) in nginx() {
        add(root, names, "nginx");
    }
    for root in panels(panel_root) {
        add(root, Vec::new(), "panel");
    }
    found.into_values().collect()
}

/// Output of `cmd args`, when it ran (its stdout and stderr: `nginx -T`
/// prints the configuration on stdout, `apache2ctl -S` partly on stderr).
/// A server that is installed but whose command fails is said, never taken
/// for a server without sites.
fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        let why = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("no output");
        let why = crate::util::bytes::printable(why.as_bytes());
        eprintln!(
            "sitewarden: warning: `{cmd} {}` failed ({}): {why}; its sites are not listed",
            args.join(" "),
            out.status
        );
        return None;
    }
    Some(text)
}

/// Apache's virtual hosts: (DocumentRoot, names).
fn apache() -> Vec<(PathBuf, Vec<String>)> {
    let Some(text) = run("apache2ctl", &["-S"]) else { return Vec::new() };
    let mut places: Vec<(PathBuf, usize)> = Vec::new();
    for line in text.lines() {
        // "... namevhost blog.example (/etc/apache2/sites-enabled/blog.conf:1)"
        let Some(open) = line.rfind('(') else { continue };
        let Some(inner) = line[open + 1..].strip_suffix(')') else { continue };
        let Some((file, n)) = inner.rsplit_once(':') else { continue };
        let Ok(n) = n.parse::<usize>() else { continue };
        let place = (PathBuf::from(file), n);
        if !places.contains(&place) {
            places.push(place);
        }
    }
    places.into_iter().filter_map(|(file, line)| vhost_block(&file, line)).collect()
}

/// The `DocumentRoot` and names of the `<VirtualHost>` block starting at
/// `line` of `file`.
fn vhost_block(file: &Path, line: usize) -> Option<(PathBuf, Vec<String>)> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut root = None;
    let mut names = Vec::new();
    for l in text.lines().skip(line.saturating_sub(1)) {
        let l = l.trim();
        if l.eq_ignore_ascii_case("</VirtualHost>") {
            break;
        }
        let mut words = l.split_whitespace();
        let Some(key) = words.next() else { continue };
        let value = |w: &str| w.trim_matches('"').to_string();
        if key.eq_ignore_ascii_case("DocumentRoot") {
            root = words.next().map(|w| PathBuf::from(value(w)));
        } else if key.eq_ignore_ascii_case("ServerName") || key.eq_ignore_ascii_case("ServerAlias") {
            names.extend(words.map(|w| value(w).split(':').next().unwrap_or_default().to_string()));
        }
    }
    Some((root?, names))
}

/// nginx's server blocks: (root, server names).
fn nginx() -> Vec<(PathBuf, Vec<String>)> {
    let Some(text) = run("nginx", &["-T", "-q"]) else { return Vec::new() };
    parse_nginx(&text)
}

/// The `server { }` blocks of an `nginx -T` dump.
pub fn parse_nginx(text: &str) -> Vec<(PathBuf, Vec<String>)> {
    // Comments and the "# configuration file ..." lines off; then tokens.
    let clean: String = text.lines().map(|l| l.split('#').next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut server_depth: Option<usize> = None;
    let mut statement: Vec<String> = Vec::new();
    let mut root: Option<PathBuf> = None;
    let mut names: Vec<String> = Vec::new();
    let mut token = String::new();
    let flush = |token: &mut String, statement: &mut Vec<String>| {
        if !token.is_empty() {
            statement.push(std::mem::take(token).trim_matches(|c| c == '"' || c == '\'').to_string());
        }
    };
    for c in clean.chars() {
        match c {
            '{' => {
                flush(&mut token, &mut statement);
                if statement.first().map(String::as_str) == Some("server") && server_depth.is_none() {
                    server_depth = Some(depth + 1);
                    root = None;
                    names.clear();
                }
                statement.clear();
                depth += 1;
            }
            '}' => {
                flush(&mut token, &mut statement);
                statement.clear();
                if server_depth == Some(depth) {
                    if let Some(r) = root.take() {
                        out.push((r, std::mem::take(&mut names)));
                    }
                    server_depth = None;
                }
                depth = depth.saturating_sub(1);
            }
            ';' => {
                flush(&mut token, &mut statement);
                if server_depth == Some(depth) {
                    match statement.first().map(String::as_str) {
                        Some("root") => root = statement.get(1).map(PathBuf::from),
                        Some("server_name") => {
                            names.extend(statement[1..].iter().filter(|n| *n != "_" && !n.is_empty()).cloned())
                        }
                        _ => {}
                    }
                }
                statement.clear();
            }
            c if c.is_whitespace() => flush(&mut token, &mut statement),
            c => token.push(c),
        }
    }
    out
}

/// The usual hosting panel layouts below `top`.
fn panels(top: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let each = |dir: PathBuf| -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        let mut v: Vec<PathBuf> =
            entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect();
        v.sort();
        v
    };
    for home in each(top.join("home")) {
        out.push(home.join("public_html"));
    }
    for vhost in each(top.join("var/www/vhosts")) {
        out.push(vhost.join("httpdocs"));
    }
    for site in each(top.join("var/www")) {
        if site.file_name().is_some_and(|n| n != "vhosts") {
            out.push(site);
        }
    }
    out.into_iter().filter(|p| p.is_dir()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_server_blocks_give_their_root_and_names() {
        let dump = "# configuration file /etc/nginx/nginx.conf:\nhttp {\n  server {\n    listen 80;\n    server_name blog.example www.blog.example;\n    root /srv/blog; # the site\n    location / { root /elsewhere; }\n  }\n  server { server_name _; root \"/srv/default\"; }\n  server { server_name proxy.example; location / { proxy_pass http://x; } }\n}\n";
        let got = parse_nginx(dump);
        assert_eq!(
            got,
            vec![
                (PathBuf::from("/srv/blog"), vec!["blog.example".to_string(), "www.blog.example".to_string()]),
                (PathBuf::from("/srv/default"), vec![]),
            ]
        );
    }
}
