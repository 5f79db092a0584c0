//! The healthy stack: steady streams of ordinary lines, plus near misses a correct pipeline must not
//! turn into incidents.
//!
//! Each stream (app requests, health checks, worker jobs, PostgreSQL statements, checkpoints, Redis
//! saves, kernel noise, …) has its own random stream, so adding a stream or an episode never shifts
//! the others. Streams run over the whole timeline; [`Script::baseline`] drops the lines of files an
//! episode silences. Near misses are placed in the middle of each healthy span, one per span, never
//! of the class of an episode next to it (it would prolong that incident).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::render::{
    APP, Json, PG_CHECKPOINTER, WORKER, kern, pg, pg_entry, pino, redis, req, res,
};
use super::{DemoFile, Episode, SECRETS, Script, kernel_uptime, offset};
use crate::detect::Class;
use crate::event::Timestamp;

/// The random stream of baseline stream `n` (episodes use 1000 + their index).
pub(super) fn stream(seed: u64, n: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(n);
    rng
}

/// Writes every baseline stream over `[script.start, end)`.
pub(super) fn write(script: &mut Script, seed: u64, end: Timestamp, episodes: &[Episode]) {
    let total = (end.0 - script.start.0) as f64 / 1e6;
    let streams: [fn(&mut Script, &mut ChaCha8Rng, f64); 13] = [
        startup,
        app_requests,
        health_checks,
        app_misc,
        email_jobs,
        insight_jobs,
        r2_uploads,
        queue_stats,
        pg_statements,
        pg_checkpoints,
        pg_autovacuum,
        redis_saves,
        kernel_noise,
    ];
    for (n, write_stream) in streams.iter().enumerate() {
        let mut rng = stream(seed, n as u64 + 1);
        write_stream(script, &mut rng, total);
    }
    let mut rng = stream(seed, 100);
    near_misses(script, &mut rng, end, episodes);
}

/// Offsets from `first` (plus up to a second) with gaps drawn from `gap` until `total`.
fn ticks(rng: &mut ChaCha8Rng, first: f64, gap: std::ops::Range<f64>, total: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut s = first + rng.random_range(0.0..1.0);
    while s < total {
        out.push(s);
        s += rng.random_range(gap.clone());
    }
    out
}

