//! Secrets by content: the one documented list of what a credential looks
//! like, so that a file holding one is treated as `nodiff` wherever it is
//! and whatever its name (a copy of `wp-config.php` as `config.php`, an
//! admin's `backup/wp-config.php`, a second WordPress in a subfolder, a
//! base64 copy of it pasted into a script), and so that a credential line
//! in the diff of any other file is shown as `[redacted: secret]`.
//!
//! Decided on the bytes before any of them is stored. A profile can add
//! its own patterns (`secret_patterns`, regular expressions on bytes).
//!
//! Credentials are text: a file with a NUL byte in its first block, or the
//! magic of a known binary format (a compiled translation, an archive, an
//! image), holds none. Every built-in pattern is ASCII-only (`(?-u)`), so
//! the regex engine's lazy DFA runs over translations and non-English
//! bundles at the speed of plain text instead of falling back to its
//! slowest engine on the first non-ASCII byte.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use regex::bytes::{Regex, RegexSet};

/// What a redacted line reads in a diff.
pub const REDACTED: &str = "[redacted: secret]";

/// How far a pattern reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A match makes the whole file a secret: the shapes of configuration
    /// files and key files.
    File,
    /// A match redacts the line in a diff: credentials pasted into code
    /// (an access key id in a plugin) that do not make the file a config.
    Line,
}

