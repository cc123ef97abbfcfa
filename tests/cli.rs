//! The `spoofguard` binary as a user runs it: `config-check`, `check --zone`, `domain`.

use crate::common::*;
use std::process::Command;

fn spoofguard(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spoofguard"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sample_milter_toml_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/milter.toml");
    let (code, out, _) = spoofguard(&["config-check", "--config", path]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with(&format!("{path}: ok (listen inet:127.0.0.1:8891")),
        "{out}"
    );
}

#[test]
fn config_check_prints_every_error_with_its_key() {
    for entry in std::fs::read_dir(fixture("config/invalid")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no # expect: line",
            path.display()
        );
        let (code, out, _) = spoofguard(&["config-check", "--config", path.to_str().unwrap()]);
        assert_eq!(code, 1, "{}", path.display());
        for e in expected {
            assert!(
                out.lines().any(|l| l == format!("{}: {e}", path.display())),
                "{}: missing {e:?} in\n{out}",
                path.display()
            );
        }
    }
    for entry in std::fs::read_dir(fixture("config/valid")).unwrap() {
        let path = entry.unwrap().path();
        let (code, out, _) = spoofguard(&["config-check", "--config", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{}: {out}", path.display());
    }
}

#[test]
fn config_check_reports_a_missing_file() {
    let (code, out, _) = spoofguard(&["config-check", "--config", "/nonexistent/milter.toml"]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "/nonexistent/milter.toml: cannot read: No such file or directory (os error 2)\n"
    );
}

#[test]
fn check_with_zone_gives_json_verdicts() {
    let dir = std::env::temp_dir().join(format!("sg-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let zone = dir.join("test.zone");
    std::fs::write(&zone, zone_text()).unwrap();
    let signed = dir.join("signed.eml");
    // Written with LF endings, as .eml files usually are.
    std::fs::write(
        &signed,
        sign(&eml("plain.eml"), "sender.example", "ed", true).replace("\r\n", "\n"),
    )
    .unwrap();
    let spoof = dir.join("spoof.eml");
    std::fs::write(&spoof, eml("plain.eml")).unwrap();
    let cfg = dir.join("milter.toml");
    std::fs::write(&cfg, format!("[milter]\nauthserv_id = \"{AUTHSERV_ID}\"\n")).unwrap();
    let (code, out, err) = spoofguard(&[
        "check",
        "--config",
        cfg.to_str().unwrap(),
        "--zone",
        zone.to_str().unwrap(),
        "--ip",
        "192.0.2.10",
        "--helo",
        "mail.sender.example",
        "--format",
        "json",
        signed.to_str().unwrap(),
        spoof.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["file"], signed.to_str().unwrap());
    assert_eq!(lines[0]["spf"], "pass");
    assert_eq!(lines[0]["dkim"], "pass");
    assert_eq!(lines[0]["dmarc"], "pass");
    assert_eq!(lines[0]["arc"], "none");
    assert_eq!(lines[0]["verdict"], "accept");
    assert_eq!(lines[0]["score"], 0.0);
    assert_eq!(lines[0]["reasons"], serde_json::json!([]));
    assert!(lines[0]["authentication_results"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{AUTHSERV_ID}; spf=pass smtp.mailfrom=alice@sender.example; dkim=pass header.d=sender.example header.s=ed")));
    // The unsigned copy from the same IP passes SPF, so DMARC passes through SPF.
    assert_eq!(lines[1]["dkim"], "none");
    assert_eq!(lines[1]["dmarc"], "pass");
    // From another IP it is a spoof of a p=reject domain.
    let (_, out, _) = spoofguard(&[
        "check",
        "--config",
        cfg.to_str().unwrap(),
        "--zone",
        zone.to_str().unwrap(),
        "--ip",
        "198.51.100.66",
        "--format",
        "json",
        spoof.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["dmarc"], "fail");
    assert_eq!(v["verdict"], "reject");
    assert_eq!(v["why"], "DMARC policy of sender.example is reject");
    assert_eq!(
        v["reasons"],
        serde_json::json!([
            {"code": "DMARC_FAIL", "detail": "sender.example p=reject", "weight": 4.0},
            {"code": "SPF_FAIL", "detail": "sender.example", "weight": 1.0}
        ])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_reports_unreadable_files_and_bad_zones() {
    let (code, _, err) = spoofguard(&["check", "--zone", "/nonexistent.zone", "x.eml"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent.zone: cannot read"), "{err}");
}

/// The sample with every commented `key = value` line and table header uncommented.
fn uncommented_sample() -> String {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/milter.toml")).unwrap();
    text.lines()
        .map(|l| {
            let body = l.strip_prefix('#').unwrap_or("");
            let is_key = body.split_once(" = ").is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if is_key || body.starts_with("[[") {
                body.to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn sample_with_every_example_uncommented_is_valid_and_documented() {
    let text = uncommented_sample();
    let path = std::env::temp_dir().join(format!("sg-sample-{}.toml", std::process::id()));
    std::fs::write(&path, &text).unwrap();
    let (code, out, _) = spoofguard(&["config-check", "--config", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(code, 0, "{out}");
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .unwrap();
    let value: toml::Table = toml::from_str(&text).unwrap();
    let mut checked = 0;
    for (table, v) in &value {
        let keys: Vec<String> = match v {
            toml::Value::Table(t) if table != "weights" => t.keys().cloned().collect(),
            toml::Value::Array(a) => a
                .iter()
                .filter_map(|e| e.as_table())
                .flat_map(|t| t.keys().cloned())
                .collect(),
            _ => continue,
        };
        let prefix = if matches!(v, toml::Value::Array(_)) {
            table.trim_end_matches('s')
        } else {
            table
        };
        for key in keys {
            let documented = docs.contains(&format!("`{prefix}.{key}`"))
                || docs.contains(&format!("`{prefix}.{key}`,"));
            assert!(documented, "{prefix}.{key} is not in docs/configuration.md");
            checked += 1;
        }
    }
    assert!(checked >= 35, "only {checked} keys checked");
}

#[test]
fn brands_lists_the_catalogue_in_effect() {
    let cfg = fixture("config/valid/brands.toml");
    let (code, out, err) = spoofguard(&["brands", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let last = out.lines().last().unwrap();
    assert!(last.ends_with("built-in, 2 from config only)"), "{last}");
    assert!(out.contains("\nExample Bank [-] config\n  domains: examplebank.co.jp\n  aliases: 例銀行, Example Bank\n"), "{out}");
    assert!(
        out.contains("Microsoft [global/tech] built-in+config\n"),
        "{out}"
    );
    assert!(
        out.contains("\nOrange [-] config\n  domains: orange.fr\n"),
        "{out}"
    );
    assert!(!out.contains("\nHulu ["), "{out}");

    let (code, out, _) = spoofguard(&[
        "brands",
        "--config",
        cfg.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows.len() >= 250, "{}", rows.len());
    let itau = rows.iter().find(|r| r["name"] == "Itau").unwrap();
    assert_eq!(itau["region"], "south-america");
    assert_eq!(itau["category"], "bank");
    assert_eq!(itau["origin"], "built-in");
    assert!(
        itau["domains"]
            .as_array()
            .unwrap()
            .contains(&"itau.com.br".into())
    );
    let ms = rows.iter().find(|r| r["name"] == "Microsoft").unwrap();
    assert!(
        ms["domains"]
            .as_array()
            .unwrap()
            .contains(&"contoso-mail.example".into())
    );
}

#[test]
fn domain_scores_sender_domains_as_json_lines() {
    let (code, out, err) = spoofguard(&[
        "domain",
        "--config",
        fixture("config/valid/empty.toml").to_str().unwrap(),
        "--format",
        "json",
        "microsoft-securityprotection-support.xyz",
        "paypay.ne.jp",
        "rnicrosoft.com",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0],
        serde_json::json!({
            "domain": "microsoft-securityprotection-support.xyz",
            "score": 10.0,
            "verdict": "quarantine",
            "brand": "Microsoft",
            "reasons": [{
                "code": "LOOKALIKE_BRAND_TOKEN",
                "detail": "microsoft-securityprotection-support.xyz ~ microsoft.com",
                "weight": 10.0
            }]
        })
    );
    assert_eq!(
        lines[1],
        serde_json::json!({"domain": "paypay.ne.jp", "score": 0.0, "verdict": "accept", "reasons": []})
    );
    assert_eq!(lines[2]["reasons"][0]["code"], "LOOKALIKE_SKELETON");
    assert_eq!(lines[2]["verdict"], "quarantine");
}