fn startup(sc: &mut Script, _rng: &mut ChaCha8Rng, _total: f64) {
    let t0 = sc.start;
    let ts = offset(t0, 0.4);
    let text = pino(30, ts, APP)
        .n("port", 3000)
        .s("version", "2.13.4")
        .msg("Server listening");
    sc.baseline(ts, DemoFile::App, text);
    let ts = offset(t0, 0.6);
    // A config dump at start-up that carries an API key: parse must redact it.
    let env = format!(
        "NODE_ENV=production RESEND_API_KEY={} R2_BUCKET=newsletter-assets",
        SECRETS[2]
    );
    let text = pino(30, ts, WORKER)
        .s("env", &env)
        .msg("Configuration loaded");
    sc.baseline(ts, DemoFile::Worker, text);
    let ts = offset(t0, 0.7);
    let text = pino(30, ts, WORKER)
        .s("model", "gpt-4o-mini")
        .s("apiKey", SECRETS[3])
        .msg("OpenAI client initialised");
    sc.baseline(ts, DemoFile::Worker, text);
    let ts = offset(t0, 0.9);
    let text = pino(30, ts, WORKER)
        .raw("queues", r#"["campaign-emails","ai-insights"]"#)
        .msg("Worker started");
    sc.baseline(ts, DemoFile::Worker, text);
}

/// (method, url pattern with `{}` for an id, status, weight)
const ROUTES: [(&str, &str, u16, u32); 11] = [
    ("GET", "/api/campaigns", 200, 50),
    ("GET", "/api/subscribers?page={}", 200, 40),
    ("GET", "/api/campaigns/{}", 200, 30),
    ("GET", "/api/campaigns/{}/stats", 200, 20),
    ("POST", "/api/subscribers", 201, 16),
    ("PATCH", "/api/campaigns/{}", 200, 8),
    ("POST", "/api/campaigns/{}/send", 202, 3),
    ("GET", "/api/templates", 200, 12),
    ("GET", "/api/auth/session", 200, 12),
    ("POST", "/api/auth/login", 200, 6),
    ("GET", "/api/campaigns/{}", 404, 1),
];

fn app_requests(sc: &mut Script, rng: &mut ChaCha8Rng, total: f64) {
    let weight_sum: u32 = ROUTES.iter().map(|r| r.3).sum();
    for (n, s) in ticks(rng, 1.3, 0.15..1.1, total).into_iter().enumerate() {
        let ts = offset(sc.start, s);
        let mut pick = rng.random_range(0..weight_sum);
        let mut route = ROUTES[0];
        for r in ROUTES {
            if pick < r.3 {
                route = r;
                break;
            }
            pick -= r.3;
        }
        let (method, pattern, status, _) = route;
        let url = pattern.replace("{}", &rng.random_range(1..400u32).to_string());
        let rt = 5 + (rng.random::<f64>().powi(3) * 295.0) as i64;
        let level = if status >= 400 { 40 } else { 30 };
        let text = pino(level, ts, APP)
            .s("reqId", &format!("req-{:x}", 0x1a2b + n))
            .o("req", req(method, &url))
            .o("res", res(status))
            .n("responseTime", rt)
            .msg("request completed");
        sc.baseline(ts, DemoFile::App, text);
    }
}

fn health_checks(sc: &mut Script, rng: &mut ChaCha8Rng, total: f64) {
    for s in ticks(rng, 10.0, 29.8..30.2, total) {
        let ts = offset(sc.start, s);
        let rt = rng.random_range(1..5);
        let text = pino(30, ts, APP)
            .s("reqId", &format!("req-h{:x}", ts.as_secs() % 0xffff))
            .o("req", req("GET", "/api/health"))
            .o("res", res(200))
            .n("responseTime", rt)
            .msg("request completed");
        sc.baseline(ts, DemoFile::App, text);
    }
}

const IPS: [&str; 5] = [
    "198.51.100.23",
    "198.51.100.87",
    "192.0.2.14",
    "192.0.2.201",
    "198.51.100.140",
];

fn app_misc(sc: &mut Script, rng: &mut ChaCha8Rng, total: f64) {
    for s in ticks(rng, 45.0, 50.0..200.0, total) {
        let ts = offset(sc.start, s);
        let line = pino(30, ts, APP);
        let text = match rng.random_range(0..4) {
            0 => {
                let ip = IPS[rng.random_range(0..IPS.len())];
                line.n("userId", rng.random_range(1..300))
                    .s("ip", ip)
                    .msg("User logged in")
            }
            1 => {
                let signature: String = (0..4)
                    .map(|_| format!("{:016x}", rng.random::<u64>()))
                    .collect();
                let key = format!("uploads/t_{}/img-{}.png", rng.random_range(1..90), s as u64);
                let url = format!(
                    "https://42abc.r2.cloudflarestorage.com/newsletter-assets/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
                );
                line.s("key", &key)
                    .s("url", &url)
                    .msg("Presigned upload URL issued")
            }
            2 => line
                .n("campaignId", rng.random_range(100..900))
                .s("sendAt", &offset(ts, 3_600.0).rfc3339())
                .msg("Campaign scheduled"),
            _ => line
                .n("tenantId", rng.random_range(1..90))
                .n("count", rng.random_range(10..2_000))
                .msg("Subscribers imported"),
        };
        sc.baseline(ts, DemoFile::App, text);
    }
}

const MAILBOXES: [&str; 6] = [
    "r***@example.com",
    "j***@example.org",
    "a***@mail.example.net",
    "k***@example.com",
    "s***@example.org",
    "t***@example.com",
];

fn email_jobs(sc: &mut Script, rng: &mut ChaCha8Rng, total: f64) {
    for (n, s) in ticks(rng, 3.0, 2.5..6.0, total).into_iter().enumerate() {
        let job = (8_812 + n).to_string();
        let ts = offset(sc.start, s);
        let email_id = format!(
            "{:08x}-{:04x}-4{:03x}",
            rng.random::<u32>(),
            rng.random::<u16>(),
            rng.random_range(0..0xfffu16)
        );
        let to = MAILBOXES[rng.random_range(0..MAILBOXES.len())];
        let text = pino(30, ts, WORKER)
            .s("queue", "campaign-emails")
            .s("jobId", &job)
            .s("emailId", &email_id)
            .s("to", to)
            .msg("Email sent via Resend");
        sc.baseline(ts, DemoFile::Worker, text);
        let ms = rng.random_range(120..450);
        let done = offset(ts, ms as f64 / 1000.0 + 0.01);
        let text = pino(30, done, WORKER)
            .s("queue", "campaign-emails")
            .s("jobId", &job)
            .n("durationMs", ms)
            .msg("Job completed");
        sc.baseline(done, DemoFile::Worker, text);
    }
}

fn insight_jobs(sc: &mut Script, rng: &mut ChaCha8Rng, total: f64) {
    for (n, s) in ticks(rng, 20.0, 40.0..100.0, total).into_iter().enumerate() {
        let job = (77 + n).to_string();
        let ts = offset(sc.start, s);
        let ms = rng.random_range(700..4_200);
        let text = pino(30, ts, WORKER)
            .s("queue", "ai-insights")
            .s("jobId", &job)
            .s("model", "gpt-4o-mini")
            .n("tokens", rng.random_range(300..1_800))
            .n("durationMs", ms)
            .msg("OpenAI completion finished");
        sc.baseline(ts, DemoFile::Worker, text);
        let done = offset(ts, 0.05);
        let text = pino(30, done, WORKER)
            .s("queue", "ai-insights")
            .s("jobId", &job)
            .n("durationMs", ms + 60)
            .msg("Job completed");
        sc.baseline(done, DemoFile::Worker, text);
    }
}

fn r2_uploads(sc: &mut Script, rng: &mut ChaCha8Rng, total: f64) {
    for s in ticks(rng, 30.0, 30.0..90.0, total) {
        let ts = offset(sc.start, s);
        let key = format!(
            "uploads/t_{}/img-{:x}.png",
            rng.random_range(1..90),
            rng.random::<u32>()
        );
        let text = pino(30, ts, WORKER)
            .s("bucket", "newsletter-assets")
            .s("key", &key)
            .n("bytes", rng.random_range(8_000..900_000))
            .msg("R2 upload complete");
        sc.baseline(ts, DemoFile::Worker, text);
    }
}

fn queue_stats(sc: &mut Script, rng: &mut ChaCha8Rng, total: f64) {
    for s in ticks(rng, 60.0, 59.9..60.1, total) {
        let ts = offset(sc.start, s);
        let text = pino(30, ts, WORKER)
            .s("queue", "campaign-emails")
            .n("waiting", rng.random_range(0..40))
            .n("active", rng.random_range(1..6))
            .msg("Queue stats");
        sc.baseline(ts, DemoFile::Worker, text);
    }
}

const STATEMENTS: [&str; 7] = [
    "SELECT * FROM campaigns WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT 20",
    "SELECT id, email, status FROM subscribers WHERE tenant_id = $1 AND status = $2 LIMIT 50 OFFSET $3",
    "INSERT INTO email_events (campaign_id, subscriber_id, type, created_at) VALUES ($1, $2, $3, now())",
    "UPDATE campaigns SET sent_count = sent_count + 1 WHERE id = $1",
    "SELECT count(*) FROM subscribers WHERE tenant_id = $1",
    "SELECT * FROM templates WHERE tenant_id = $1",
    "SELECT * FROM sessions WHERE token_hash = $1 AND expires_at > now()",
];

fn pg_statements(sc: &mut Script, rng: &mut ChaCha8Rng, total: f64) {
    for s in ticks(rng, 0.8, 0.3..1.6, total) {
        let ts = offset(sc.start, s);
        let pid = rng.random_range(4242..4249);
        let ms = 1.0 + rng.random::<f64>().powi(2) * 79.0;
        let statement = STATEMENTS[rng.random_range(0..STATEMENTS.len())];
        let text = pg(
            ts,
            pid,
            true,
            "LOG",
            &format!("duration: {ms:.3} ms  statement: {statement}"),
        );
        sc.baseline(ts, DemoFile::Postgres, text);
    }
}

fn pg_checkpoints(sc: &mut Script, rng: &mut ChaCha8Rng, total: f64) {
    for s in ticks(rng, 150.0, 300.0..300.001, total) {
        let ts = offset(sc.start, s);
        let text = pg(
            ts,
            PG_CHECKPOINTER,
            false,
            "LOG",
            "checkpoint starting: time",
        );
        sc.baseline(ts, DemoFile::Postgres, text);
        let took = rng.random_range(20.0..40.0);
        let done = offset(ts, took + 0.05);
        let buffers = rng.random_range(80..900);
        let msg = format!(
            "checkpoint complete: wrote {buffers} buffers ({:.1}%); 0 WAL file(s) added, 0 removed, 1 recycled; write={took:.3} s, sync=0.012 s, total={:.3} s; sync files={}, longest=0.004 s, average=0.001 s; distance={} kB, estimate={} kB",
            buffers as f64 / 163.84,
            took + 0.05,
            buffers / 9 + 3,
            buffers * 8,
            buffers * 9
        );
        sc.baseline(
            done,
            DemoFile::Postgres,
            pg(done, PG_CHECKPOINTER, false, "LOG", &msg),
        );
    }
}

fn pg_autovacuum(sc: &mut Script, rng: &mut ChaCha8Rng, total: f64) {
    const TABLES: [&str; 3] = ["email_events", "subscribers", "campaigns"];
    for s in ticks(rng, 200.0, 360.0..600.0, total) {
        let ts = offset(sc.start, s);
        let pid = rng.random_range(4500..4600);
        let table = TABLES[rng.random_range(0..TABLES.len())];
        let pages = rng.random_range(200..5_000);
        let removed = rng.random_range(10..900);
        let msg = format!(
            "automatic vacuum of table \"newsletter.public.{table}\": index scans: 1\n\tpages: 0 removed, {pages} remain, {} scanned ({:.2}% of total)\n\ttuples: {removed} removed, {} remain, 0 are dead but not yet removable\n\tavg read rate: 0.000 MB/s, avg write rate: {:.3} MB/s\n\tsystem usage: CPU: user: 0.01 s, system: 0.00 s, elapsed: 0.05 s",
            pages / 4,
            25.0,
            pages * 37,
            rng.random_range(0.1..3.0)
        );
        sc.baseline(ts, DemoFile::Postgres, pg(ts, pid, false, "LOG", &msg));
        let later = offset(ts, 0.2);
        let msg = format!(
            "automatic analyze of table \"newsletter.public.{table}\"\n\tavg read rate: 0.000 MB/s, avg write rate: 0.000 MB/s\n\tsystem usage: CPU: user: 0.02 s, system: 0.00 s, elapsed: 0.09 s"
        );
        sc.baseline(
            later,
            DemoFile::Postgres,
            pg(later, pid, false, "LOG", &msg),
        );
    }
}

fn redis_saves(sc: &mut Script, rng: &mut ChaCha8Rng, total: f64) {
    for (n, s) in ticks(rng, 60.0, 300.0..300.5, total)
        .into_iter()
        .enumerate()
    {
        let child = 212 + n as u32;
        let at = |d: f64| offset(sc.start, s + d);
        let lines = [
            (at(0.0), 1, 'M', "100 changes in 300 seconds. Saving..."),
            (
                at(0.001),
                1,
                'M',
                &*format!("Background saving started by pid {child}"),
            ),
            (at(0.05), child, 'C', "DB saved on disk"),
            (
                at(0.051),
                child,
                'C',
                "Fork CoW for RDB: current 1 MB, peak 1 MB, average 0 MB",
            ),
            (at(0.1), 1, 'M', "Background saving terminated with success"),
        ]
        .map(|(ts, pid, role, msg)| (ts, redis(ts, pid, role, '*', msg)));
        for (ts, text) in lines {
            sc.baseline(ts, DemoFile::Redis, text);
        }
    }
}

fn kernel_noise(sc: &mut Script, rng: &mut ChaCha8Rng, total: f64) {
    for s in ticks(rng, 40.0, 90.0..300.0, total) {
        let ts = offset(sc.start, s);
        let msg = match rng.random_range(0..5) {
            0 => format!(
                "br-3f2a1b4c5d6e: port 2(veth{:07x}) entered forwarding state",
                rng.random_range(0..0xfff_ffffu32)
            ),
            1 => "TCP: eth0: Driver has suspect GRO implementation, TCP performance may be compromised.".to_string(),
            _ => format!(
                "[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC={} DST=10.0.0.5 LEN=44 TOS=0x00 PREC=0x00 TTL=243 ID={} PROTO=TCP SPT={} DPT={} WINDOW=1024 RES=0x00 SYN URGP=0",
                IPS[rng.random_range(0..IPS.len())],
                rng.random_range(1_000..65_000),
                rng.random_range(30_000..65_000),
                [22, 23, 3389, 5432, 6379][rng.random_range(0..5)]
            ),
        };
        let uptime = kernel_uptime(sc.start, ts);
        sc.baseline(ts, DemoFile::Kernel, kern(ts, uptime, &msg));
    }
}

/// A single healthy-looking anomaly, below every threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NearMiss {
    /// One 1.2 s query (at most about one per hour).
    SlowQuery,
    /// One failed login from an ordinary address.
    FailedLogin,
    /// One 500 response.
    App500,
    /// One Resend 429 that succeeds on retry.
    Resend429,
    /// One 2.4 s request.
    SlowRequest,
    /// One PostgreSQL ERROR (a duplicate key).
    PgDuplicateKey,
}

