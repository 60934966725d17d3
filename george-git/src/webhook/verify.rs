//! Shared-secret checks (constant time) and payload decoding for the webhook senders.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A webhook shared secret (GitHub's signing secret or GitLab's token).
///
/// Its `Debug` output is redacted, so a config can be logged; the bytes are only
/// reachable through the checks below.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// Wraps the secret's bytes (used as they are: no trimming, no decoding). A UTF-8
    /// secret is added to
    /// [`KnownSecrets::global`](george_core::secret::KnownSecrets::global), so that the
    /// engine redacts it from what it stores.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        let bytes = secret.into();
        if let Ok(text) = std::str::from_utf8(&bytes) {
            george_core::secret::KnownSecrets::global().add(text);
        }
        WebhookSecret(bytes)
    }

    /// Whether the secret is empty (an empty secret is refused by
    /// [`router`](super::router)).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The GitHub signature header value for `body`: `sha256=<64 lowercase hex digits>`,
    /// i.e. HMAC-SHA256 keyed with the secret over the raw body, as GitHub sends it in
    /// `X-Hub-Signature-256`. For senders, tests and the example's `curl` line.
    pub fn github_signature(&self, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(body);
        let tag = mac.finalize().into_bytes();
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256=");
        for b in tag.iter() {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }

    /// Whether `header` (the `X-Hub-Signature-256` value, `sha256=<hex>`, hex in either
    /// case) is the HMAC-SHA256 of `body` under this secret. The tag comparison is in
    /// constant time (`hmac`'s `verify_slice`).
    pub(crate) fn verify_github(&self, header: &[u8], body: &[u8]) -> bool {
        let Some(hex) = header.trim_ascii().strip_prefix(b"sha256=") else {
            return false;
        };
        let Some(tag) = decode_hex(hex) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_slice(&tag).is_ok()
    }

    /// Whether `token` (the `X-Gitlab-Token` value) equals the secret, in constant time
    /// whatever the lengths: both go through HMAC-SHA256 keyed with the secret, and the
    /// two tags are compared with `verify_slice`.
    pub(crate) fn verify_token(&self, token: &[u8]) -> bool {
        let mut expected = self.mac();
        expected.update(&self.0);
        let expected = expected.finalize().into_bytes();
        let mut got = self.mac();
        got.update(token);
        got.verify_slice(&expected).is_ok()
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl From<&str> for WebhookSecret {
    fn from(s: &str) -> Self {
        WebhookSecret::new(s.as_bytes())
    }
}

impl From<String> for WebhookSecret {
    fn from(s: String) -> Self {
        WebhookSecret::new(s.into_bytes())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex digits (either case); `None` on an odd length or a non-hex byte.
fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.chunks_exact(2)
        .map(|p| Some(hex_value(p[0])? << 4 | hex_value(p[1])?))
        .collect()
}

/// The JSON document of a GitHub delivery whose content type is
/// `application/x-www-form-urlencoded`: the value of its `payload` field,
/// percent-decoded (`+` is a space). `None` when there is no such field or its
/// encoding is broken.
pub(crate) fn form_payload(body: &[u8]) -> Option<Vec<u8>> {
    let value = body
        .split(|&b| b == b'&')
        .find_map(|pair| pair.strip_prefix(b"payload="))?;
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = hex_value(*value.get(i + 1)?)?;
                let lo = hex_value(*value.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_registered_for_redaction() {
        let _ = WebhookSecret::from("whsec-registered-0123");
        let redacted =
            george_core::secret::KnownSecrets::global().redact("x whsec-registered-0123");
        assert_eq!(redacted, format!("x {}", george_core::secret::REDACTED));
    }

    #[test]
    fn github_signature_matches_githubs_documented_example() {
        // From "Validating webhook deliveries" (docs.github.com): secret
        // "It's a Secret to Everybody", payload "Hello, World!".
        let s = WebhookSecret::from("It's a Secret to Everybody");
        let sig = s.github_signature(b"Hello, World!");
        assert_eq!(
            sig,
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert!(s.verify_github(sig.as_bytes(), b"Hello, World!"));
        assert!(s.verify_github(
            sig.to_uppercase().replace("SHA256", "sha256").as_bytes(),
            b"Hello, World!"
        ));
        assert!(!s.verify_github(sig.as_bytes(), b"Hello, World?"));
        assert!(!s.verify_github(&sig.as_bytes()[..70], b"Hello, World!"));
        assert!(!s.verify_github(b"sha1=757107ea", b"Hello, World!"));
        assert!(!s.verify_github(b"sha256=zz", b"Hello, World!"));
        assert!(!WebhookSecret::from("other").verify_github(sig.as_bytes(), b"Hello, World!"));
    }

    #[test]
    fn token_compare() {
        let s = WebhookSecret::from("tok-123");
        assert!(s.verify_token(b"tok-123"));
        assert!(!s.verify_token(b"tok-124"));
        assert!(!s.verify_token(b"tok-12"));
        assert!(!s.verify_token(b""));
        assert_eq!(format!("{s:?}"), "WebhookSecret(<redacted>)");
    }

    #[test]
    fn form_payload_decodes() {
        assert_eq!(
            form_payload(b"payload=%7B%22ref%22%3A+%22x%22%7D").as_deref(),
            Some(&b"{\"ref\": \"x\"}"[..])
        );
        assert_eq!(form_payload(b"other=1"), None);
        assert_eq!(form_payload(b"payload=%7"), None);
    }
}
