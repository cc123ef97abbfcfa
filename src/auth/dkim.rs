//! DKIM (RFC 6376): every signature verified, each mapped to a [`DkimVerdict`] with a short
//! comment for Authentication-Results. ARC reuses [`map_dkim_result`] for its chain result.

use super::dns::Caches;
use super::verdict::{AuthResult, DkimVerdict};
use mail_auth::{
    AuthenticatedMessage, DkimOutput, DkimResult, Error as MaError, MessageAuthenticator,
    Parameters,
};

/// Verifies every DKIM-Signature. mail-auth's outputs come back too: DMARC needs them.
pub(super) async fn verify<'x>(
    auth: &MessageAuthenticator,
    caches: &'x Caches,
    message: &'x AuthenticatedMessage<'x>,
) -> (Vec<DkimOutput<'x>>, Vec<DkimVerdict>) {
    let dkim_out = auth
        .verify_dkim(Parameters::new(message).with_cache(caches))
        .await;
    let dkim: Vec<DkimVerdict> = dkim_out.iter().map(map_dkim).collect();
    (dkim_out, dkim)
}

pub(super) fn map_dkim_result(r: &DkimResult) -> (AuthResult, Option<String>) {
    match r {
        DkimResult::Pass => (AuthResult::Pass, None),
        // RFC 6376, section 3.7: a body hash that does not verify is a PERMFAIL, i.e. fail.
        DkimResult::Neutral(e @ MaError::Dkim(mail_auth::dkim::DkimError::BodyHashMismatch)) => {
            (AuthResult::Fail, Some(describe(e)))
        }
        DkimResult::Neutral(e) => (AuthResult::Neutral, Some(describe(e))),
        DkimResult::Fail(e) => (AuthResult::Fail, Some(describe(e))),
        DkimResult::PermError(e) => (AuthResult::PermError, Some(describe(e))),
        DkimResult::TempError(e) => (AuthResult::TempError, Some(describe(e))),
        DkimResult::None => (AuthResult::None, None),
    }
}

fn map_dkim(out: &DkimOutput<'_>) -> DkimVerdict {
    let (result, comment) = map_dkim_result(out.result());
    let sig = out.signature();
    DkimVerdict {
        result,
        domain: sig.map(|s| s.d.to_ascii_lowercase()).unwrap_or_default(),
        selector: sig.map(|s| s.s.clone()).unwrap_or_default(),
        algorithm: sig
            .map(|s| {
                match s.a {
                    mail_auth::crypto::Algorithm::RsaSha1 => "rsa-sha1",
                    mail_auth::crypto::Algorithm::RsaSha256 => "rsa-sha256",
                    mail_auth::crypto::Algorithm::Ed25519Sha256 => "ed25519-sha256",
                    mail_auth::crypto::Algorithm::MlDsa44 => "mldsa44",
                }
                .to_owned()
            })
            .unwrap_or_default(),
        b: sig.map(|s| base64_prefix(&s.b, 8)).unwrap_or_default(),
        comment,
    }
}

/// Short, fixed comment text for a verifier error (shown in Authentication-Results).
fn describe(e: &MaError) -> String {
    use mail_auth::dkim::DkimError;
    use mail_auth::{DnsError, crypto::CryptoError};
    match e {
        MaError::Dkim(DkimError::BodyHashMismatch) => "body hash mismatch",
        MaError::Dkim(DkimError::SignatureExpired) => "signature expired",
        MaError::Dkim(DkimError::PublicKeyRevoked) => "key revoked",
        MaError::Dkim(DkimError::BodyLengthTag) => "l= tag not accepted",
        MaError::Dkim(DkimError::AuidMismatch) => "i= not within d=",
        MaError::Dkim(_) => "unsupported signature",
        MaError::Crypto(CryptoError::FailedVerification) => "signature verification failed",
        MaError::Crypto(_) => "bad key or algorithm",
        MaError::Dns(DnsError::RecordNotFound(_)) => "no key for signature",
        MaError::Dns(DnsError::InvalidRecordType) => "invalid key record",
        MaError::Dns(DnsError::Resolver(_)) => "dns error",
        MaError::NotAligned => "not aligned",
        MaError::Parse | MaError::MissingParameters | MaError::Base64 => "malformed signature",
        _ => "verification error",
    }
    .to_owned()
}

/// Standard base64 (RFC 4648, section 4) with padding: DKIM's `b=` and `p=` encoding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The first `n` characters of the base64 encoding of `bytes`, without padding.
fn base64_prefix(bytes: &[u8], n: usize) -> String {
    let mut s = base64(&bytes[..bytes.len().min(n.div_ceil(4) * 3)]);
    s.truncate(s.trim_end_matches('=').len().min(n));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_prefix_matches_standard_encoding() {
        assert_eq!(base64_prefix(b"hello world!", 8), "aGVsbG8g");
        assert_eq!(base64_prefix(b"hi", 8), "aGk");
        assert_eq!(base64_prefix(&[0xff, 0xfe, 0xfd, 0xfc], 8), "//79/A");
        assert_eq!(base64(b"hi"), "aGk=");
        assert_eq!(base64(b"hello world!"), "aGVsbG8gd29ybGQh");
        assert_eq!(base64(b"a"), "YQ==");
    }
}