impl NearMiss {
    /// Errors (App500, PgDuplicateKey) three spans apart: at most 3 per hour.
    const CYCLE: [NearMiss; 6] = [
        NearMiss::SlowQuery,
        NearMiss::App500,
        NearMiss::FailedLogin,
        NearMiss::SlowRequest,
        NearMiss::PgDuplicateKey,
        NearMiss::Resend429,
    ];

    /// The classes whose rules see this line (one match, below their thresholds).
    fn classes(self) -> &'static [Class] {
        match self {
            NearMiss::SlowQuery => &[Class::SlowQueries],
            NearMiss::FailedLogin => &[Class::Security],
            NearMiss::App500 => &[Class::HighErrorRate, Class::AppDown],
            NearMiss::Resend429 => &[Class::EmailDelivery],
            NearMiss::SlowRequest => &[Class::HighLatency],
            NearMiss::PgDuplicateKey => &[Class::HighErrorRate],
        }
    }
}

fn near_misses(sc: &mut Script, rng: &mut ChaCha8Rng, end: Timestamp, episodes: &[Episode]) {
    let spans = super::spans_between(sc.start, end, episodes);
    let mut previous = None;
    for (i, (from, to)) in spans.iter().enumerate() {
        let before = i
            .checked_sub(1)
            .and_then(|j| episodes.get(j))
            .map(|e| e.class);
        let after = episodes.get(i).map(|e| e.class);
        let kind = (0..NearMiss::CYCLE.len())
            .map(|k| NearMiss::CYCLE[(i + k) % NearMiss::CYCLE.len()])
            .find(|k| {
                Some(*k) != previous
                    && !k
                        .classes()
                        .iter()
                        .any(|c| Some(*c) == before || Some(*c) == after)
            });
        let Some(kind) = kind else { continue };
        previous = Some(kind);
        let middle = (to.0 - from.0) as f64 / 2e6;
        let ts = offset(*from, middle + rng.random_range(-30.0..30.0));
        near_miss(sc, rng, ts, kind);
    }
}

