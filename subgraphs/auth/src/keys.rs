//! Ed25519 key material: the signing key (PKCS#8 PEM, or generated), and the
//! public keys with their key ids (RFC 7638 thumbprints) that tokens are checked with.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore;
use ring::{hkdf, hmac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// An Ed25519 public key with its key id (the RFC 7638 JWK thumbprint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationKey {
    kid: String,
    public: [u8; 32],
}

impl VerificationKey {
    fn new(public: [u8; 32]) -> Self {
        Self { kid: thumbprint(&public), public }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        let x = URL_SAFE_NO_PAD.encode(self.public);
        json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA", "use": "sig" })
    }

    pub fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_ed_der(&self.public)
    }
}

/// Reads one or more SPKI PEM public keys (`openssl pkey -in old.pem -pubout`),
/// concatenated: the previous keys whose tokens are still accepted.
pub fn public_keys_from_pem(text: &str) -> anyhow::Result<Vec<VerificationKey>> {
    const END: &str = "-----END PUBLIC KEY-----";
    let mut keys = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        anyhow::ensure!(rest.starts_with("-----BEGIN PUBLIC KEY-----"), "not a PEM public key (BEGIN PUBLIC KEY)");
        let end = rest.find(END).context("a PEM public key without its END line")? + END.len();
        let key = ed25519_dalek::VerifyingKey::from_public_key_pem(&rest[..end])
            .map_err(|_| anyhow::anyhow!("not an Ed25519 public key"))?;
        keys.push(VerificationKey::new(key.to_bytes()));
        rest = rest[end..].trim_start();
    }
    anyhow::ensure!(!keys.is_empty(), "no PEM public key");
    Ok(keys)
}

/// An Ed25519 signing key, with what is derived from it: its public key and
/// the key that derives refresh tokens' successors.
pub struct SigningKey {
    public: VerificationKey,
    encoding: EncodingKey,
    successors: hmac::Key,
}

impl SigningKey {
    /// Reads a PKCS#8 PEM private key (`openssl genpkey -algorithm ed25519`).
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map_err(|_| anyhow::anyhow!("not an Ed25519 PKCS#8 PEM private key"))?;
        Self::from_dalek(&key)
    }

    /// A fresh random key (tokens it signs die with the process).
    pub fn generate() -> anyhow::Result<Self> {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        Self::from_dalek(&ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    fn from_dalek(key: &ed25519_dalek::SigningKey) -> anyhow::Result<Self> {
        let der = key.to_pkcs8_der().map_err(|_| anyhow::anyhow!("encoding the signing key"))?;
        // A key of its own for successors (HKDF, a label of its own), so an
        // HMAC tag can never be mistaken for anything signed with the key.
        let prk =
            hkdf::Salt::new(hkdf::HKDF_SHA256, b"taskgraph-auth refresh token successors v1").extract(&key.to_bytes());
        let okm = prk.expand(&[], hmac::HMAC_SHA256).map_err(|_| anyhow::anyhow!("deriving the successor key"))?;
        Ok(Self {
            public: VerificationKey::new(key.verifying_key().to_bytes()),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            successors: hmac::Key::from(okm),
        })
    }

    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    pub(crate) fn public(&self) -> &VerificationKey {
        &self.public
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The key refresh tokens' successors are derived with.
    pub(crate) fn successors(&self) -> &hmac::Key {
        &self.successors
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order.
fn thumbprint(public: &[u8; 32]) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(public));
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::pkcs8::EncodePublicKey;

    use super::*;

    fn dalek(seed: u8) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
    }

    fn public_pem(seed: u8) -> String {
        dalek(seed).verifying_key().to_public_key_pem(Default::default()).unwrap()
    }

    #[test]
    fn previous_keys_are_read_from_concatenated_public_pems_only() {
        let two = format!("{}\n{}", public_pem(1), public_pem(2));
        assert_eq!(public_keys_from_pem(&two).unwrap().len(), 2);
        let private = dalek(1).to_pkcs8_pem(Default::default()).unwrap().to_string();
        for wrong in [private.as_str(), "", "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----", "junk"] {
            assert!(public_keys_from_pem(wrong).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn pem_keys_round_trip_with_a_stable_kid() {
        let pem = dalek(7).to_pkcs8_pem(Default::default()).unwrap();
        let a = SigningKey::from_pem(&pem).unwrap();
        let b = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert!(SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----").is_err());
    }
}
