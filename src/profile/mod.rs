//! Site profiles: YAML files naming what the code of a stack is, what to
//! ignore, what is always serious, what holds secrets and what to quarantine.
//!
//! Built-in profiles are the files under `profiles/` embedded at build time.
//! A file `NAME.yaml` in the `profiles/` folder beside the config file
//! (`/etc/sitewarden/profiles/` for the default config) overrides the
//! built-in of the same name or adds a new one. Everything in a profile is
//! validated while it is parsed, so an error names the file, line and column.

pub mod raw;

use std::path::{Path, PathBuf};

use crate::policy::PolicySpec;
pub use raw::{GlobText, RawProfile, RawQuarantineRule, RawRule};

/// The profiles compiled into the binary: (name, YAML source).
pub const BUILTIN: &[(&str, &str)] = &[
    ("wordpress", include_str!("../../profiles/wordpress.yaml")),
    ("drupal", include_str!("../../profiles/drupal.yaml")),
    ("joomla", include_str!("../../profiles/joomla.yaml")),
    ("magento", include_str!("../../profiles/magento.yaml")),
    ("laravel", include_str!("../../profiles/laravel.yaml")),
    ("static", include_str!("../../profiles/static.yaml")),
    ("generic-php", include_str!("../../profiles/generic-php.yaml")),
];

/// The profile a site gets when its config names none.
pub const DEFAULT_PROFILE: &str = "generic-php";

/// Where a profile was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Compiled into the binary.
    Builtin,
    /// A file in the profile folder (it overrides a built-in of the same name).
    File(PathBuf),
}

/// A parsed profile with its name, origin and source text.
#[derive(Debug)]
pub struct Profile {
    /// The name it was loaded by.
    pub name: String,
    /// Where it was read from.
    pub source: Source,
    /// The YAML source, as `sitewarden profiles NAME` prints it.
    pub text: String,
    /// The parsed profile.
    pub raw: RawProfile,
}

/// Profile names are file names: lower-case letters, digits, `-` and `_`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn builtin(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// True when `name` resolves to a profile (a file in `dir` or a built-in).
pub fn exists(name: &str, dir: &Path) -> bool {
    valid_name(name) && (dir.join(format!("{name}.yaml")).is_file() || builtin(name).is_some())
}

/// A profile that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A parse or validation error at a known place of a profile.
    #[error("{file}:{line}:{column}: {message}")]
    At {
        /// The profile file, or `<built-in profile NAME>`.
        file: String,
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
        /// What is wrong, on one line.
        message: String,
    },
    /// An error about the profile as a whole (unreadable, or a YAML error
    /// without a position).
    #[error("{file}: {message}")]
    File {
        /// The profile file.
        file: String,
        /// What is wrong, on one line.
        message: String,
    },
    /// A name that is not a profile name, or names no profile.
    #[error("{0}")]
    Name(String),
}

/// Loads profile `name`, preferring `dir/NAME.yaml` over the built-in.
pub fn load(name: &str, dir: &Path) -> Result<Profile, ProfileError> {
    if !valid_name(name) {
        return Err(ProfileError::Name(format!("invalid profile name '{name}' (letters a-z, digits, '-' and '_')")));
    }
    let file = dir.join(format!("{name}.yaml"));
    if file.is_file() {
        let text = std::fs::read_to_string(&file).map_err(|e| ProfileError::File {
            file: file.display().to_string(),
            message: format!("cannot read profile: {e}"),
        })?;
        let raw = parse(&text, &file.display().to_string())?;
        return Ok(Profile { name: name.into(), source: Source::File(file), text, raw });
    }
    match builtin(name) {
        Some(text) => {
            let raw = parse(text, &format!("<built-in profile {name}>"))?;
            Ok(Profile { name: name.into(), source: Source::Builtin, text: text.into(), raw })
        }
        None => Err(ProfileError::Name(format!(
            "unknown profile '{name}' (built-in: {}; or add {})",
            names().join(", "),
            file.display()
        ))),
    }
}

/// Names of the built-in profiles.
pub fn names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// Parses a profile's YAML, reporting errors at `origin:line:column`.
pub fn parse(text: &str, origin: &str) -> Result<RawProfile, ProfileError> {
    serde_yaml::from_str::<RawProfile>(text).map_err(|e| {
        let file = origin.to_string();
        match crate::util::yaml_error(&e) {
            (Some((line, column)), message) => ProfileError::At { file, line, column, message },
            (None, message) => ProfileError::File { file, message },
        }
    })
}

impl RawProfile {
    /// The policy lists of this profile, to which a site's own are added.
    pub fn spec(&self) -> PolicySpec {
        PolicySpec {
            restrict: raw::texts(&self.restrict),
            ignore: raw::texts(&self.ignore),
            always: raw::texts(&self.always),
            nodiff: raw::texts(&self.nodiff),
            secret_patterns: self.secret_patterns.iter().map(|p| p.0.clone()).collect(),
            rules: self.rules.iter().map(RawRule::spec).collect(),
            quarantine: self.quarantine.iter().map(RawQuarantineRule::spec).collect(),
            default_severity: self.default_severity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    #[test]
    fn every_builtin_profile_parses_and_compiles() {
        for (name, text) in BUILTIN {
            let raw = parse(text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!raw.description.is_empty(), "{name} has no description");
            Policy::compile(&raw.spec()).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
