//! Bad input is ingested and flagged, never dropped; bad configuration names file:line.

use std::io::Write;

use crate::support::{loggrep, logwarden, run, stderr, stdout};

fn count(data_dir: &std::path::Path, query: &str) -> u64 {
    let out = run(loggrep()
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--count", "--", query]));
    assert!(out.status.code() != Some(2), "{}", stderr(&out));
    stdout(&out).trim().parse().unwrap()
}

#[test]
fn malformed_json_invalid_utf8_a_50_mb_line_and_a_truncated_tail_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"{\"level\":30,\"time\":1796220000000,\"msg\":\"markerfirst ok\"}\n")
        .unwrap();
    f.write_all(b"{\"level\":50,\"time\":1796220001000,\"msg\":\"markerbroken \n")
        .unwrap();
    f.write_all(b"{\"level\":30,\"time\":1796220002000,\"msg\":\"markerutf \xff\xfe here\"}\n")
        .unwrap();
    let mut big = Vec::with_capacity(50 * 1024 * 1024 + 64);
    big.extend_from_slice(b"markerbigstart ");
    big.resize(50 * 1024 * 1024, b'x');
    big.extend_from_slice(b" markerbigend\n");
    f.write_all(&big).unwrap();
    f.write_all(b"{\"level\":30,\"time\":1796220003000,\"msg\":\"markerafter ok\"}\n")
        .unwrap();
    // JSON nested ten thousand deep, and an object of 50 000 keys.
    let deep = format!(
        "{{\"msg\":\"markerdeep\",\"a\":{}1{}}}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    f.write_all(deep.as_bytes()).unwrap();
    let keys: Vec<String> = (0..50_000).map(|i| format!("\"k{i}\":{i}")).collect();
    let wide = format!(
        "{{\"level\":30,\"time\":1796220003500,\"msg\":\"markerwide\",{}}}\n",
        keys.join(",")
    );
    f.write_all(wide.as_bytes()).unwrap();
    f.write_all(b"{\"level\":30,\"time\":1796220004000,\"msg\":\"markertruncated")
        .unwrap();
    drop(f);

    let data = dir.path().join("data");
    let out = run(logwarden()
        .args(["backfill", "--data-dir"])
        .arg(&data)
        .arg("--source")
        .arg(format!("app:pino={}", path.display())));
    assert!(out.status.success(), "{}", stderr(&out));
    for marker in [
        "markerfirst",
        "markerbroken",
        "markerutf",
        "markerbigstart",
        "markerbigend",
        "markerafter",
        "markerdeep",
        "markerwide",
        "markertruncated",
    ] {
        assert_eq!(
            count(&data, marker),
            1,
            "`{marker}` was not indexed exactly once"
        );
    }
    // The flags say what happened.
    let out = run(loggrep().arg("--data-dir").arg(&data).args([
        "--json",
        "--",
        "markerbroken OR markerutf OR markertruncated",
    ]));
    let flags: Vec<String> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["flags"].to_string())
        .collect();
    assert_eq!(flags.len(), 3, "{flags:?}");
    assert!(flags[0].contains("malformed"), "{flags:?}");
    assert!(flags[1].contains("invalid_utf8"), "{flags:?}");
    assert!(flags[2].contains("partial"), "{flags:?}");
    assert_eq!(count(&data, "markerdeep flags:malformed"), 1);
    assert_eq!(count(&data, "markerwide flags:fields_capped"), 1);
    // The first thousand keys (in key order: k0, k1, k10, k100, …) are fields; the rest are
    // still in the text.
    assert_eq!(count(&data, "k0:0"), 1);
    assert_eq!(count(&data, "\"k9999\":9999"), 1);
}

#[test]
fn a_broken_profile_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("bad.toml");
    std::fs::write(
        &profile,
        "[[source]]\nservice = \"app\"\nformt = \"pino\"\npath = \"/tmp/x.log\"\n",
    )
    .unwrap();
    let out = run(logwarden()
        .args(["backfill", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--profile")
        .arg(&profile));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bad.toml:3"), "{err}");
    assert!(err.contains("did you mean `format`"), "{err}");
}

#[test]
fn a_broken_rule_file_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.toml"),
        "[[rule]]\nid = \"x\"\nclass = \"db-connection\"\nseverity = \"critical\"\ntitle = \"x\"\n\
         literals = [\"x\"]\ncondition = \"count > 5\"\nrunbook = [\"database-connection-issues\"]\n",
    )
    .unwrap();
    let out = run(logwarden()
        .args(["rules", "check", "--patterns"])
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("broken.toml:7"), "{err}");
    assert!(err.contains("condition"), "{err}");
}
