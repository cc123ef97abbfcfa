//! The man pages in packaging/man/ are generated, and this test keeps them up to date:
//! spoofguard(8) from the clap definitions (`spoofguard::cli`, the same as `--help`), and
//! milter.toml(5) from docs/configuration.md. After changing either source, run
//! `SPOOFGUARD_BLESS=1 cargo test man_pages` and commit the rewritten pages.

use clap::CommandFactory;
use spoofguard::cli::Cli;
use std::path::{Path, PathBuf};

fn page_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging/man")
        .join(name)
}

/// Text for roff: backslashes escaped, hyphens as minus signs, and no line starting with a
/// control character.
fn escape(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// Inline Markdown: `code` in bold, **strong** in bold, the rest escaped.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let code = rest.find('`');
        let strong = rest.find("**");
        match (code, strong) {
            (Some(c), s) if s.is_none_or(|s| c < s) => {
                let Some(end) = rest[c + 1..].find('`') else {
                    out.push_str(&escape(rest));
                    break;
                };
                out.push_str(&escape(&rest[..c]));
                out.push_str(&format!("\\fB{}\\fR", escape(&rest[c + 1..c + 1 + end])));
                rest = &rest[c + 2 + end..];
            }
            (_, Some(s)) => {
                let Some(end) = rest[s + 2..].find("**") else {
                    out.push_str(&escape(rest));
                    break;
                };
                out.push_str(&escape(&rest[..s]));
                out.push_str(&format!("\\fB{}\\fR", escape(&rest[s + 2..s + 2 + end])));
                rest = &rest[s + 4 + end..];
            }
            _ => {
                out.push_str(&escape(rest));
                break;
            }
        }
    }
    // A line of roff must not start with a control character even after inline markup.
    if out.starts_with('.') || out.starts_with('\'') {
        out.insert_str(0, "\\&");
    }
    out
}

/// milter.toml(5) from the Markdown of docs/configuration.md: `#` is the title, `##` a
/// section, `###` a subsection; lists, tables and code blocks become indented or literal
/// blocks.
pub fn milter_toml_5(markdown: &str) -> String {
    let mut out = String::from(
        ".\\\" Generated from docs/configuration.md by tests/man.rs; do not edit.\n\
         .TH MILTER.TOML 5 \"\" \"spoofguard\" \"File Formats Manual\"\n\
         .SH NAME\nmilter.toml \\- configuration file of spoofguard(8)\n",
    );
    let mut in_code = false;
    let mut paragraph_open = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            if in_code {
                out.push_str(".fi\n.RE\n");
            } else {
                out.push_str(".PP\n.RS 4\n.nf\n");
            }
            in_code = !in_code;
            paragraph_open = false;
            continue;
        }
        if in_code {
            out.push_str(&format!("\\&{}\n", line.replace('\\', "\\e")));
            continue;
        }
        if let Some(h) = line.strip_prefix("### ") {
            out.push_str(&format!(".SS {}\n", quote(&inline(h))));
            paragraph_open = true;
        } else if let Some(h) = line.strip_prefix("## ") {
            out.push_str(&format!(".SH {}\n", quote(&inline(h))));
            paragraph_open = false;
        } else if line.starts_with("# ") {
            out.push_str(".SH DESCRIPTION\n");
            paragraph_open = false;
        } else if line.trim().is_empty() {
            paragraph_open = false;
        } else if let Some(item) = line.strip_prefix("- ") {
            out.push_str(&format!(".IP \\(bu 2\n{}\n", inline(item)));
            paragraph_open = true;
        } else if line.starts_with('|') {
            if line.contains("---") {
                continue;
            }
            let cells: Vec<String> = line
                .trim_matches('|')
                .split(" | ")
                .map(|c| inline(c.trim()))
                .collect();
            out.push_str(&format!(
                ".IP \"{}\" 4\n{}\n",
                cells[0],
                cells[1..].join(" \\- ")
            ));
            paragraph_open = true;
        } else {
            if !paragraph_open {
                out.push_str(".PP\n");
                paragraph_open = true;
            }
            out.push_str(&inline(line.trim_start()));
            out.push('\n');
        }
    }
    out.push_str(
        ".SH FILES\n.TP\n\\fI/etc/spoofguard/milter.toml\\fR\nThe configuration read by \
         \\fBspoofguard serve\\fR when no \\fB\\-\\-config\\fR is given.\n\
         .SH SEE ALSO\nspoofguard(8)\n",
    );
    out
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\\(dq"))
}

