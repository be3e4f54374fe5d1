//! Node identity: a key pair and a self-signed certificate, kept in the data directory.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::PublicKeyData;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use super::{NetError, NodeId};

/// File name of the private key (PKCS#8 PEM, mode 0600) inside the data directory.
///
/// ```
/// use std::os::unix::fs::PermissionsExt;
/// use gossamer_sync::net::{Identity, KEY_FILE};
///
/// let dir = tempfile::tempdir()?;
/// Identity::load_or_generate(dir.path())?;
/// let key = dir.path().join(KEY_FILE);
/// assert_eq!(std::fs::metadata(&key)?.permissions().mode() & 0o777, 0o600);
/// assert!(std::fs::read_to_string(&key)?.starts_with("-----BEGIN PRIVATE KEY-----"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const KEY_FILE: &str = "identity.key";

/// File name of the self-signed certificate (PEM) inside the data directory.
///
/// ```
/// use gossamer_sync::net::{Identity, CERT_FILE};
///
/// let dir = tempfile::tempdir()?;
/// let identity = Identity::load_or_generate(dir.path())?;
/// let cert = dir.path().join(CERT_FILE);
/// assert!(std::fs::read_to_string(&cert)?.starts_with("-----BEGIN CERTIFICATE-----"));
/// // The certificate can be regenerated from the key: the node id does not change.
/// std::fs::remove_file(&cert)?;
/// assert_eq!(Identity::load(dir.path())?.node_id(), identity.node_id());
/// assert!(cert.is_file());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const CERT_FILE: &str = "identity.crt";

/// Who this node is: an ECDSA P-256 key pair and a self-signed certificate for it.
///
/// The certificate carries no authority: peers trust this node because they pinned its
/// [`NodeId`] (the hash of the public key), not because anyone signed it. It exists because TLS
/// sends keys inside certificates.
///
/// Persist it with [`load_or_generate`](Self::load_or_generate): a node must keep its identity
/// across restarts, or its peers will no longer recognise it (and its replica id would change,
/// which is only allowed when its replicated state is lost too).
///
/// Cloning is cheap and shares the key. `Debug` never prints the key.
///
/// ```
/// use gossamer_sync::net::Identity;
///
/// let dir = tempfile::tempdir()?;
/// let identity = Identity::load_or_generate(dir.path())?;
/// let again = Identity::load_or_generate(dir.path())?;
/// assert_eq!(identity.node_id(), again.node_id());
/// assert_ne!(identity.node_id(), Identity::generate()?.node_id());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Identity {
    node_id: NodeId,
    certified: Arc<CertifiedKey>,
}

