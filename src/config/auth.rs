//! `--auth-file`: the clients admitted to the proxy when it is reachable beyond loopback.
//!
//! One client per line, `#` comments:
//! `NAME:sha256:<hex of sha256(SECRET)> team=TEAM user=USER`. A client sets
//! `HTTPS_PROXY=http://NAME:SECRET@host:port`; llmtap checks the secret against the hash
//! (constant time) and attributes the client's calls to the file's team and user. Secrets are
//! never stored in clear, logged or exported.

use std::{collections::HashMap, path::Path};

use super::ConfigError;
use crate::caller::{Attribution, basic_credentials};

#[derive(Clone)]
struct Entry {
    hash: [u8; 32],
    attribution: Attribution,
}

/// The admitted clients, by name.
#[derive(Clone, Default)]
pub struct AuthFile {
    entries: HashMap<String, Entry>,
}

impl std::fmt::Debug for AuthFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthFile")
            .field("clients", &self.entries.len())
            .finish()
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

impl AuthFile {
    /// Reads and parses the file at `path`. Errors name `--auth-file` and the path, with
    /// the line number of a bad line (never its content, which holds a hash).
    pub fn load(path: &Path) -> Result<AuthFile, ConfigError> {
        let flag = "--auth-file";
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(flag, format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|(line, why)| {
            ConfigError::new(flag, format!("{} line {line}: {why}", path.display()))
        })
    }

    /// Parses the file; errors give the line number and what is wrong (never the line).
    pub fn parse(text: &str) -> Result<AuthFile, (usize, String)> {
        let mut entries = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| (n + 1, why.to_owned());
            let mut words = line.split_whitespace();
            let credential = words.next().ok_or_else(|| bad("empty"))?;
            let (name, hash) = credential
                .split_once(':')
                .ok_or_else(|| bad("expected NAME:sha256:HEX"))?;
            let hex = hash
                .strip_prefix("sha256:")
                .ok_or_else(|| bad("the secret must be given as sha256:HEX"))?;
            // Checked as ASCII first: a multi-byte character must not reach the byte slicing
            // below (it would panic on a char boundary instead of naming the line).
            if name.is_empty() || hex.len() != 64 || !hex.is_ascii() {
                return Err(bad("expected a name and 64 hex digits of sha256"));
            }
            let mut digest = [0u8; 32];
            for (i, byte) in digest.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16)
                    .map_err(|_| bad("the hash is not hex"))?;
            }
            let mut attribution = Attribution::default();
            for word in words {
                match word.split_once('=') {
                    Some(("team", v)) if !v.is_empty() => attribution.team = Some(v.to_owned()),
                    Some(("user", v)) if !v.is_empty() => attribution.user = Some(v.to_owned()),
                    _ => return Err(bad("expected team=TEAM user=USER after the credential")),
                }
            }
            if entries
                .insert(
                    name.to_owned(),
                    Entry {
                        hash: digest,
                        attribution,
                    },
                )
                .is_some()
            {
                return Err(bad("this name is already listed"));
            }
        }
        if entries.is_empty() {
            return Err((0, "no client is listed".to_owned()));
        }
        Ok(AuthFile { entries })
    }

    /// The attribution of an admitted `Proxy-Authorization` value, or `None` (answer 407).
    ///
    /// The scheme is matched case-insensitively (RFC 9110 §11.1: "It uses a case-insensitive
    /// token to identify the authentication scheme"), so `basic` and `BASIC` are `Basic`;
    /// any run of spaces or tabs may separate it from the credentials.
    pub fn admit(&self, proxy_authorization: Option<&str>) -> Option<Attribution> {
        let (name, secret) = basic_credentials(proxy_authorization?)?;
        let entry = self.entries.get(&name)?;
        aws_lc_rs::constant_time::verify_slices_are_equal(&sha256(secret?.as_bytes()), &entry.hash)
            .ok()
            .map(|()| entry.attribution.clone())
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    const FILE: &str = "# clients\n\nagent-a:sha256:2e628df8dc20afee7b08e9538d45d457870dd7c1952964f4e7d0ed07ba4ef3ad team=team-a user=alice\n";

    fn basic(s: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }

    #[test]
    fn only_the_right_secret_is_admitted() {
        // sha256("the-secret")
        let file = AuthFile::parse(
            &FILE.replace(
                "2e628df8dc20afee7b08e9538d45d457870dd7c1952964f4e7d0ed07ba4ef3ad",
                &sha256(b"the-secret")
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
            ),
        )
        .expect("valid");
        let ok = file
            .admit(Some(&basic("agent-a:the-secret")))
            .expect("admitted");
        assert_eq!(
            (ok.team.as_deref(), ok.user.as_deref()),
            (Some("team-a"), Some("alice"))
        );
        for bad in [
            basic("agent-a:wrong"),
            basic("agent-b:the-secret"),
            basic("agent-a"),
            "Bearer x".into(),
        ] {
            assert!(file.admit(Some(&bad)).is_none(), "{bad}");
        }
        assert!(file.admit(None).is_none());
    }

    #[test]
    fn the_basic_scheme_is_case_insensitive_and_any_whitespace_follows_it() {
        let file = AuthFile::parse(
            &FILE.replace(
                "2e628df8dc20afee7b08e9538d45d457870dd7c1952964f4e7d0ed07ba4ef3ad",
                &sha256(b"the-secret")
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
            ),
        )
        .expect("valid");
        let encoded = base64::engine::general_purpose::STANDARD.encode("agent-a:the-secret");
        for scheme in ["Basic", "basic", "BASIC", "bAsIc"] {
            for gap in [" ", "   ", "\t", " \t "] {
                let value = format!("{scheme}{gap}{encoded}");
                assert!(file.admit(Some(&value)).is_some(), "{value:?}");
            }
        }
        for bad in [
            format!("Basic{encoded}"),
            format!("Basics {encoded}"),
            format!("Bearer {encoded}"),
            "Basic".to_owned(),
            "Basic ".to_owned(),
        ] {
            assert!(file.admit(Some(&bad)).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn errors_name_the_line_not_its_content() {
        for (text, line) in [
            ("a:plain-secret team=t", 1),
            ("# c\na:sha256:abc team=t", 2),
            (
                "a:sha256:2e628df8dc20afee7b08e9538d45d457870dd7c1952964f4e7d0ed07ba4ef3ad tema=t",
                1,
            ),
            ("", 0),
        ] {
            let (n, why) = AuthFile::parse(text).expect_err(text);
            assert_eq!(n, line, "{text}");
            assert!(!why.contains("plain-secret"));
        }
    }
}