/// The built-in credential patterns: (name, scope, regular expression).
/// Matched against whole files (`(?m)`: `^` and `$` at line ends) and
/// against single lines of diffs. Written against the false positives of
/// real code (Debian's WordPress with its language packs, `/usr/share/php`,
/// phpMyAdmin and Roundcube have none but `wp-config*`): a value must be a
/// literal, not a variable, a call or a constant's name. A pattern with a
/// group named `v` (or `w`, the same in the other quotes) holds only when
/// that value looks like a credential ([`credential_value`]), and one with
/// a group named `n` only when that name says credential ([`credential_name`]).
pub const BUILTIN: &[(&str, Scope, &str)] = &[
    // WordPress: wp-config.php's database password and keys and salts.
    (
        "wordpress-define",
        Scope::File,
        r#"(?im-u)^[ \t]*(<\?php[ \t]+)?define\s*\(\s*['"](DB_PASSWORD|AUTH_KEY|SECURE_AUTH_KEY|LOGGED_IN_KEY|NONCE_KEY|AUTH_SALT|SECURE_AUTH_SALT|LOGGED_IN_SALT|NONCE_SALT)['"]\s*,\s*(?:'(?P<w>[^'\n]+)'|"(?P<v>[^"\n]+)")"#,
    ),
    // Drupal's $databases[...]['password'], Magento's env.php, Laravel's
    // config arrays: a password or key given as a literal in a PHP array
    // (not a constant's name, not a placeholder such as '[------]'; four
    // characters at least, not the `'password' => 'foo'` of an example),
    // the whole value (not the start of a concatenation).
    (
        "php-array-credential",
        Scope::File,
        r#"(?m-u)(?i:['"](password|passwd|secret|client_secret|api_key|apikey|private_key|crypt_key|encryption_key)['"])\s*=>\s*(?:'(?P<w>[^'\s]{4,})'|"(?P<v>[^"\s]{4,})")\s*(?:[,\])}]|$)"#,
    ),
    // Drupal's hash salt.
    ("drupal-hash-salt", Scope::File, r#"(?-u)\$settings\s*\[\s*['"]hash_salt['"]\s*\]\s*=\s*['"][^'"]{8,}"#),
    // Joomla's configuration.php.
    (
        "joomla-configuration",
        Scope::File,
        r#"(?i-u)public\s+\$(password|secret|smtppass|ftp_pass|proxy_pass)\s*=\s*(?:'(?P<w>[^'\n]+)'|"(?P<v>[^"\n]+)")"#,
    ),
    // .env style: DB_PASSWORD=..., APP_SECRET=..., AWS_SECRET_ACCESS_KEY=...:
    // a whole line, the value running to its end (code ends it with , or ;).
    (
        "env-credential",
        Scope::File,
        r#"(?m-u)^[ \t]*(export[ \t]+)?[A-Z0-9_]*(PASSWORD|PASSWD|SECRET|_KEY|TOKEN)[A-Z0-9_]*[ \t]*=[ \t]*["']?(?P<v>[^\s"'$,;][^\s,;]*)[ \t]*\r?$"#,
    ),
    ("app-key", Scope::File, r#"(?m-u)^[ \t]*APP_KEY[ \t]*=[ \t]*\S"#),
    // Private keys of any kind (PEM): the armour and the base64 that
    // follows it (code that writes the armour as a string has none).
    (
        "private-key",
        Scope::File,
        r"(?-u)-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----\r?\n([A-Za-z0-9-]+: [^\n]*\r?\n)*\r?\n?[A-Za-z0-9+/=]{40,}",
    ),
    // password: / passwd= in YAML, INI and similar config formats: a
    // lower-case key at the start of a line, a literal value running to the
    // end of it (not `password: null,` or `password: response.password` in
    // a script, nor `'password' => $x` in PHP).
    (
        "config-password",
        Scope::File,
        r#"(?m-u)^[ \t]*["']?(password|passwd|db_pass|db_password|smtp_pass|smtp_password)["']?[ \t]*[:=][ \t]*(?:"(?P<v>[^"\n]+)"|'(?P<w>[^'\n]+)'|(?P<x>[^\s"'$%{<>(.,;][^\s"'(.,;]*))[ \t]*\r?$"#,
    ),
    // AWS access key ids, wherever they are pasted.
    ("aws-access-key-id", Scope::Line, r"(?-u)\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    // A constant whose name says credential, defined to a literal anywhere
    // in code: `define('MY_API_SECRET', '...')`, guarded (`if (!defined(..))
    // define(..)`), silenced (`@define`) or with the name in pieces
    // (`'DB_'.'PASSWORD'`).
    (
        "credential-define",
        Scope::Line,
        r#"(?i-u)\bdefine\s*\(\s*(?P<n>['"][A-Za-z0-9_]*['"](?:\s*\.\s*['"][A-Za-z0-9_]*['"])*)\s*,\s*(?:'(?P<w>[^'\n]*)'|"(?P<v>[^"\n]*)")"#,
    ),
    // A key, property or variable whose name says credential, given a
    // literal: `$settings['api_token'] = '...'`, `'secret' => '...'`,
    // `"apiKey": "..."`, `private $password = '...'`, `token: '...'`.
    (
        "credential-assignment",
        Scope::Line,
        r#"(?i-u)(?P<n>[A-Za-z0-9_]*(?:pass(?:word|wd)?|pwd|secret|token|api_?key|private_?key|access_?key|salt|auth_?key)[A-Za-z0-9_]*)['"]?\s*\]?\s*(?:=>|=|:)\s*(?:'(?P<w>[^'\n]{4,})'|"(?P<v>[^"\n]{4,})")"#,
    ),
    // A database password given to a connection call as a literal:
    // mysqli_connect('host', 'user', 'pw'), new mysqli(...), new PDO(dsn,
    // user, pw), new wpdb('user', 'pw', ...).
    (
        "connect-password",
        Scope::Line,
        r#"(?i-u)\b(?:mysqli_connect|mysql_connect|mysql_pconnect|new\s+mysqli|new\s+PDO|mysqli_real_connect\s*\(\s*\$\w+)\s*[(,]\s*['"][^'"\n]*['"]\s*,\s*['"][^'"\n]*['"]\s*,\s*(?:'(?P<w>[^'\n]+)'|"(?P<v>[^"\n]+)")"#,
    ),
    (
        "wpdb-password",
        Scope::Line,
        r#"(?i-u)\bnew\s+wpdb\s*\(\s*['"][^'"\n]*['"]\s*,\s*(?:'(?P<w>[^'\n]+)'|"(?P<v>[^"\n]+)")"#,
    ),
];

/// Encoded copies are looked into this deep (a base64 of a base64 of a
/// config is still a config) and for this many decoded bytes per file.
const DECODE_DEPTH: usize = 2;
const DECODE_BUDGET: usize = 4 << 20;
/// The shortest run of base64 (or hex) worth decoding: a credential line
/// and its key name encode to more than this.
const ENCODED_MIN: usize = 40;

/// How much of a file's start is looked at to tell text from binary.
const SNIFF: usize = 8192;

/// Is this content text, where credentials can be written? Not when its
/// first block holds a NUL, nor when it starts with the magic of a format
/// that is binary whatever follows (compiled gettext catalogues among them:
/// `wp-content/languages/*.mo` hold the words "password: PASSWORD").
pub fn is_text(bytes: &[u8]) -> bool {
    const MAGIC: &[&[u8]] = &[
        b"\xde\x12\x04\x95", // gettext .mo, little-endian
        b"\x95\x04\x12\xde", // gettext .mo, big-endian
        b"\x1f\x8b",         // gzip
        b"PK\x03\x04",       // zip, jar, docx
        b"\x89PNG",
        b"\xff\xd8\xff", // JPEG
        b"GIF8",
        b"%PDF",
        b"\x7fELF",
        b"wOFF",
        b"wOF2",
        b"\x00\x01\x00\x00", // TrueType
        b"OTTO",
        b"SQLite format 3\x00",
    ];
    !MAGIC.iter().any(|m| bytes.starts_with(m)) && !bytes[..bytes.len().min(SNIFF)].contains(&0)
}

/// Does a credential-shaped name (a key, a constant, a variable) really
/// name a credential? Its last word says so (`api_token`, `apiKey`,
/// `DB_PASSWORD`, `client_secret`, `AUTH_SALT`), not a word inside it
/// (`TokenParser`, `password_hashers`, `PASSWORD_MIN_LENGTH`, `passport`).
pub fn credential_name(name: &[u8]) -> bool {
    // Words: split at `_`, `-`, `.`, and where a lower-case letter meets
    // an upper-case one (camelCase); compared in lower case.
    let mut words: Vec<Vec<u8>> = vec![Vec::new()];
    for (i, &b) in name.iter().enumerate() {
        let camel = i > 0 && name[i - 1].is_ascii_lowercase() && b.is_ascii_uppercase();
        if !b.is_ascii_alphanumeric() || camel {
            words.push(Vec::new());
        }
        if let (true, Some(w)) = (b.is_ascii_alphanumeric(), words.last_mut()) {
            w.push(b.to_ascii_lowercase());
        }
    }
    words.retain(|w| !w.is_empty());
    let Some(last) = words.last() else { return false };
    match last.as_slice() {
        b"password" | b"passwd" | b"pass" | b"pwd" | b"passphrase" | b"secret" | b"token" | b"salt" | b"apikey"
        | b"privatekey" | b"accesskey" | b"secretkey" => true,
        b"key" => {
            words.len() >= 2 && {
                const KEYS: &[&[u8]] = &[
                    b"api",
                    b"private",
                    b"access",
                    b"secret",
                    b"auth",
                    b"encryption",
                    b"crypt",
                    b"client",
                    b"app",
                    b"license",
                    b"signing",
                    b"master",
                    b"nonce",
                    b"in",
                    b"secure",
                    b"hmac",
                    b"jwt",
                ];
                KEYS.contains(&words[words.len() - 2].as_slice())
            }
        }
        _ => false,
    }
}

/// Does a literal look like a credential rather than a placeholder, a
/// label or a constant's name? Not `''`, not `PASSWORD` or `FTP_PASS`, not
/// `your-password-here` or `put your unique phrase here`, not a sentence
/// (`Enter your password`), not the name of the thing (`'password'`).
pub fn credential_value(value: &[u8]) -> bool {
    let v = value.trim_ascii();
    if v.is_empty() {
        return false;
    }
    // A constant's name or a placeholder in capitals.
    if v.iter().all(|b| b.is_ascii_uppercase() || *b == b'_' || b.is_ascii_digit())
        && v.iter().any(u8::is_ascii_alphabetic)
    {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    let has = |w: &[u8]| lower.windows(w.len()).any(|x| x == w);
    // A class name (`Foo\Bar`), an escape (`\f084`), an absolute path.
    if v.contains(&b'\\') || v.first() == Some(&b'/') {
        return false;
    }
    const PLACEHOLDER: &[&[u8]] = &[
        b"_here",
        b"-here",
        b" here",
        b"your",
        b"unique phrase",
        b"example",
        b"changeme",
        b"change_me",
        b"change-me",
        b"placeholder",
        b"xxxx",
        b"****",
        b"[---",
        b"{{",
        b"${",
        b"%(",
        b"%s",
        b"<?",
        b"://",
        b"$_",
        b"dummy",
        b"secret_key_base",
    ];
    if PLACEHOLDER.iter().any(|w| has(w)) {
        return false;
    }
    // `<password>`, Symfony's `%secret%`, `{password}`.
    let wrapped = |a: u8, b: u8| v.len() > 2 && v.first() == Some(&a) && v.last() == Some(&b);
    if wrapped(b'<', b'>') || wrapped(b'%', b'%') || wrapped(b'{', b'}') {
        return false;
    }
    const WORDS: &[&[u8]] = &[
        b"password",
        b"passwd",
        b"pass",
        b"pwd",
        b"secret",
        b"token",
        b"key",
        b"salt",
        b"null",
        b"none",
        b"true",
        b"false",
    ];
    if WORDS.contains(&lower.as_slice()) {
        return false;
    }
    // A label or a sentence: words of letters with spaces between. Salts
    // have spaces too, among many other signs.
    if v.contains(&b' ') {
        let punct = v.iter().filter(|b| b.is_ascii_punctuation()).count();
        return v.len() >= 20 && punct * 5 >= v.len();
    }
    // A file name, a dotted key (`auth.passwords.users`), a path.
    if v.iter().all(|b| b.is_ascii_lowercase() || matches!(b, b'.' | b'-' | b'/' | b'_'))
        && v.iter().any(|b| matches!(b, b'.' | b'/'))
    {
        return false;
    }
    true
}

/// The patterns of one site: the built-ins and its profile's, compiled
/// when first used (a daemon whose sites do not change never pays for
/// them).
#[derive(Clone, Debug)]
pub struct Secrets {
    extra: Vec<String>,
    compiled: OnceLock<Compiled>,
}

#[derive(Clone, Debug)]
struct Compiled {
    /// Every pattern, built-in then the admin's, for the first look.
    set: RegexSet,
    /// Each pattern alone, with its scope and whether it judges its
    /// captures (`n`, `v`, `w`, `x`), for the second look at those that
    /// matched.
    each: Vec<(Scope, Regex, bool)>,
    /// Runs of base64 or hex long enough to hide a credential line (None
    /// only if the built-ins themselves failed to compile).
    encoded: Option<Regex>,
}

/// A `secret_patterns` entry that is not a valid regular expression.
#[derive(Debug, thiserror::Error)]
#[error("invalid secret pattern '{pattern}': {reason}")]
pub struct SecretPatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What the regex engine says.
    pub reason: String,
}

/// Checks one admin pattern (for the config and profile parsers).
pub fn validate(pattern: &str) -> Result<(), SecretPatternError> {
    Regex::new(pattern)
        .map(|_| ())
        .map_err(|e| SecretPatternError { pattern: pattern.to_string(), reason: first_line(&e.to_string()) })
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

impl Compiled {
    fn build(extra: &[String]) -> Result<Compiled, regex::Error> {
        let mut each = Vec::with_capacity(BUILTIN.len() + extra.len());
        for (_, scope, p) in BUILTIN {
            let re = Regex::new(p)?;
            let judged = re.capture_names().flatten().any(|n| matches!(n, "n" | "v" | "w" | "x"));
            each.push((*scope, re, judged));
        }
        for p in extra {
            each.push((Scope::File, Regex::new(p)?, false));
        }
        let set = RegexSet::new(BUILTIN.iter().map(|(_, _, p)| *p).chain(extra.iter().map(String::as_str)))?;
        let encoded = Regex::new(&format!(r"(?-u)[A-Za-z0-9+/_-]{{{ENCODED_MIN},}}={{0,2}}"))?;
        Ok(Compiled { set, each, encoded: Some(encoded) })
    }

    /// The widest scope of a credential in `bytes` (text, already checked),
    /// looking into encoded runs down to `depth`.
    fn scope(&self, bytes: &[u8], depth: usize, budget: &mut usize) -> Option<Scope> {
        let mut found = None;
        for i in self.set.matches(bytes).iter() {
            let (scope, re, judged) = &self.each[i];
            if found == Some(Scope::File) || (found == Some(Scope::Line) && *scope == Scope::Line) {
                continue;
            }
            if !*judged || re.captures_iter(bytes).any(|c| holds_up(&c)) {
                found = Some(*scope);
            }
        }
        let Some(encoded) = self.encoded.as_ref().filter(|_| depth > 0 && found != Some(Scope::File)) else {
            return found;
        };
        for m in encoded.find_iter(bytes) {
            if *budget == 0 {
                break;
            }
            // Base64 of text mixes cases; a long CSS class or slug
            // (`wp-block-navigation__responsive-container`) does not.
            let run = m.as_bytes();
            let hex = run.iter().all(u8::is_ascii_hexdigit);
            let mixed = run.iter().any(u8::is_ascii_uppercase) && run.iter().any(u8::is_ascii_lowercase);
            if !(hex || mixed) {
                continue;
            }
            let Some(decoded) = decode(run) else { continue };
            *budget = budget.saturating_sub(decoded.len());
            // What decodes to noise (an identifier taken for base64) is not
            // looked into: text is nearly all printable.
            let printable = decoded.iter().filter(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()).count();
            if printable * 10 < decoded.len() * 9 || !is_text(&decoded) {
                continue;
            }
            // A credential copied whole in an encoding is a copy of a secret
            // file: whatever the scope it had in the clear, the file holding
            // it is a secret now.
            if self.scope(&decoded, depth - 1, budget).is_some() {
                return Some(Scope::File);
            }
        }
        found
    }
}

/// The captures of a judged pattern hold up: the name says credential and
/// the value looks like one.
fn holds_up(c: &regex::bytes::Captures) -> bool {
    let name_ok = c.name("n").is_none_or(|n| credential_name(n.as_bytes()));
    // An unquoted value written like a script's variable (`password:
    // passwordReversed` in an object literal) names a value, it is none.
    let variable = c.name("x").is_some_and(|x| camel_case(x.as_bytes()));
    let value = c.name("v").or_else(|| c.name("w")).or_else(|| c.name("x"));
    // Where any name may stand (code, not a config file's known key), a
    // single capitalised or non-English word is a label: the
    // `$labels['password'] = 'Hasło';` of every translation file.
    let label = c.name("n").is_some() && value.is_some_and(|v| label_like(v.as_bytes()));
    name_ok && !variable && !label && value.is_none_or(|v| credential_value(v.as_bytes()))
}

/// One word of letters, capitalised (`Password`) or not in ASCII
/// (`Contraseña`): a label in some language.
fn label_like(v: &[u8]) -> bool {
    let letters = v.iter().all(|b| b.is_ascii_alphabetic() || !b.is_ascii());
    let capitalised = v.first().is_some_and(u8::is_ascii_uppercase) && v[1..].iter().all(|b| !b.is_ascii_uppercase());
    letters && !v.is_empty() && (capitalised || !v.is_ascii())
}

/// An identifier with a lower-case letter followed by an upper-case one.
fn camel_case(v: &[u8]) -> bool {
    v.first().is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        && v.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        && v.windows(2).any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
}

/// A run that decodes as base64 (standard or URL-safe, padded or not) or
/// as hex, or None.
fn decode(run: &[u8]) -> Option<Vec<u8>> {
    if run.len() % 2 == 0 && run.iter().all(u8::is_ascii_hexdigit) {
        return run
            .chunks(2)
            .map(|p| std::str::from_utf8(p).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect();
    }
    let trimmed = run.trim_ascii_end().strip_suffix(b"==").or_else(|| run.strip_suffix(b"=")).unwrap_or(run);
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed))
        .ok()
        // A run cut at a length that is not a whole number of groups: the
        // groups before the cut still hold what was encoded.
        .or_else(|| {
            let whole = trimmed.len() / 4 * 4;
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(&trimmed[..whole]).ok()
        })
}

impl Secrets {
    /// The built-in patterns plus `extra`.
    pub fn new(extra: &[String]) -> Result<Secrets, SecretPatternError> {
        for p in extra {
            validate(p)?;
        }
        Ok(Secrets { extra: extra.to_vec(), compiled: OnceLock::new() })
    }

    fn compiled(&self) -> &Compiled {
        self.compiled.get_or_init(|| {
            // Each admin pattern was checked alone; should their union be
            // refused (too large), the built-ins still hold: never nothing.
            Compiled::build(&self.extra).unwrap_or_else(|e| {
                tracing::error!("secret_patterns: {e}; using the built-in patterns only");
                Compiled::build(&[]).unwrap_or_else(|_| Compiled {
                    set: RegexSet::empty(),
                    each: Vec::new(),
                    encoded: None,
                })
            })
        })
    }

    /// The compiled patterns for a site that adds `extra`: sites that add
    /// none (most) share one compiled set, and its caches, rather than each
    /// holding its own (hundreds of KiB a set on a server of 400 sites).
    pub fn shared(extra: &[String]) -> Result<Arc<Secrets>, SecretPatternError> {
        static BUILT_IN: OnceLock<Arc<Secrets>> = OnceLock::new();
        if extra.is_empty() {
            return Ok(Arc::clone(BUILT_IN.get_or_init(|| Arc::new(Secrets::default()))));
        }
        Secrets::new(extra).map(Arc::new)
    }

    /// The patterns a profile or site added.
    pub fn extra(&self) -> &[String] {
        &self.extra
    }

    /// The widest scope of a credential in `bytes`: `File` (a secret file),
    /// `Line` (a credential line in ordinary code), or none. One pass for
    /// callers that need both answers of [`Secrets::holds`] and
    /// [`Secrets::mentions`].
    pub fn scope(&self, bytes: &[u8]) -> Option<Scope> {
        if !is_text(bytes) {
            return None;
        }
        let mut budget = DECODE_BUDGET;
        self.compiled().scope(bytes, DECODE_DEPTH, &mut budget)
    }

    /// The names of the built-in patterns (and `custom` for an admin's)
    /// whose match in `bytes` holds up: what made it a secret, for the
    /// people who must judge a false one.
    pub fn explain(&self, bytes: &[u8]) -> Vec<&'static str> {
        if !is_text(bytes) {
            return Vec::new();
        }
        let c = self.compiled();
        c.set
            .matches(bytes)
            .iter()
            .filter(|&i| {
                let (_, re, judged) = &c.each[i];
                !*judged || re.captures_iter(bytes).any(|c| holds_up(&c))
            })
            .map(|i| BUILTIN.get(i).map_or("custom", |(name, _, _)| *name))
            .collect()
    }

    /// Does this content hold a credential that makes it a secret file?
    pub fn holds(&self, bytes: &[u8]) -> bool {
        self.scope(bytes) == Some(Scope::File)
    }

    /// Does this content hold anything that looks like a credential, even a
    /// line-scoped one? Such content is never stored by us (content store,
    /// evidence), though its diff is shown with the line redacted.
    pub fn mentions(&self, bytes: &[u8]) -> bool {
        self.scope(bytes).is_some()
    }

    /// `text` with every line that holds a credential replaced by
    /// [`REDACTED`]; a diff's leading `+`, `-` or ` ` is kept.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if !self.mentions(text.as_bytes()) {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            // A diff line is judged without its mark: `+DB_PASSWORD=x` is
            // the line `DB_PASSWORD=x`.
            let bare = line.strip_prefix(['+', '-', ' ']).unwrap_or(line);
            if self.mentions(line.as_bytes()) || self.mentions(bare.as_bytes()) {
                let mark = line.chars().next().filter(|c| matches!(c, '+' | '-' | ' ')).map(String::from);
                out.push_str(&mark.unwrap_or_default());
                out.push_str(REDACTED);
                if line.ends_with('\n') {
                    out.push('\n');
                }
            } else {
                out.push_str(line);
            }
        }
        Cow::Owned(out)
    }
}

