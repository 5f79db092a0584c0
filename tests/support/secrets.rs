//! The catalogue of secrets the newsletter stack really has, as the stack logs them, and the rule
//! that opens an incident for each line carrying one (so their evidence holds it): what the
//! redaction tests feed in by every way and look for everywhere.

use std::path::Path;

/// Every line carrying `leakcheck` opens an incident of its own `kind`, whose evidence holds it.
pub const LEAK_RULE: &str = r#"
[[rule]]
id = "test-leak-check"
class = "db-connection"
severity = "error"
title = "A line that carries a secret"
literals = ["leakcheck"]
group_by = ["kind"]
resolve_after = "1h"
runbook = ["database-connection-issues"]
examples = ['{"level":50,"time":1796220000000,"msg":"leakcheck","kind":"k1"}']
"#;

/// One secret of the catalogue: its kind, the secret itself (what must never come out), and
/// the pino line's `msg` and extra fields that carry it the way the stack logs it.
pub struct Secret {
    pub kind: &'static str,
    pub secret: String,
    pub msg: String,
    pub fields: String,
}

pub fn catalogue() -> Vec<Secret> {
    let aws_secret = "Jw8rXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEK3Y";
    assert_eq!(
        aws_secret.len(),
        40,
        "an AWS secret access key is 40 characters"
    );
    let r2_secret = "9c1f4e7a2b5d8c0f3e6a9b2c5d8e1f4a7b0c3d6e9f2a5b8c1d4e7f0a3b6c9d2e";
    let jwt_sig = "Sig9QmX2vB7nL4kJ8hG3fD6sA1pO5iU0yT";
    let jwt = format!("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzdWJfNDQyMSJ9.{jwt_sig}");
    let s = |kind, secret: &str, msg: String, fields: &str| Secret {
        kind,
        secret: secret.to_string(),
        msg,
        fields: fields.to_string(),
    };
    vec![
        s(
            "resend",
            "re_Lk9v2Qw8Rt5Yu3Io7Pa1",
            "Resend POST /emails 401 for key re_Lk9v2Qw8Rt5Yu3Io7Pa1".into(),
            "",
        ),
        s(
            "openai",
            "sk-proj-Qz4Xw7Ec1Rv9Tb3Yn6Um",
            "OpenAI request with sk-proj-Qz4Xw7Ec1Rv9Tb3Yn6Um rate limited".into(),
            "",
        ),
        s(
            "aws-id",
            "AKIAQ7RZ2K9M4EXAMPLE",
            format!("R2 PutObject denied for AKIAQ7RZ2K9M4EXAMPLE {aws_secret}"),
            "",
        ),
        s(
            "aws-secret",
            aws_secret,
            format!("R2 PutObject denied for AKIAQ7RZ2K9M4EXAMPLE {aws_secret}"),
            "",
        ),
        s(
            "r2-env",
            r2_secret,
            format!("config loaded: R2_SECRET_ACCESS_KEY={r2_secret} R2_BUCKET_NAME=assets"),
            "",
        ),
        s(
            "camel-key",
            "Vx3Cn8Bm2Zl5Kj9Hg4Fd7Sa1Qw6Er0Ty8Ui3Op2A",
            "S3 client config {endpoint: r2, secretAccessKey: Vx3Cn8Bm2Zl5Kj9Hg4Fd7Sa1Qw6Er0Ty8Ui3Op2A}"
                .into(),
            "",
        ),
        s(
            "bearer",
            "tok_4fG7hJ2kL9mNq",
            "upstream 401 for Authorization: Bearer tok_4fG7hJ2kL9mNq".into(),
            "",
        ),
        s(
            "basic",
            "dXNlcjpQYXNzdzByZDEyMw==",
            "webhook sent with Authorization: Basic dXNlcjpQYXNzdzByZDEyMw==".into(),
            "",
        ),
        s(
            "postgres",
            "Pg7Secr3tPass",
            "connect ECONNREFUSED postgres://newsletter:Pg7Secr3tPass@db:5432/newsletter".into(),
            "",
        ),
        s(
            "redis",
            "R3disPa55w0rd",
            "Redis error: connect ECONNREFUSED redis://:R3disPa55w0rd@redis:6379".into(),
            "",
        ),
        s(
            "jwt",
            jwt_sig,
            format!("unsubscribe token {jwt} rejected"),
            "",
        ),
        s(
            "json-field",
            "Tr0ub4dor3xyz",
            "signup validation failed".into(),
            r#","body":{"email":"a@b.c","password":"Tr0ub4dor3xyz"}"#,
        ),
        s(
            "header-field",
            "hdr_7Yt5Re3Wq1",
            "outgoing request failed".into(),
            r#","headers":{"authorization":"Bearer hdr_7Yt5Re3Wq1"}"#,
        ),
        s(
            "query-string",
            "Qs7PassW0rdq",
            "POST /login?email=a%40b.c&password=Qs7PassW0rdq&next=%2F 401".into(),
            "",
        ),
        s(
            "logfmt-quoted",
            "C0rrectHorse",
            r#"auth failed user=bob password="C0rrectHorse Battery" ip=10.0.0.7"#.into(),
            "",
        ),
    ]
}

/// The catalogue as pino lines, each kind named `{kind}{suffix}` (its own incident per path).
pub fn lines(secrets: &[Secret], suffix: &str) -> String {
    let now = logwarden::event::Timestamp::now().as_millis();
    secrets
        .iter()
        .map(|s| {
            format!(
                "{{\"level\":50,\"time\":{now},\"msg\":{},\"kind\":\"{}{suffix}\",\"tag\":\"leakcheck\"{}}}\n",
                serde_json::to_string(&s.msg).unwrap(),
                s.kind,
                s.fields
            )
        })
        .collect()
}

/// Fail naming every secret of the catalogue that `text` (what `place` gave) holds.
pub fn assert_no_secret(secrets: &[Secret], place: &str, text: &str) {
    let leaked: Vec<&str> = secrets
        .iter()
        .filter(|s| text.contains(&s.secret))
        .map(|s| s.kind)
        .collect();
    assert!(
        leaked.is_empty(),
        "secrets of kinds {leaked:?} reached {place}:\n{text}"
    );
}

/// A folder of rules holding only [`LEAK_RULE`], in `dir`.
pub fn leak_rules(dir: &Path) -> std::path::PathBuf {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("leak.toml"), LEAK_RULE).unwrap();
    rules
}
