//! Every SMTP reply spoofguard gives, in one table: the situation, the reply code, the
//! enhanced status code (RFC 3463) and the text. `evaluate` picks a row, the milter sends it,
//! `spoofguard check` prints it, and `docs/headers.md` lists the same rows (a test checks).

use serde::Serialize;

/// Why a message gets an SMTP error reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// Rejected by score; the text is `policy.reject_text: why`.
    PolicyReject,
    /// Rejected by the From domain's DMARC policy (RFC 9989, section 7.2); the text is
    /// `Rejected per DMARC policy for DOMAIN`.
    DmarcReject,
    /// A DNS lookup failed temporarily and `on_dns_error = "tempfail"`; the text is
    /// `policy.tempfail_text`.
    DnsTempfail,
    /// Over `max_message_bytes` (or a header limit), `oversize_action = "tempfail"`.
    OversizeTempfail,
    /// Over `max_message_bytes` (or a header limit), `oversize_action = "reject"`.
    OversizeReject,
    /// More forged authentication headers than we can remove.
    ForgedOverflow,
    /// The SMTP transaction took longer than `message_timeout_secs`.
    TransferTimeout,
    /// Verification took longer than `evaluation_timeout_secs`, `on_error = "tempfail"`.
    EvaluationTimeoutTempfail,
    /// Verification took longer than `evaluation_timeout_secs`, `on_error = "reject"`.
    EvaluationTimeoutReject,
}

/// One row of the table: reply code, enhanced status code, fixed text (empty when the text
/// comes from `[policy]`).
#[derive(Clone, Copy, Debug)]
pub struct ReplyRow {
    pub kind: ReplyKind,
    pub code: &'static str,
    pub status: &'static str,
    pub text: &'static str,
}

/// The table. A 4xx code goes with a temporary failure, a 5xx with a rejection.
pub const REPLIES: &[ReplyRow] = &[
    ReplyRow {
        kind: ReplyKind::PolicyReject,
        code: "550",
        status: "5.7.1",
        text: "",
    },
    ReplyRow {
        kind: ReplyKind::DmarcReject,
        code: "550",
        status: "5.7.1",
        text: "",
    },
    ReplyRow {
        kind: ReplyKind::DnsTempfail,
        code: "451",
        status: "4.4.3",
        text: "",
    },
    ReplyRow {
        kind: ReplyKind::OversizeTempfail,
        code: "452",
        status: "4.3.4",
        text: "Message too large to verify, try again later",
    },
    ReplyRow {
        kind: ReplyKind::OversizeReject,
        code: "552",
        status: "5.3.4",
        text: "Message too large to verify",
    },
    ReplyRow {
        kind: ReplyKind::ForgedOverflow,
        code: "550",
        status: "5.7.1",
        text: "Too many forged authentication headers",
    },
    ReplyRow {
        kind: ReplyKind::TransferTimeout,
        code: "451",
        status: "4.4.2",
        text: "Message transfer took too long, try again later",
    },
    ReplyRow {
        kind: ReplyKind::EvaluationTimeoutTempfail,
        code: "451",
        status: "4.4.3",
        text: "Sender verification timed out, try again later",
    },
    ReplyRow {
        kind: ReplyKind::EvaluationTimeoutReject,
        code: "550",
        status: "5.7.1",
        text: "Sender verification timed out",
    },
];

/// Longest reply text we send (the milter protocol allows lines of about 980 bytes).
const MAX_TEXT: usize = 900;

/// An SMTP reply: `code status text`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reply {
    pub kind: ReplyKind,
    pub code: &'static str,
    pub status: &'static str,
    pub text: String,
}

impl Reply {
    /// The reply for `kind`; `text` is used for the rows whose text comes from `[policy]`
    /// and is reduced to one line of printable ASCII.
    pub fn new(kind: ReplyKind, text: Option<&str>) -> Reply {
        let row = REPLIES
            .iter()
            .find(|r| r.kind == kind)
            .unwrap_or(&REPLIES[0]);
        let text = match text {
            Some(t) if row.text.is_empty() => super::one_line(t, MAX_TEXT),
            _ => row.text.to_owned(),
        };
        Reply {
            kind,
            code: row.code,
            status: row.status,
            text,
        }
    }

    /// Whether this is a temporary failure (4xx).
    pub fn is_temporary(&self) -> bool {
        self.code.starts_with('4')
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.code, self.status, self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_row_with_a_matching_class() {
        for row in REPLIES {
            assert_eq!(REPLIES.iter().filter(|r| r.kind == row.kind).count(), 1);
            assert_eq!(row.code[..1], row.status[..1], "{:?}", row.kind);
        }
    }

    #[test]
    fn policy_text_is_one_line() {
        let r = Reply::new(
            ReplyKind::PolicyReject,
            Some("Message rejected: a\r\nb\u{e9}"),
        );
        assert_eq!(r.to_string(), "550 5.7.1 Message rejected: a  b?");
        let r = Reply::new(ReplyKind::ForgedOverflow, Some("ignored"));
        assert_eq!(
            r.to_string(),
            "550 5.7.1 Too many forged authentication headers"
        );
    }

    /// docs/headers.md lists every fixed reply exactly as sent.
    #[test]
    fn docs_list_every_reply() {
        let docs = include_str!("../../docs/headers.md");
        for row in REPLIES.iter().filter(|r| !r.text.is_empty()) {
            let line = format!("{} {} {}", row.code, row.status, row.text);
            assert!(docs.contains(&line), "docs/headers.md lacks `{line}`");
        }
    }
}
