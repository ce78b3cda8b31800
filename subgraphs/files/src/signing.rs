//! Short-lived signed download URLs: browsers cannot add a bearer header to a
//! link. The signature is an HMAC-SHA256 over the file id, its owner's id and
//! the expiry, so a URL opens one file, of one owner, until one moment.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use uuid::Uuid;

#[derive(Clone)]
pub struct UrlSigner {
    key: hmac::Key,
    ttl: Duration,
    /// Put before the path (empty: the URL is a path on the API's origin).
    base: String,
}

impl UrlSigner {
    pub fn new(secret: &[u8], ttl: Duration, base: &str) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, secret), ttl, base: base.trim_end_matches('/').to_owned() }
    }

    /// A random 256-bit secret (no secret configured: URLs do not survive a restart).
    pub fn random_secret() -> [u8; 32] {
        rand_bytes()
    }

    /// The download URL of `file_id`, valid for the configured lifetime from `now` (Unix seconds).
    pub fn url(&self, file_id: Uuid, owner_id: Uuid, now: i64) -> String {
        let expires = now.saturating_add(self.ttl.as_secs() as i64);
        let signature = self.sign(file_id, owner_id, expires);
        format!("{}/files/{file_id}/content?expires={expires}&sig={signature}", self.base)
    }

    pub fn sign(&self, file_id: Uuid, owner_id: Uuid, expires: i64) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, message(file_id, owner_id, expires).as_bytes()).as_ref())
    }

    /// Whether `signature` is ours for these values and `expires` is not past `now`.
    pub fn verify(&self, file_id: Uuid, owner_id: Uuid, expires: i64, signature: &str, now: i64) -> bool {
        if expires < now {
            return false;
        }
        let Ok(tag) = URL_SAFE_NO_PAD.decode(signature) else { return false };
        // Constant-time comparison.
        hmac::verify(&self.key, message(file_id, owner_id, expires).as_bytes(), &tag).is_ok()
    }
}

fn message(file_id: Uuid, owner_id: Uuid, expires: i64) -> String {
    format!("files.download.v1:{file_id}:{owner_id}:{expires}")
}

fn rand_bytes() -> [u8; 32] {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).expect("the system random source works");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_verifies_for_its_file_owner_and_time_only() {
        let signer = UrlSigner::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(300), "");
        let (file, owner, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let sig = signer.sign(file, owner, 1_000);
        assert!(signer.verify(file, owner, 1_000, &sig, 999));
        assert!(signer.verify(file, owner, 1_000, &sig, 1_000));
        assert!(!signer.verify(file, owner, 1_000, &sig, 1_001), "expired");
        assert!(!signer.verify(file, other, 1_000, &sig, 999), "another owner");
        assert!(!signer.verify(other, owner, 1_000, &sig, 999), "another file");
        assert!(!signer.verify(file, owner, 2_000, &sig, 999), "a moved expiry");
        assert!(!signer.verify(file, owner, 1_000, "not base64!", 999));
        let url = signer.url(file, owner, 700);
        assert!(url.starts_with(&format!("/files/{file}/content?expires=1000&sig=")), "{url}");
    }
}
