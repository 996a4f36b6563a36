//! llmtap's certificate authority: the CA files on disk, and (in `ca::leaf`) the leaf
//! certificates minted from them for intercepted hosts.
//!
//! Owns: creating the CA directory (0700) with `ca.pem` + `ca-key.pem` (0600) on first run
//! and reusing them after; the combined root bundle (system roots + llmtap's CA) for runtimes
//! whose CA variable replaces the system roots. `ca::leaf` owns the ECDSA P-256 leaves with
//! a DNS or IP SAN, cached with a bound.
//! Does not own: deciding which hosts are intercepted (the handler does).
//!
//! Modes are given explicitly at creation and set again afterwards, never left to the umask:
//! whoever holds `ca-key.pem` can impersonate every host to every client that trusts the CA.
//! For the same reason an existing key readable or writable by others, or a directory others
//! can write to (they could swap the key), is refused unless the caller allows it.

mod leaf;

pub use leaf::{LeafAuthority, LeafError};

use std::{
    fs,
    io::Write as _,
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    sync::Arc,
};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

/// File name of the CA certificate (PEM, mode 0644) in the CA directory: what clients
/// trust (`NODE_EXTRA_CA_CERTS`, `llmtap ca path`, `/ca.pem` on the admin listener).
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA's private key (PKCS#8 PEM, ECDSA P-256, mode 0600) in the CA
/// directory. Whoever can read it can impersonate every host to every client that trusts
/// the CA.
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// System roots plus llmtap's CA, for SSL_CERT_FILE / REQUESTS_CA_BUNDLE / AWS_CA_BUNDLE /
/// CODEX_CA_CERTIFICATE.
pub const BUNDLE_FILE: &str = "bundle.pem";
/// Mode of the CA directory and of any parent llmtap creates for it.
const DIR_MODE: u32 = 0o700;
/// Mode of `ca-key.pem`: its owner only.
const KEY_MODE: u32 = 0o600;

/// Why the CA directory could not be loaded, created or written. Each variant names the
/// path it concerns; `config` reports it against `--ca-dir` (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The CA directory, or a missing parent of it, could not be created.
    #[error("cannot create {path}: {source}")]
    Create {
        /// The directory that could not be created.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file (key, certificate, bundle) could not be written, synced, chmodded or renamed
    /// into place.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file being written (its temporary `*.tmp` sibling may be left behind).
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file or directory could not be read or its mode could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The key or certificate does not parse, or the certificate cannot issue with the key
    /// (not a CA certificate, or not this key's).
    #[error("{path} is not a usable CA: {source}")]
    Invalid {
        /// The key or certificate file at fault.
        path: PathBuf,
        /// What rcgen found wrong.
        source: rcgen::Error,
    },
    /// A new CA's key or self-signed certificate could not be generated (first run).
    #[error("cannot generate a key: {0}")]
    Generate(rcgen::Error),
    /// `ca-key.pem` is readable or writable by group or others (`mode & 0o077`), and
    /// `--allow-insecure-key` was not given.
    #[error(
        "{path} has mode {mode:04o}: the CA key must not be readable or writable by other \
         users; run `chmod 600 {path}` (or pass --allow-insecure-key to use it anyway)"
    )]
    InsecureKey {
        /// The key file.
        path: PathBuf,
        /// Its permission bits (`mode & 0o7777`).
        mode: u32,
    },
    /// The CA directory is writable by group or others (`mode & 0o022`), who could swap
    /// the key, and `--allow-insecure-key` was not given.
    #[error(
        "{path} has mode {mode:04o}: other users could replace the CA in it; run \
         `chmod 700 {path}` (or pass --allow-insecure-key to use it anyway)"
    )]
    InsecureDir {
        /// The CA directory.
        path: PathBuf,
        /// Its permission bits (`mode & 0o7777`).
        mode: u32,
    },
}

/// The CA as loaded from (or created in) the CA directory.
#[derive(Clone)]
pub struct CaFiles {
    /// The CA directory (`--ca-dir`, default `~/.llmtap`), mode 0700 when llmtap made it.
    pub dir: PathBuf,
    /// `ca.pem` as read: the PEM served on `/ca.pem` and appended to the bundle.
    pub cert_pem: String,
    /// The same certificate in DER (to find it among system roots, and for tests).
    pub cert_der: CertificateDer<'static>,
    key_pem: Arc<String>,
    /// Why the files are insecure, when `--allow-insecure-key` loaded them anyway: to be
    /// logged once logging runs (loading happens before it starts).
    pub insecure: Vec<String>,
}

