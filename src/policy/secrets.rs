//! Secrets by content: the one documented list of what a credential looks
//! like, so that a file holding one is treated as `nodiff` wherever it is
//! and whatever its name (a copy of `wp-config.php` as `config.php`, an
//! admin's `backup/wp-config.php`, a second WordPress in a subfolder), and
//! so that a credential line in the diff of any other file is shown as
//! `[redacted: secret]`.
//!
//! Decided on the bytes before any of them is stored. A profile can add
//! its own patterns (`secret_patterns`, regular expressions on bytes).

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use regex::bytes::RegexSet;

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
/// real code (Debian's WordPress tree has none but `wp-config*`): a value
/// must be a literal, not a variable, a call or a constant's name.
pub const BUILTIN: &[(&str, Scope, &str)] = &[
    // WordPress: wp-config.php's database password and keys and salts.
    (
        "wordpress-define",
        Scope::File,
        r#"(?im)^[ \t]*(<\?php[ \t]+)?define\s*\(\s*['"](DB_PASSWORD|AUTH_KEY|SECURE_AUTH_KEY|LOGGED_IN_KEY|NONCE_KEY|AUTH_SALT|SECURE_AUTH_SALT|LOGGED_IN_SALT|NONCE_SALT)['"]\s*,\s*['"][^'"]"#,
    ),
    // Drupal's $databases[...]['password'], Magento's env.php, Laravel's
    // config arrays: a password or key given as a literal in a PHP array
    // (with a lower-case letter or a digit: not a constant's name, not a
    // placeholder such as '[------]').
    (
        "php-array-credential",
        Scope::File,
        r#"(?i:['"](password|passwd|secret|client_secret|api_key|apikey|private_key|crypt_key|encryption_key)['"])\s*=>\s*['"][^'"\s]*[a-z0-9][^'"\s]*['"]"#,
    ),
    // Drupal's hash salt.
    ("drupal-hash-salt", Scope::File, r#"\$settings\s*\[\s*['"]hash_salt['"]\s*\]\s*=\s*['"][^'"]{8,}"#),
    // Joomla's configuration.php.
    (
        "joomla-configuration",
        Scope::File,
        r#"(?i)public\s+\$(password|secret|smtppass|ftp_pass|proxy_pass)\s*=\s*['"][^'"]+['"]"#,
    ),
    // .env style: DB_PASSWORD=..., APP_SECRET=..., AWS_SECRET_ACCESS_KEY=...:
    // a whole line, the value running to its end (code ends it with , or ;).
    (
        "env-credential",
        Scope::File,
        r#"(?m)^[ \t]*(export[ \t]+)?[A-Z0-9_]*(PASSWORD|PASSWD|SECRET|_KEY|TOKEN)[A-Z0-9_]*[ \t]*=[ \t]*["']?[^\s"'$,;][^\s,;]*[ \t]*\r?$"#,
    ),
    ("app-key", Scope::File, r#"(?m)^[ \t]*APP_KEY[ \t]*=[ \t]*\S"#),
    // Private keys of any kind (PEM).
    ("private-key", Scope::File, r"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----"),
    // password: / passwd= in YAML, INI and similar config formats: a
    // lower-case key at the start of a line, a literal value running to the
    // end of it (not `password: null,` or `password: response.password` in
    // a script, nor `'password' => $x` in PHP).
    (
        "config-password",
        Scope::File,
        r#"(?m)^[ \t]*["']?(password|passwd|db_pass|db_password|smtp_pass|smtp_password)["']?[ \t]*[:=][ \t]*("[^"\n]+"|'[^'\n]+'|[^\s"'$%{<>(.,;][^\s"'(.,;]*)[ \t]*\r?$"#,
    ),
    // AWS access key ids, wherever they are pasted.
    ("aws-access-key-id", Scope::Line, r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
];

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
    /// File-scoped built-ins and the admin's patterns.
    files: RegexSet,
    /// Every pattern.
    lines: RegexSet,
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
    regex::bytes::Regex::new(pattern)
        .map(|_| ())
        .map_err(|e| SecretPatternError { pattern: pattern.to_string(), reason: first_line(&e.to_string()) })
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
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
            let set = |scopes: &[Scope], extra: &[String]| {
                let built_in = BUILTIN.iter().filter(|(_, s, _)| scopes.contains(s)).map(|(_, _, p)| *p);
                RegexSet::new(built_in.chain(extra.iter().map(String::as_str)))
            };
            let with = |extra: &[String]| -> Result<Compiled, regex::Error> {
                Ok(Compiled { files: set(&[Scope::File], extra)?, lines: set(&[Scope::File, Scope::Line], extra)? })
            };
            // Each admin pattern was checked alone; should their union be
            // refused (too large), the built-ins still hold: never nothing.
            with(&self.extra).unwrap_or_else(|e| {
                tracing::error!("secret_patterns: {e}; using the built-in patterns only");
                with(&[]).unwrap_or_else(|_| Compiled { files: RegexSet::empty(), lines: RegexSet::empty() })
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

    /// Does this content hold a credential that makes it a secret file?
    pub fn holds(&self, bytes: &[u8]) -> bool {
        self.compiled().files.is_match(bytes)
    }

    /// Does this content hold anything that looks like a credential, even a
    /// line-scoped one? Such content is never stored by us (content store,
    /// evidence), though its diff is shown with the line redacted.
    pub fn mentions(&self, bytes: &[u8]) -> bool {
        self.compiled().lines.is_match(bytes)
    }

    /// `text` with every line that holds a credential replaced by
    /// [`REDACTED`]; a diff's leading `+`, `-` or ` ` is kept.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let lines = &self.compiled().lines;
        if !lines.is_match(text.as_bytes()) {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            if lines.is_match(line.as_bytes()) {
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
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n",
            "-----BEGIN PRIVATE KEY-----\n",
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
            "$k = 'AKIAIOSFODNN7EXAMPLE';\n",
        ] {
            assert!(!s().holds(text.as_bytes()), "false secret: {text:?}");
        }
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