impl Default for Secrets {
    /// The built-in patterns only.
    fn default() -> Secrets {
        Secrets { extra: Vec::new(), compiled: OnceLock::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s() -> Secrets {
        Secrets::new(&[]).unwrap()
    }

    #[test]
    fn every_known_credential_form_is_a_secret() {
        for text in [
            "<?php\ndefine( 'DB_PASSWORD', 'hunter2' );\n",
            "<?php define(\"AUTH_KEY\", \"x|y:z\");",
            "$databases['default']['default'] = array (\n  'database' => 'd',\n  'password' => 's3cret',\n);",
            "$settings['hash_salt'] = 'abcdefghijklmnop';",
            "class JConfig {\n\tpublic $password = 'pw';\n}",
            "return ['db' => ['connection' => ['default' => ['password' => 'magento-pw']]]];",
            "APP_KEY=base64:abcdef\n",
            "DB_PASSWORD=pw\n",
            "export AWS_SECRET_ACCESS_KEY=abc\n",
            "MAILER_SECRET=\"x\"\n",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n",
            "-----BEGIN PRIVATE KEY-----\r\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\r\n",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,ABC\n\nMIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n",
            "database:\n  password: pw123\n",
            "[client]\npasswd=pw\n",
        ] {
            assert!(s().holds(text.as_bytes()), "not a secret: {text:?}");
        }
    }

    #[test]
    fn ordinary_code_is_not_a_secret() {
        for text in [
            "<?php echo 'password';\n",
            "<?php $args = array( 'password' => $pass );\n",
            "<?php define( 'WP_DEBUG', false );\n",
            "$label = __( 'Password' );\n",
            "input.type = 'password';\n",
            "password: ''\n",
            "if (password == null) {}\n",
            "PASSWORD_MIN_LENGTH = $min\n",
            "      WRAP_BIND_KEY_FLAG = 2,\n",
            "\t\tpassword: null,\n",
            "    password: response.password\n",
            "\t\t'password'   => '[------]',\n",
            "\t\t'password'    => 'FTP_PASS',\n",
            "\t *     define('AUTH_KEY',         ' Xakm<o xQy');\n",
            "Password: PASSWORD\n",
            // Code that writes a key's armour, and a configuration's shape.
            "$pem = \"-----BEGIN PRIVATE KEY-----\\r\\n\" . chunk_split(base64_encode($key), 64);\n",
            "'password' => '--password='.$connection['password'],\n",
            "    'secret' => '%secret%',\n",
            "          password: passwordReversed\n",
            "<?php $labels['password'] = 'Pasahitza';\n",
            "<?php $labels['password'] = 'Has\u{142}o';\n",
            "'Twig\\\\TokenParser\\\\ApplyTokenParser' => $vendorDir . '/x.php',\n",
            "@fa-var-passport: \"\\f5ab\";\n",
            "$k = 'AKIAIOSFODNN7EXAMPLE';\n",
        ] {
            assert!(!s().holds(text.as_bytes()), "false secret: {text:?}");
        }
    }

    #[test]
    fn credentials_in_code_are_redacted_wherever_they_are_written() {
        for text in [
            "<?php define('MY_API_SECRET', 'sk_live_4eC39HqLyjWDarjtT1zdp7dc');\n",
            "<?php if (!defined('DB_PASSWORD')) define('DB_PASSWORD', 'hunter2');\n",
            "<?php @define('DB_PASSWORD','s3cr3t');\n",
            "<?php define('DB_'.'PASSWORD', 's3cr3t');\n",
            "<?php define('DB_NAME','wp'); define('DB_PASSWORD','pw-9x');\n",
            "<?php $settings['api_token'] = 'a8f5f167f44f4964e6c998dee827110c';\n",
            "<?php $link = mysqli_connect('localhost', 'root', 'Tr0ub4dor');\n",
            "<?php $db = new wpdb('wp', 'Tr0ub4dor', 'wp', 'localhost');\n",
            "<?php $pdo = new PDO('mysql:host=x', 'root', 'Tr0ub4dor');\n",
            "const config = { apiKey: \"AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY\" };\n",
            "<?php private $password = 'correct-horse9';\n",
        ] {
            let s = s();
            assert!(s.mentions(text.as_bytes()), "not a credential: {text:?}");
            assert_eq!(s.redact(&format!("+{text}")), format!("+{REDACTED}\n"), "{text:?}");
        }
    }

    #[test]
    fn placeholders_labels_and_settings_about_credentials_are_not_credentials() {
        for text in [
            "<?php define( 'DB_PASSWORD', 'password_here' );\n",
            "<?php define( 'AUTH_KEY',         'put your unique phrase here' );\n",
            "<?php define('PASSWORD_MIN_LENGTH', '12');\n",
            "<?php $args['password'] = 'Password';\n",
            "<?php $labels = ['password' => 'Enter your password'];\n",
            "var o = { token_type: 'bearer', passwordField: 'user-pass' };\n",
            "{\"Password\":[\"Contrase\\u00f1a\"]}\n",
            "<?php $s['token'] = '';\n",
            "<?php $x = array('secret' => 'SECRET_KEY');\n",
            "password: PASSWORD\n",
            "<?php $cfg['pass'] = '{{ db_pass }}';\n",
        ] {
            assert!(!s().mentions(text.as_bytes()), "false credential: {text:?}");
        }
    }

    #[test]
    fn an_encoded_copy_of_a_secret_is_a_secret() {
        use base64::Engine as _;
        let config = "<?php\ndefine( 'DB_NAME', 'wp' );\ndefine( 'DB_PASSWORD', 'hunter2-x' );\n";
        let b64 = base64::engine::general_purpose::STANDARD.encode(config);
        let js = format!("var blob = \"{b64}\";\nconsole.log(atob(blob));\n");
        assert!(s().holds(js.as_bytes()), "base64 in a script");
        let hex: String = config.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(s().holds(format!("$h = '{hex}';").as_bytes()), "hex");
        let twice = base64::engine::general_purpose::STANDARD.encode(&b64);
        assert!(s().holds(format!("x='{twice}'").as_bytes()), "base64 of base64");
        // Encoded data that holds no credential is just data.
        let png = base64::engine::general_purpose::STANDARD.encode([0x89u8, b'P', b'N', b'G', 0, 0, 0, 13].repeat(20));
        assert!(!s().mentions(format!("url(data:image/png;base64,{png})").as_bytes()));
        let plain =
            base64::engine::general_purpose::STANDARD.encode("just some words about a password field".repeat(3));
        assert!(!s().mentions(plain.as_bytes()));
    }

    #[test]
    fn binary_files_hold_no_credentials() {
        // A compiled translation (wp-content/languages/fa_IR.mo holds these
        // words) and any content with a NUL near its start.
        let mut mo = b"\xde\x12\x04\x95".to_vec();
        mo.extend_from_slice(b"\npassword: hunter2\nDB_PASSWORD=pw\n");
        assert!(!s().mentions(&mo));
        assert!(!s().mentions(b"\x00\x01\npassword: hunter2\n"));
        assert!(s().holds(b"\npassword: hunter2\n"), "the same words in text are");
    }

    #[test]
    fn credential_lines_are_redacted_in_diffs() {
        let d = "@@ -1,2 +1,3 @@\n <?php\n+$k = 'AKIAIOSFODNN7EXAMPLE';\n+echo 1;\n";
        assert_eq!(s().redact(d), "@@ -1,2 +1,3 @@\n <?php\n+[redacted: secret]\n+echo 1;\n");
        assert!(matches!(s().redact("+echo 1;\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn admin_patterns_add_and_bad_ones_are_refused() {
        let custom = Secrets::new(&["MY_TOKEN_[0-9a-f]{8}".into()]).unwrap();
        assert!(custom.holds(b"x = MY_TOKEN_deadbeef"));
        let e = Secrets::new(&["a(".into()]).unwrap_err();
        assert!(e.to_string().contains("invalid secret pattern 'a('"), "{e}");
    }
}