impl std::fmt::Debug for CaFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaFiles")
            .field("dir", &self.dir)
            .field("key", &"*****")
            .finish()
    }
}

impl CaFiles {
    /// `DIR/ca.pem`: the value of `NODE_EXTRA_CA_CERTS` and of `llmtap ca path`.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(CA_CERT_FILE)
    }

    /// `DIR/bundle.pem` (written by [`CaFiles::write_bundle`]): the value of
    /// `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `AWS_CA_BUNDLE` and `CODEX_CA_CERTIFICATE`.
    pub fn bundle_path(&self) -> PathBuf {
        self.dir.join(BUNDLE_FILE)
    }

    /// Loads the CA from `dir`, creating the directory (0700) and a new CA on first run.
    ///
    /// A directory that others can write to (`mode & 0o022`) or a key that others can read or
    /// write (`mode & 0o077`) is refused with [`CaError::InsecureDir`] /
    /// [`CaError::InsecureKey`], unless `allow_insecure_key` (`--allow-insecure-key`), which
    /// loads it with a warning. OpenSSH applies the same rule to private keys ("UNPROTECTED
    /// PRIVATE KEY FILE", `sshkey_perm_ok`).
    pub fn load_or_create(dir: &Path, allow_insecure_key: bool) -> Result<CaFiles, CaError> {
        create_private_dir(dir)?;
        let mut insecure = Vec::new();
        let mut allow = |err: CaError| {
            if allow_insecure_key {
                insecure.push(err.to_string());
                Ok(())
            } else {
                Err(err)
            }
        };
        let dir_mode = mode_of(dir)?;
        if dir_mode & 0o022 != 0 {
            allow(CaError::InsecureDir {
                path: dir.into(),
                mode: dir_mode,
            })?;
        }
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        if !(cert_path.exists() && key_path.exists()) {
            let (cert_pem, key_pem) = generate_ca()?;
            // Key first, never readable by others, so a crash cannot leave a cert without it.
            write_file(&key_path, key_pem.as_bytes(), KEY_MODE)?;
            write_file(&cert_path, cert_pem.as_bytes(), 0o644)?;
        }
        let key_mode = mode_of(&key_path)?;
        if key_mode & 0o077 != 0 {
            allow(CaError::InsecureKey {
                path: key_path.clone(),
                mode: key_mode,
            })?;
        }
        let read = |path: &Path| {
            fs::read_to_string(path).map_err(|source| CaError::Read {
                path: path.into(),
                source,
            })
        };
        let cert_pem = read(&cert_path)?;
        let key_pem = read(&key_path)?;
        let invalid = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CaError::Invalid { path, source }
        };
        let key = KeyPair::from_pem(&key_pem).map_err(invalid(&key_path))?;
        Issuer::from_ca_cert_pem(&cert_pem, key).map_err(invalid(&cert_path))?;
        let der = rustls_pemfile_der(&cert_pem).ok_or_else(|| CaError::Invalid {
            path: cert_path.clone(),
            source: rcgen::Error::CouldNotParseCertificate,
        })?;
        Ok(CaFiles {
            dir: dir.into(),
            cert_pem,
            cert_der: der,
            key_pem: Arc::new(key_pem),
            insecure,
        })
    }

    /// Writes `bundle.pem`: the given system roots (deduplicated) followed by llmtap's CA.
    pub fn write_bundle(&self, system_roots: &[CertificateDer<'_>]) -> Result<PathBuf, CaError> {
        let mut seen = std::collections::HashSet::new();
        let mut out = String::new();
        for der in system_roots
            .iter()
            .filter(|d| d.as_ref() != self.cert_der.as_ref())
        {
            if seen.insert(der.as_ref().to_vec()) {
                out.push_str(&pem::encode(&pem::Pem::new(
                    "CERTIFICATE",
                    der.as_ref().to_vec(),
                )));
            }
        }
        out.push_str("# llmtap local CA\n");
        out.push_str(&self.cert_pem);
        let path = self.bundle_path();
        write_file(&path, out.as_bytes(), 0o644)?;
        Ok(path)
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, rcgen::Error> {
        Issuer::from_ca_cert_pem(&self.cert_pem, KeyPair::from_pem(&self.key_pem)?)
    }
}

fn rustls_pemfile_der(pem_text: &str) -> Option<CertificateDer<'static>> {
    let parsed = pem::parse(pem_text).ok()?;
    (parsed.tag() == "CERTIFICATE").then(|| CertificateDer::from(parsed.into_contents()))
}

