//! Logging setup and the level policy.
//!
//! - **error**: we cannot provide service (bind, reload, a milter action failed).
//! - **warn**: the MTA or the configuration misbehaves (missing action, oversized message).
//! - **info**: exactly one line per message with all verdicts, score and decision; start,
//!   stop and reload.
//! - **debug**: each step and each header added or removed.
//! - **trace**: protocol detail.
//!
//! Bodies and full header values are never logged at info.
//!
//! Context travels in spans, not in arguments: a `connection` span carries `client_ip` and
//! its `message` span `queue_id`. Both formats print span fields as if the event had them
//! (`message evaluated queue_id="4ABC" client_ip="192.0.2.10" from_domain=…`, or top-level
//! JSON keys), because the log fields are an interface (docs/operations.md).

use crate::config::{LogFormat, LogSettings};
use std::fmt::{self, Write as _};
use std::io::IsTerminal;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Installs the global subscriber on stderr. `RUST_LOG`, when set, overrides `[log] level`.
pub fn init(settings: &LogSettings) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_new(&settings.level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal: journald and log files get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let _ = match settings.format {
        LogFormat::Text => builder.event_format(FlatText).try_init(),
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .try_init(),
    };
}

/// Text lines: `TIME LEVEL message span-fields event-fields`, innermost span first.
pub struct FlatText;

impl<S, N> FormatEvent<S, N> for FlatText
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        SystemTime.format_time(&mut writer)?;
        write!(writer, " {:>5} ", event.metadata().level())?;
        let mut fields = TextFields::default();
        event.record(&mut fields);
        writer.write_str(&fields.message)?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                let ext = span.extensions();
                if let Some(f) = ext.get::<FormattedFields<N>>()
                    && !f.fields.is_empty()
                {
                    write!(writer, " {}", f.fields)?;
                }
            }
        }
        writer.write_str(&fields.rest)?;
        writeln!(writer)
    }
}

#[derive(Default)]
struct TextFields {
    message: String,
    rest: String,
}

impl Visit for TextFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

/// JSON lines: `timestamp`, `level`, `message`, then the fields of the event and of every
/// span it is in, all as top-level keys.
pub struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut time = String::new();
        SystemTime.format_time(&mut Writer::new(&mut time))?;
        let mut map = serde_json::Map::new();
        map.insert("timestamp".into(), time.into());
        map.insert(
            "level".into(),
            event.metadata().level().as_str().to_owned().into(),
        );
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(f) = ext.get::<FormattedFields<N>>()
                    && let Ok(serde_json::Value::Object(fields)) =
                        serde_json::from_str::<serde_json::Value>(&f.fields)
                {
                    map.extend(fields);
                }
            }
        }
        event.record(&mut JsonVisitor(&mut map));
        let line = serde_json::to_string(&map).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

struct JsonVisitor<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing::{info, info_span};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            self.0
                .lock()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        }
    }

    fn log_one_message() {
        let conn = info_span!("connection", client_ip = "192.0.2.10");
        let msg = info_span!(parent: &conn, "message", queue_id = tracing::field::Empty);
        msg.record("queue_id", "4ABC");
        let _in = msg.enter();
        info!(
            from_domain = "sender.example",
            score = 1.5,
            dry_run = false,
            "message evaluated"
        );
    }

    /// Span fields print where the explicit fields used to be, in the same order.
    #[test]
    fn text_lines_carry_span_fields_inline() {
        let buf = Buffer::default();
        let w = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .event_format(FlatText)
            .finish();
        tracing::subscriber::with_default(subscriber, log_one_message);
        let line = buf.text();
        let (_, rest) = line.split_once("  INFO ").unwrap_or_default();
        assert_eq!(
            rest,
            "message evaluated queue_id=\"4ABC\" client_ip=\"192.0.2.10\" \
             from_domain=\"sender.example\" score=1.5 dry_run=false\n"
        );
    }

    #[test]
    fn json_lines_carry_span_fields_as_keys() {
        let buf = Buffer::default();
        let w = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .finish();
        tracing::subscriber::with_default(subscriber, log_one_message);
        let v: serde_json::Value = serde_json::from_str(buf.text().trim()).unwrap_or_default();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "message evaluated");
        assert_eq!(v["queue_id"], "4ABC");
        assert_eq!(v["client_ip"], "192.0.2.10");
        assert_eq!(v["from_domain"], "sender.example");
        assert_eq!(v["score"], 1.5);
        assert_eq!(v["dry_run"], false);
        assert!(v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
}