impl Identity {
    /// A fresh identity, in memory only (tests, simulations, throw-away nodes).
    ///
    /// ```
    /// use gossamer_sync::net::{Identity, NodeId};
    ///
    /// let a = Identity::generate()?;
    /// let b = Identity::generate()?;
    /// assert_ne!(a.node_id(), b.node_id()); // a new key each time
    /// assert_eq!(NodeId::from_certificate(a.certificate())?, a.node_id());
    /// # Ok::<(), gossamer_sync::net::NetError>(())
    /// ```
    pub fn generate() -> Result<Self, NetError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = self_signed(&key)?;
        Self::from_key_pair(&key, cert.der().clone())
    }

    /// The identity stored in `dir`, created (with the directory, mode 0700) if there is none.
    ///
    /// The private key is written to [`KEY_FILE`] with mode 0600 before it is used, via a
    /// temporary file and a rename, so a crash never leaves a half-written key. If the
    /// certificate file is missing it is regenerated from the key (the node id is unchanged);
    /// a certificate that does not match the key is an error ([`NetError::IdentityMismatch`]),
    /// not something to repair silently. Only one process may use a data directory at a time.
    ///
    /// ```
    /// use gossamer_sync::net::{Identity, NetError, CERT_FILE, KEY_FILE};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let data = dir.path().join("node"); // created with the identity
    /// let first = Identity::load_or_generate(&data)?;
    /// assert!(data.join(KEY_FILE).is_file() && data.join(CERT_FILE).is_file());
    /// assert_eq!(Identity::load_or_generate(&data)?.node_id(), first.node_id());
    ///
    /// // Another node's certificate next to this key is an error, not something to repair.
    /// let other = dir.path().join("other");
    /// Identity::load_or_generate(&other)?;
    /// std::fs::copy(other.join(CERT_FILE), data.join(CERT_FILE))?;
    /// assert!(matches!(Identity::load_or_generate(&data), Err(NetError::IdentityMismatch { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_or_generate(dir: impl AsRef<Path>) -> Result<Self, NetError> {
        let dir = dir.as_ref();
        let key_path = dir.join(KEY_FILE);
        match fs::read_to_string(&key_path) {
            Ok(pem) => Self::load_with_key(dir, &key_path, &pem),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::create(dir),
            Err(source) => Err(NetError::IdentityIo { path: key_path, source }),
        }
    }

    /// The identity stored in `dir`; an error if there is none.
    ///
    /// ```
    /// use gossamer_sync::net::{Identity, NetError};
    ///
    /// let dir = tempfile::tempdir()?;
    /// assert!(matches!(Identity::load(dir.path()), Err(NetError::IdentityIo { .. })));
    /// let created = Identity::load_or_generate(dir.path())?;
    /// assert_eq!(Identity::load(dir.path())?.node_id(), created.node_id());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, NetError> {
        let dir = dir.as_ref();
        let key_path = dir.join(KEY_FILE);
        let pem =
            fs::read_to_string(&key_path).map_err(|source| NetError::IdentityIo { path: key_path.clone(), source })?;
        Self::load_with_key(dir, &key_path, &pem)
    }

    /// This node's id.
    ///
    /// ```
    /// use gossamer_sync::net::{Identity, NodeId};
    ///
    /// let identity = Identity::generate()?;
    /// // The id is the hash of the key that peers see in the certificate.
    /// assert_eq!(identity.node_id(), NodeId::from_certificate(identity.certificate())?);
    /// assert_eq!(identity.node_id().to_string().len(), NodeId::TEXT_LEN);
    /// # Ok::<(), gossamer_sync::net::NetError>(())
    /// ```
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The self-signed certificate (DER) presented in handshakes.
    ///
    /// ```
    /// use gossamer_sync::net::{Identity, NodeId};
    ///
    /// let identity = Identity::generate()?;
    /// let der = identity.certificate();
    /// assert_eq!(der[0], 0x30); // a DER SEQUENCE: an X.509 certificate
    /// assert_eq!(NodeId::from_certificate(der)?, identity.node_id());
    /// // Cloning shares the key and certificate.
    /// assert_eq!(identity.clone().certificate(), der);
    /// # Ok::<(), gossamer_sync::net::NetError>(())
    /// ```
    pub fn certificate(&self) -> &CertificateDer<'static> {
        // `from_key_pair` always builds a chain of exactly one certificate.
        &self.certified.cert[0]
    }

    /// The certificate and signing key in the form rustls uses.
    pub(super) fn certified_key(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.certified)
    }

    fn create(dir: &Path) -> Result<Self, NetError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| NetError::IdentityIo { path: dir.to_path_buf(), source })?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        write_atomically(&dir.join(KEY_FILE), key.serialize_pem().as_bytes(), 0o600)?;
        let cert = self_signed(&key)?;
        write_atomically(&dir.join(CERT_FILE), cert.pem().as_bytes(), 0o644)?;
        let identity = Self::from_key_pair(&key, cert.der().clone())?;
        tracing::info!(node = %identity.node_id, dir = %dir.display(), "generated node identity");
        Ok(identity)
    }

    fn load_with_key(dir: &Path, key_path: &Path, pem: &str) -> Result<Self, NetError> {
        warn_if_readable_by_others(key_path);
        let key = KeyPair::from_pem(pem)
            .map_err(|e| NetError::IdentityMalformed { path: key_path.to_path_buf(), reason: e.to_string() })?;
        let cert_path = dir.join(CERT_FILE);
        let cert = match fs::read(&cert_path) {
            Ok(bytes) => CertificateDer::from_pem_slice(&bytes)
                .map_err(|e| NetError::IdentityMalformed { path: cert_path.clone(), reason: e.to_string() })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::warn!(path = %cert_path.display(), "certificate missing; regenerating it from the key");
                let cert = self_signed(&key)?;
                write_atomically(&cert_path, cert.pem().as_bytes(), 0o644)?;
                cert.der().clone()
            }
            Err(source) => {
                return Err(NetError::IdentityIo { path: cert_path, source });
            }
        };
        let identity = Self::from_key_pair(&key, cert).map_err(|e| match e {
            NetError::IdentityMismatch { .. } => {
                NetError::IdentityMismatch { cert_path: cert_path.clone(), key_path: key_path.to_path_buf() }
            }
            other => other,
        })?;
        tracing::debug!(node = %identity.node_id, "loaded node identity");
        Ok(identity)
    }

    /// Builds the identity for `key` and `cert`, which must hold `key`'s public key.
    fn from_key_pair(key: &KeyPair, cert: CertificateDer<'static>) -> Result<Self, NetError> {
        let node_id = NodeId::from_public_key_der(&key.subject_public_key_info());
        // The id is defined by the key inside the certificate, since that is what peers see.
        if NodeId::from_certificate(&cert)? != node_id {
            return Err(NetError::IdentityMismatch { cert_path: PathBuf::new(), key_path: PathBuf::new() });
        }
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing_key = rustls::crypto::ring::default_provider().key_provider.load_private_key(der)?;
        let certified = CertifiedKey::new(vec![cert], signing_key);
        Ok(Self { node_id, certified: Arc::new(certified) })
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

/// A self-signed certificate for `key`, named after the node so `openssl x509 -text` tells
/// what it is. Validity is rcgen's default (1975–4096): pinned keys do not expire.
fn self_signed(key: &KeyPair) -> Result<rcgen::Certificate, NetError> {
    let node_id = NodeId::from_public_key_der(&key.subject_public_key_info());
    let mut params = CertificateParams::new(vec![node_id.to_string()])?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, format!("gossamer node {node_id}"));
    params.distinguished_name = name;
    Ok(params.self_signed(key)?)
}

/// Writes `contents` to `path` via a fresh temporary file created with `mode`, synced, then
/// renamed over `path`: readers see the old file or the whole new one, never a prefix, and the
/// key is never readable by others, not even briefly.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), NetError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| NetError::IdentityIo { path, source }
    };
    let tmp = {
        let mut name = path.as_os_str().to_owned();
        name.push(".tmp");
        PathBuf::from(name)
    };
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&tmp)(e)),
    }
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).map_err(io_err(&tmp))?;
    // `mode` is filtered by the umask at creation; set it exactly.
    file.set_permissions(fs::Permissions::from_mode(mode)).map_err(io_err(&tmp))?;
    file.write_all(contents).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
    }
    Ok(())
}

fn warn_if_readable_by_others(key_path: &Path) {
    if let Ok(meta) = fs::metadata(key_path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %key_path.display(),
                mode = format_args!("{mode:o}"),
                "private key is accessible to other users; run chmod 600 on it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_is_the_hash_of_the_certificate_key() {
        let identity = Identity::generate().unwrap();
        assert_eq!(NodeId::from_certificate(identity.certificate()).unwrap(), identity.node_id());
        assert!(format!("{identity:?}").contains(&format!("{:?}", identity.node_id())));
    }
}