/// Creates `dir` and any missing parent, each 0700 whatever the umask (a parent that others
/// can write to would let them rename the CA directory away). An existing `dir` is left as
/// it is: its mode is checked, not changed.
fn create_private_dir(dir: &Path) -> Result<(), CaError> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .collect();
    for path in missing.into_iter().rev() {
        let err = |source| CaError::Create {
            path: path.into(),
            source,
        };
        match fs::DirBuilder::new().mode(DIR_MODE).create(path) {
            // The umask can only remove bits; set the mode again in case it removed the owner's.
            Ok(()) => {
                fs::set_permissions(path, fs::Permissions::from_mode(DIR_MODE)).map_err(err)?
            }
            // Another llmtap made it meanwhile; its mode is checked like any existing one.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(e)),
        }
    }
    Ok(())
}

/// The permission bits of `path` (symlinks followed: the file that is read is checked).
fn mode_of(path: &Path) -> Result<u32, CaError> {
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .map_err(|source| CaError::Read {
            path: path.into(),
            source,
        })
}

/// Writes atomically (temp file + rename) with the given mode set at creation.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let err = |source| CaError::Write {
        path: path.into(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    // aws-lc's RNG; a failure here would mean the OS has no entropy, which rustls also needs.
    let _ = rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes);
    bytes[0] &= 0x7f; // positive, as RFC 5280 requires
    SerialNumber::from(bytes.to_vec())
}

fn generate_ca() -> Result<(String, String), CaError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(CaError::Generate)?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "llmtap local CA");
    dn.push(DnType::OrganizationName, "llmtap");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.serial_number = Some(random_serial());
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(3650);
    let cert = p.self_signed(&key).map_err(CaError::Generate)?;
    Ok((cert.pem(), key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_created_once_with_a_private_key_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = CaFiles::load_or_create(dir.path(), false).expect("create");
        let mode = fs::metadata(dir.path().join(CA_KEY_FILE))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = CaFiles::load_or_create(dir.path(), false).expect("reuse");
        assert_eq!(first.cert_pem, second.cert_pem);
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    // The umask is process-wide and tests run on threads: a test that changed it made the
    // temporary directories of the tests beside it 0777 (`ca_is_created_once_…` then failed
    // on `InsecureDir`). Modes under `umask 000` are tested on the binary, in a process of
    // its own: `ca_directory_and_key_are_private_whatever_the_umask` (tests/regression.rs).

    #[test]
    fn a_key_or_directory_others_can_reach_is_refused_unless_allowed() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("ca");
        let first = CaFiles::load_or_create(&dir, false).expect("create");
        let key = dir.join(CA_KEY_FILE);
        for insecure in [0o644, 0o640, 0o604, 0o620, 0o666] {
            chmod(&key, insecure);
            let err = CaFiles::load_or_create(&dir, false).expect_err("insecure key");
            assert!(
                matches!(err, CaError::InsecureKey { mode, .. } if mode == insecure),
                "{err}"
            );
            let message = err.to_string();
            for part in [
                key.display().to_string(),
                format!("{insecure:04o}"),
                format!("chmod 600 {}", key.display()),
            ] {
                assert!(message.contains(&part), "{message} lacks {part}");
            }
            let allowed = CaFiles::load_or_create(&dir, true).expect("allowed");
            assert_eq!(
                allowed.cert_pem, first.cert_pem,
                "the same CA, not a new one"
            );
        }
        chmod(&key, 0o400);
        CaFiles::load_or_create(&dir, false).expect("owner-only key");
        chmod(&key, 0o600);
        for insecure in [0o777, 0o720, 0o702, 0o1777] {
            chmod(&dir, insecure);
            let err = CaFiles::load_or_create(&dir, false).expect_err("writable dir");
            assert!(
                matches!(err, CaError::InsecureDir { mode, .. } if mode == insecure),
                "{err}"
            );
            assert!(
                err.to_string()
                    .contains(&format!("chmod 700 {}", dir.display())),
                "{err}"
            );
            CaFiles::load_or_create(&dir, true).expect("allowed");
        }
        // Others may list the directory (ca.pem is public); they may not write to it.
        chmod(&dir, 0o755);
        CaFiles::load_or_create(&dir, false).expect("readable directory");
    }
}
