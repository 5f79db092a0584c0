//! The scale-out store against a real ClickHouse server (Debian's 18.16.1, started per test):
//! the schema is created, rows round-trip unchanged, and a batch written twice counts once.

use logwarden::store::clickhouse::{ClickHouse, EventRow};

use crate::support::ClickHouseServer;

fn row(i: u64, raw: &str) -> EventRow {
    let secs = 1_796_212_800 + i * 61;
    EventRow {
        ts: u32::try_from(secs).unwrap(),
        ts_ns: secs * 1_000_000_000 + 123_456_000,
        id: format!("{:016x}:{}", 0xfeed_u64, i * 100),
        agent: "host-a".into(),
        service: if i.is_multiple_of(2) {
            "app"
        } else {
            "postgres"
        }
        .into(),
        level: "error".into(),
        host: "newsletter-app-1".into(),
        source: "/var/log/app.log".into(),
        message: raw.lines().next().unwrap_or("").into(),
        raw: raw.into(),
        fields: format!(r#"{{"n":{i},"q":"it's \"quoted\" ? \\ done"}}"#),
        flags: if i == 1 {
            vec!["partial".into()]
        } else {
            vec![]
        },
        rules: vec!["db-connection-refused".into()],
        classes: vec!["db-connection".into()],
    }
}

/// The one number `sql` selects, with `binds` bound to its `?`s in order.
async fn count(client: &clickhouse::Client, sql: &str, binds: &[&str]) -> u64 {
    let mut query = client.query(sql);
    for value in binds {
        query = query.bind(*value);
    }
    query.fetch_one().await.unwrap()
}

#[test]
fn tables_are_created_rows_round_trip_and_a_batch_written_twice_counts_once() {
    let server = ClickHouseServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ch = ClickHouse::connect(&server.url, "logwarden_test", None, None, Some(730))
            .await
            .unwrap();
        // Connecting again finds the tables there and changes nothing.
        let ch = {
            drop(ch);
            ClickHouse::connect(&server.url, "logwarden_test", None, None, Some(730))
                .await
                .unwrap()
        };
        let rows = vec![
            row(0, "connect ECONNREFUSED 127.0.0.1:5432"),
            row(1, "ERROR:  syntax error at or near \"?\"\nLINE 1: SELECT '; DROP TABLE events; --"),
            row(2, "ünïcödé ✓ and a tab\there, a backslash \\ and a NUL-free end"),
        ];
        ch.insert_events(&rows).await.unwrap();
        // The same batch again: a retry after a lost answer, or a restart after a kill.
        ch.insert_events(&rows).await.unwrap();

        let client = ch.client();
        let once = count(client, "SELECT count() FROM events FINAL", &[]).await;
        assert_eq!(once, 3);
        let distinct = count(client, "SELECT uniqExact(id) FROM events", &[]).await;
        assert_eq!(distinct, 3);

        let back: Vec<EventRow> = client
            .query("SELECT ?fields FROM events FINAL ORDER BY ts_ns")
            .fetch_all()
            .await
            .unwrap();
        assert_eq!(back, rows);

        // A bound value is data, whatever it holds.
        let hostile = "'; DROP TABLE events; -- ? \\";
        let found = count(client, "SELECT count() FROM events FINAL WHERE position(raw, ?) > 0", &["DROP TABLE events"]).await;
        assert_eq!(found, 1);
        let none = count(client, "SELECT count() FROM events FINAL WHERE raw = ?", &[hostile]).await;
        assert_eq!(none, 0);
        let still = count(client, "SELECT count() FROM events FINAL", &[]).await;
        assert_eq!(still, 3);

        // Partitions are days: retention drops whole partitions.
        let days: Vec<String> = client
            .query("SELECT DISTINCT partition FROM system.parts WHERE database = 'logwarden_test' AND table = 'events' AND active ORDER BY partition")
            .fetch_all()
            .await
            .unwrap();
        assert_eq!(days, vec!["20261202".to_string()]);
    });
}