fn near_miss(sc: &mut Script, rng: &mut ChaCha8Rng, ts: Timestamp, kind: NearMiss) {
    match kind {
        NearMiss::SlowQuery => {
            let text = pg(
                ts,
                4244,
                true,
                "LOG",
                "duration: 1204.332 ms  statement: SELECT count(*) FROM email_events WHERE campaign_id = $1",
            );
            sc.baseline(ts, DemoFile::Postgres, text);
        }
        NearMiss::FailedLogin => {
            let text = pino(40, ts, APP)
                .s("ip", IPS[rng.random_range(0..IPS.len())])
                .s("email", "jane@example.org")
                .msg("failed login");
            sc.baseline(ts, DemoFile::App, text);
        }
        NearMiss::App500 => {
            let err = Json::obj()
                .s("type", "QueryResultError")
                .s("message", "No data returned from the query.");
            let text = pino(50, ts, APP)
                .s("reqId", &format!("req-{:x}", rng.random::<u32>()))
                .o("req", req("GET", "/api/campaigns/311/stats"))
                .o("res", res(500))
                .o("err", err)
                .n("responseTime", 14)
                .msg("request completed");
            sc.baseline(ts, DemoFile::App, text);
        }
        NearMiss::Resend429 => {
            let err = Json::obj()
                .n("statusCode", 429)
                .s("name", "rate_limit_exceeded")
                .s(
                    "message",
                    "Too many requests. You can only make 10 requests per second.",
                );
            let text = pino(40, ts, WORKER)
                .s("queue", "campaign-emails")
                .s("jobId", "8500")
                .o("err", err)
                .n("retryInMs", 1_000)
                .msg("Resend API error");
            sc.baseline(ts, DemoFile::Worker, text);
            let retry = offset(ts, 1.1);
            let text = pino(30, retry, WORKER)
                .s("queue", "campaign-emails")
                .s("jobId", "8500")
                .s("emailId", "0b7e1c2d-5a6f-4e21")
                .s("to", "l***@example.com")
                .n("attempt", 2)
                .msg("Email sent via Resend");
            sc.baseline(retry, DemoFile::Worker, text);
        }
        NearMiss::SlowRequest => {
            let text = pino(30, ts, APP)
                .s("reqId", &format!("req-{:x}", rng.random::<u32>()))
                .o("req", req("GET", "/api/campaigns/122/stats"))
                .o("res", res(200))
                .n("responseTime", 2_431)
                .msg("request completed");
            sc.baseline(ts, DemoFile::App, text);
        }
        NearMiss::PgDuplicateKey => {
            let text = pg_entry(
                ts,
                4246,
                true,
                &[
                    (
                        "ERROR",
                        "duplicate key value violates unique constraint \"subscribers_tenant_id_email_key\"",
                    ),
                    (
                        "DETAIL",
                        "Key (tenant_id, email)=(42, jane@example.org) already exists.",
                    ),
                    (
                        "STATEMENT",
                        "INSERT INTO subscribers (tenant_id, email, status) VALUES ($1, $2, $3)",
                    ),
                ],
            );
            sc.baseline(ts, DemoFile::Postgres, text);
        }
    }
}