/// spoofguard(8) from the clap definitions, one section per subcommand, then the files,
/// signals and exit status.
pub fn spoofguard_8() -> String {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .source(format!("spoofguard {}", env!("CARGO_PKG_VERSION")))
        .manual("System Manager's Manual");
    let mut buf: Vec<u8> = Vec::new();
    buf.extend_from_slice(b".\\\" Generated from src/cli.rs by tests/man.rs; do not edit.\n");
    man.render_title(&mut buf).unwrap();
    man.render_name_section(&mut buf).unwrap();
    man.render_synopsis_section(&mut buf).unwrap();
    man.render_description_section(&mut buf).unwrap();
    // clap_mangen would point at spoofguard-serve(8) and so on, which do not exist: each
    // subcommand has its own section below instead.
    buf.extend_from_slice(b".SH COMMANDS\n");
    for sub in cmd.get_subcommands() {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        buf.extend_from_slice(
            format!(
                ".TP\n\\fB{}\\fR\n{}\n",
                escape(sub.get_name()),
                escape(&about)
            )
            .as_bytes(),
        );
    }
    for sub in cmd.get_subcommands() {
        let name = format!("spoofguard {}", sub.get_name());
        let sub_man = clap_mangen::Man::new(sub.clone().bin_name(name.clone()));
        let mut part: Vec<u8> = Vec::new();
        sub_man.render_synopsis_section(&mut part).unwrap();
        sub_man.render_options_section(&mut part).unwrap();
        let text = String::from_utf8(part).unwrap();
        let text = text
            .replacen(
                ".SH SYNOPSIS\n",
                &format!(".SH \"{}\"\n", name.to_uppercase()),
                1,
            )
            .replacen(
                ".SH OPTIONS\n",
                &format!(
                    ".PP\n{}\n",
                    escape(&sub.get_about().map(|a| a.to_string()).unwrap_or_default())
                ),
                1,
            );
        buf.extend_from_slice(text.as_bytes());
    }
    buf.extend_from_slice(
        br#".SH SIGNALS
.TP
\fBSIGHUP\fR
Re\-read the configuration file. A file with errors is refused and the running configuration stays in force; keys that need a restart log a warning.
.TP
\fBSIGTERM\fR, \fBSIGINT\fR
Stop accepting connections, let open ones finish their current command, remove the unix socket and exit 0.
.SH EXIT STATUS
0 on success; 1 for a configuration or usage error (\fBconfig\-check\fR prints every problem); 2 when \fBcheck\fR could not read a file, or \fBserve\fR failed at run time.
.SH FILES
.TP
\fI/etc/spoofguard/milter.toml\fR
The configuration, see milter.toml(5).
.TP
\fI/run/spoofguard/\fR
Runtime directory made by systemd, for a unix milter socket.
.SH SEE ALSO
milter.toml(5), postconf(5), systemd.service(5)
"#,
    );
    String::from_utf8(buf).unwrap()
}

fn check_or_bless(name: &str, generated: &str) {
    let path = page_path(name);
    if std::env::var_os("SPOOFGUARD_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date: run `SPOOFGUARD_BLESS=1 cargo test man_pages` and commit it",
        path.display()
    );
}

#[test]
fn man_pages_are_up_to_date() {
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    check_or_bless("milter.toml.5", &milter_toml_5(&docs));
    check_or_bless("spoofguard.8", &spoofguard_8());
}

#[test]
fn man_escape_keeps_roff_structure() {
    assert_eq!(inline("`a-b` and **c**"), "\\fBa\\-b\\fR and \\fBc\\fR");
    assert_eq!(inline(".dot"), "\\&.dot");
    assert_eq!(inline("`.x`"), "\\fB\\&.x\\fR");
    assert_eq!(escape("a\\b"), "a\\eb");
}
