//! rustls and quinn crypto configuration: TLS 1.3 on the ring provider, mutual
//! authentication by pinned node id, no session resumption.

use std::sync::{Arc, OnceLock};

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::crypto::CryptoProvider;
use rustls::sign::SingleCertAndKey;

use super::verify::PinnedVerifier;
use super::{Identity, NetError};

/// The one crypto provider of this crate: ring. Never the process default, so a dependency
/// that installs another provider cannot change what we use.
pub(super) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}

/// Server-side crypto for one incoming connection, checked by `verifier`.
///
/// Resumption is off on both sides: a resumed TLS 1.3 session skips certificate verification,
/// which would let a peer removed from the trust list back in.
pub(super) fn server_crypto(
    identity: &Identity,
    verifier: Arc<PinnedVerifier>,
    alpn: &[u8],
) -> Result<Arc<QuicServerConfig>, NetError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(identity.certified_key())));
    config.alpn_protocols = vec![alpn.to_vec()];
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(QuicServerConfig::try_from(config)?))
}

/// Client-side crypto for one outgoing connection, checked by `verifier`.
pub(super) fn client_crypto(
    identity: &Identity,
    verifier: Arc<PinnedVerifier>,
    alpn: &[u8],
) -> Result<Arc<QuicClientConfig>, NetError> {
    // `dangerous()` is rustls' name for "a custom verifier": ours checks the pinned node id and
    // delegates the signature checks to rustls, so nothing is skipped.
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(identity.certified_key())));
    config.alpn_protocols = vec![alpn.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    Ok(Arc::new(QuicClientConfig::try_from(config)?))
}
