//! Certificate verification by pinned node id, for both ends of a handshake.
//!
//! Trust comes from the [`TrustList`], not from a certificate authority: a peer is accepted when
//! the hash of the public key in its certificate is a trusted [`NodeId`] and (when dialling) the
//! one we expected. That the peer *holds* that key is proven by the handshake signature, which
//! we leave to rustls and webpki ([`verify_tls13_signature`]); nothing here skips it. Chains,
//! issuers, names and validity periods are not checked: for a pinned self-signed key they carry
//! no information.

use std::sync::{Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::tls::provider;
use super::{NetError, NodeId, TrustList};

/// Verifies one handshake: the peer's certificate must carry a trusted node id, and the
/// expected one if we dialled a particular node.
///
/// One verifier serves one connection, so the reason it refused a peer can be handed back to
/// whoever awaits that connection ([`PinnedVerifier::take_rejection`]) as a typed
/// [`NetError`]; rustls itself only carries an alert code.
#[derive(Debug)]
pub(super) struct PinnedVerifier {
    trust: TrustList,
    expected: Option<NodeId>,
    algorithms: WebPkiSupportedAlgorithms,
    rejection: Mutex<Option<NetError>>,
}

impl PinnedVerifier {
    /// A verifier for a server we dial, which must be `expected` (and trusted).
    pub(super) fn for_server(trust: TrustList, expected: NodeId) -> Self {
        Self::new(trust, Some(expected))
    }

    /// A verifier for clients dialling us, which must be trusted.
    pub(super) fn for_clients(trust: TrustList) -> Self {
        Self::new(trust, None)
    }

    fn new(trust: TrustList, expected: Option<NodeId>) -> Self {
        Self { trust, expected, algorithms: provider().signature_verification_algorithms, rejection: Mutex::new(None) }
    }

    /// Why this verifier refused the peer, if it did.
    pub(super) fn take_rejection(&self) -> Option<NetError> {
        self.rejection.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// The identity check shared by both directions.
    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<NodeId, rustls::Error> {
        let node = NodeId::from_certificate(end_entity).map_err(|e| {
            tracing::debug!(error = %e, "peer certificate is malformed");
            rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
        })?;
        let refusal = match self.expected {
            Some(expected) if expected != node => Some(NetError::UnexpectedPeer { expected, actual: node }),
            _ if !self.trust.contains(&node) => Some(NetError::UntrustedPeer { node }),
            _ => None,
        };
        match refusal {
            None => Ok(node),
            Some(refusal) => {
                tracing::warn!(%node, reason = %refusal, "refusing peer");
                *self.rejection.lock().unwrap_or_else(PoisonError::into_inner) = Some(refusal);
                // Sent to the peer as the alert `access_denied`.
                Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
            }
        }
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for PinnedVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No CA to hint at: any self-signed certificate may carry a trusted key.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Identity;

    #[test]
    fn trusted_expected_peer_passes() {
        let peer = Identity::generate().unwrap();
        let trust: TrustList = [peer.node_id()].into_iter().collect();
        let verifier = PinnedVerifier::for_server(trust.clone(), peer.node_id());
        assert_eq!(verifier.check(peer.certificate()), Ok(peer.node_id()));
        assert!(verifier.take_rejection().is_none());
        let verifier = PinnedVerifier::for_clients(trust);
        assert_eq!(verifier.check(peer.certificate()), Ok(peer.node_id()));
    }

    #[test]
    fn untrusted_peer_is_refused_with_a_reason() {
        let peer = Identity::generate().unwrap();
        let verifier = PinnedVerifier::for_clients(TrustList::new());
        assert_eq!(
            verifier.check(peer.certificate()),
            Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
        );
        assert!(matches!(
            verifier.take_rejection(),
            Some(NetError::UntrustedPeer { node }) if node == peer.node_id()
        ));
    }

    #[test]
    fn unexpected_peer_is_refused_even_if_trusted() {
        let expected = Identity::generate().unwrap();
        let other = Identity::generate().unwrap();
        let trust: TrustList = [expected.node_id(), other.node_id()].into_iter().collect();
        let verifier = PinnedVerifier::for_server(trust, expected.node_id());
        assert!(verifier.check(other.certificate()).is_err());
        assert!(matches!(
            verifier.take_rejection(),
            Some(NetError::UnexpectedPeer { expected: e, actual: a })
                if e == expected.node_id() && a == other.node_id()
        ));
    }

    #[test]
    fn garbage_certificate_is_bad_encoding() {
        let verifier = PinnedVerifier::for_clients(TrustList::new());
        assert_eq!(
            verifier.check(&CertificateDer::from(&b"\x30\x03\x02\x01\x00"[..])),
            Err(rustls::Error::InvalidCertificate(CertificateError::BadEncoding))
        );
    }
}
