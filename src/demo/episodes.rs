//! The thirteen incident episodes, one per [`Class`], in the order the demo plays them.
//!
//! Each episode is a [`Recipe`]: its class, its length, the files whose healthy baseline it silences
//! (a crashed process writes nothing healthy), and a function that writes its lines through a
//! [`Ctx`]. Offsets are seconds from the episode's start and must stay inside `[0, secs)`. An episode
//! writes only the shapes of its own class (the brief's table), so that it raises that class and no
//! other (one known overlap: db-down's `received fast shutdown request` and `terminating connection
//! due to administrator command`, which the pack also files under db-connection). Error-level lines are budgeted: every episode but `high-error-rate` stays under 30 per
//! minute (all services together) and no hour outside the error burst reaches 60, so that only the
//! `high-error-rate` episode raises that class (the module tests check both).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::render::{
    APP, Json, PG_CHECKPOINTER, PG_POSTMASTER, WORKER, kern, pg, pg_entry, pg_time, pino, redis,
    req, res,
};
use super::{DemoFile, SECRETS, Script, kernel_uptime, offset};
use crate::detect::Class;
use crate::event::Timestamp;

/// How one episode is played.
pub(super) struct Recipe {
    pub class: Class,
    /// Length in seconds of event time (2–5 minutes).
    pub secs: i64,
    /// Files whose baseline lines are dropped during the episode.
    pub mutes: &'static [DemoFile],
    pub write: fn(&mut Ctx<'_>),
}

/// The story, in playing order: latency climbs, the slow queries behind it, the pool runs dry, memory
/// runs out and the app falls over; the email pipeline backs up and fails; CPU saturates; storage
/// and Redis break; someone knocks on the door; the database itself goes down; and a bad deploy
/// ends the day. The order also spreads the error-heavy episodes so that no hour outside the last
/// one holds 60 error-level lines, and the error burst comes last so that an hourly error-rate
/// rule has nothing after it to keep it open.
pub(super) const RECIPES: [Recipe; 13] = [
    Recipe {
        class: Class::HighLatency,
        secs: 180,
        mutes: &[],
        write: high_latency,
    },
    Recipe {
        class: Class::SlowQueries,
        secs: 180,
        mutes: &[],
        write: slow_queries,
    },
    Recipe {
        class: Class::DbConnection,
        secs: 150,
        mutes: &[],
        write: db_connection,
    },
    Recipe {
        class: Class::HighMemory,
        secs: 180,
        mutes: &[DemoFile::Worker],
        write: high_memory,
    },
    Recipe {
        class: Class::AppDown,
        secs: 180,
        mutes: &[DemoFile::App],
        write: app_down,
    },
    Recipe {
        class: Class::QueueBacklog,
        secs: 180,
        mutes: &[DemoFile::Worker],
        write: queue_backlog,
    },
    Recipe {
        class: Class::EmailDelivery,
        secs: 180,
        mutes: &[],
        write: email_delivery,
    },
    Recipe {
        class: Class::HighCpu,
        secs: 180,
        mutes: &[],
        write: high_cpu,
    },
    Recipe {
        class: Class::Storage,
        secs: 150,
        mutes: &[],
        write: storage,
    },
    Recipe {
        class: Class::Redis,
        secs: 180,
        mutes: &[DemoFile::Redis],
        write: redis_episode,
    },
    Recipe {
        class: Class::Security,
        secs: 150,
        mutes: &[],
        write: security,
    },
    Recipe {
        class: Class::DbDown,
        secs: 180,
        mutes: &[DemoFile::Postgres],
        write: db_down,
    },
    Recipe {
        class: Class::HighErrorRate,
        secs: 120,
        mutes: &[],
        write: high_error_rate,
    },
];

/// What an episode function writes with: its random stream, its clock and the script.
pub(super) struct Ctx<'a> {
    pub rng: ChaCha8Rng,
    pub start: Timestamp,
    pub secs: f64,
    pub idx: usize,
    pub script: &'a mut Script,
}

impl Ctx<'_> {
    /// The instant `s` seconds into the episode (kept inside the episode).
    fn ts(&self, s: f64) -> Timestamp {
        debug_assert!((0.0..self.secs).contains(&s), "offset {s} outside episode");
        offset(self.start, s.clamp(0.0, self.secs - 0.001))
    }

    fn emit(&mut self, ts: Timestamp, file: DemoFile, text: String) {
        self.script.episode(self.idx, ts, file, text);
    }

    /// `n` offsets spread over `[from, to)`, one per equal slot at a random place in it, ascending.
    fn spread(&mut self, from: f64, to: f64, n: usize) -> Vec<f64> {
        let slot = (to - from) / n as f64;
        (0..n)
            .map(|i| from + slot * (i as f64 + self.rng.random_range(0.0..0.95)))
            .collect()
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo..hi)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }

    fn req_id(&mut self) -> String {
        format!("req-{:x}", self.rng.random_range(0x10_0000..0xff_ffffu32))
    }

    fn backend_pid(&mut self) -> u32 {
        self.rng.random_range(4300..4999)
    }

    fn kern(&mut self, s: f64, msg: &str) {
        let ts = self.ts(s);
        let uptime = kernel_uptime(self.script.start, ts);
        self.emit(ts, DemoFile::Kernel, kern(ts, uptime, msg));
    }
}

fn high_latency(c: &mut Ctx<'_>) {
    const ROUTES: [&str; 4] = [
        "/api/campaigns",
        "/api/subscribers?page=2",
        "/api/campaigns/318/stats",
        "/api/templates",
    ];
    for s in c.spread(4.0, 172.0, 48) {
        let ts = c.ts(s);
        let url = c.pick(&ROUTES);
        let rt = c.range(2_100, 9_800);
        let id = c.req_id();
        let text = pino(40, ts, APP)
            .s("reqId", &id)
            .o("req", req("GET", url))
            .o("res", res(200))
            .n("responseTime", rt)
            .msg("slow request");
        c.emit(ts, DemoFile::App, text);
    }
    for s in c.spread(45.0, 150.0, 4) {
        let ts = c.ts(s);
        let id = c.req_id();
        let text = pino(50, ts, APP)
            .s("reqId", &id)
            .o("req", req("GET", "/api/campaigns/318/stats"))
            .s("msg", "request timeout")
            .n("responseTime", 30_000)
            .end();
        c.emit(ts, DemoFile::App, text);
    }
}

const SLOW_SELECTS: [&str; 3] = [
    "SELECT e.campaign_id, e.type, count(*) FROM email_events e WHERE e.tenant_id = $1 AND e.created_at > $2 GROUP BY e.campaign_id, e.type",
    "SELECT * FROM email_events WHERE subscriber_id = $1 ORDER BY created_at DESC",
    "SELECT s.id, s.email, max(e.created_at) FROM subscribers s LEFT JOIN email_events e ON e.subscriber_id = s.id WHERE s.tenant_id = $1 GROUP BY s.id",
];

fn slow_queries(c: &mut Ctx<'_>) {
    for (i, s) in c.spread(3.0, 170.0, 18).into_iter().enumerate() {
        let ts = c.ts(s);
        let pid = c.backend_pid();
        let ms = c.range(1_100_000, 8_800_000) as f64 / 1000.0;
        let statement = if i % 4 == 1 {
            // psql-style multi-line statements continue with a tab.
            "SELECT campaign_id, count(*)\n\tFROM email_events\n\tWHERE tenant_id = $1 AND type = 'opened'\n\tGROUP BY campaign_id".to_string()
        } else {
            c.pick(&SLOW_SELECTS).to_string()
        };
        let text = pg(
            ts,
            pid,
            true,
            "LOG",
            &format!("duration: {ms:.3} ms  statement: {statement}"),
        );
        c.emit(ts, DemoFile::Postgres, text);
    }
    for s in c.spread(60.0, 165.0, 2) {
        let ts = c.ts(s);
        let pid = c.backend_pid();
        let statement = c.pick(&SLOW_SELECTS);
        let text = pg_entry(
            ts,
            pid,
            true,
            &[
                ("ERROR", "canceling statement due to statement timeout"),
                ("STATEMENT", statement),
            ],
        );
        c.emit(ts, DemoFile::Postgres, text);
    }
}

fn db_connection(c: &mut Ctx<'_>) {
    for s in c.spread(5.0, 120.0, 4) {
        let ts = c.ts(s);
        let pid = c.backend_pid();
        let text = pg(ts, pid, true, "FATAL", "sorry, too many clients already");
        c.emit(ts, DemoFile::Postgres, text);
    }
    for s in c.spread(20.0, 130.0, 1) {
        let ts = c.ts(s);
        let pid = c.backend_pid();
        let text = pg(
            ts,
            pid,
            true,
            "FATAL",
            "remaining connection slots are reserved for non-replication superuser connections",
        );
        c.emit(ts, DemoFile::Postgres, text);
    }
    for s in c.spread(30.0, 85.0, 3) {
        let ts = c.ts(s);
        let id = c.req_id();
        let err = Json::obj()
            .s("type", "Error")
            .s("message", "timeout exceeded when trying to connect")
            .s(
                "stack",
                "Error: timeout exceeded when trying to connect\n    at Pool.connect (/app/node_modules/pg-pool/index.js:45:11)\n    at async CampaignRepository.list (/app/dist/repositories/campaigns.js:31:24)",
            );
        let text = pino(50, ts, APP)
            .s("reqId", &id)
            .o("err", err)
            .msg("Database query failed");
        c.emit(ts, DemoFile::App, text);
    }
    for (i, s) in c.spread(90.0, 130.0, 3).into_iter().enumerate() {
        let ts = c.ts(s);
        let mut err = Json::obj()
            .s("type", "Error")
            .s("message", "connect ECONNREFUSED 172.18.0.2:5432")
            .s("code", "ECONNREFUSED");
        if i == 0 {
            // A driver error that prints the pool's connection string: parse must redact it.
            err = err.s(
                "connectionString",
                &format!("postgres://newsletter:{}@db:5432/newsletter", SECRETS[0]),
            );
        }
        let text = pino(50, ts, APP).o("err", err).msg("Database query failed");
        c.emit(ts, DemoFile::App, text);
    }
}

fn app_down(c: &mut Ctx<'_>) {
    fn health(c: &mut Ctx<'_>, s: f64, status: u16) {
        let ts = c.ts(s);
        let level = if status >= 500 { 50 } else { 30 };
        let rt = c.range(1, 6);
        let id = c.req_id();
        let text = pino(level, ts, APP)
            .s("reqId", &id)
            .o("req", req("GET", "/api/health"))
            .o("res", res(status))
            .n("responseTime", rt)
            .msg("request completed");
        c.emit(ts, DemoFile::App, text);
    }
    fn crash(c: &mut Ctx<'_>, s: f64) {
        let ts = c.ts(s);
        let err = Json::obj()
            .s("type", "RangeError")
            .s("message", "Maximum call stack size exceeded")
            .s("stack", "RangeError: Maximum call stack size exceeded\n    at serializeCampaign (/app/dist/services/campaigns.js:88:17)\n    at serializeCampaign (/app/dist/services/campaigns.js:94:12)");
        let text = pino(60, ts, APP)
            .o("err", err)
            .s("msg", "Uncaught exception, process exiting")
            .n("code", 1)
            .end();
        c.emit(ts, DemoFile::App, text);
    }
    fn callbacks(c: &mut Ctx<'_>, from: f64, to: f64, n: usize) {
        for s in c.spread(from, to, n) {
            let ts = c.ts(s);
            let job = c.range(8_900, 8_999);
            let err = Json::obj()
                .s("type", "Error")
                .s("message", "connect ECONNREFUSED 172.18.0.5:3000")
                .s("code", "ECONNREFUSED");
            let text = pino(50, ts, WORKER)
                .s("queue", "campaign-emails")
                .s("jobId", &job.to_string())
                .o("err", err)
                .msg("App callback failed");
            c.emit(ts, DemoFile::Worker, text);
        }
    }
    fn listening(c: &mut Ctx<'_>, s: f64) {
        let ts = c.ts(s);
        let text = pino(30, ts, APP)
            .n("port", 3000)
            .s("version", "2.13.4")
            .msg("Server listening");
        c.emit(ts, DemoFile::App, text);
    }

    for s in c.spread(1.0, 50.0, 5) {
        health(c, s, 503);
    }
    crash(c, 60.0);
    callbacks(c, 61.0, 85.0, 3);
    listening(c, 92.0);
    for s in c.spread(95.0, 120.0, 2) {
        health(c, s, 503);
    }
    crash(c, 121.0);
    listening(c, 140.0);
    for s in c.spread(145.0, 178.0, 4) {
        health(c, s, 200);
    }
}

fn high_error_rate(c: &mut Ctx<'_>) {
    let listening = |ts: Timestamp, version: &str| {
        pino(30, ts, APP)
            .n("port", 3000)
            .s("version", version)
            .msg("Server listening")
    };
    let ts = c.ts(2.0);
    c.emit(ts, DemoFile::App, listening(ts, "2.14.0"));
    for s in c.spread(5.0, 80.0, 110) {
        let ts = c.ts(s);
        let id = c.req_id();
        let campaign = c.range(100, 900);
        let err = Json::obj()
            .s("type", "TypeError")
            .s("message", "Cannot read properties of undefined (reading 'id')")
            .s("stack", "TypeError: Cannot read properties of undefined (reading 'id')\n    at getCampaign (/app/dist/routes/campaigns.js:57:34)\n    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)");
        let text = pino(50, ts, APP)
            .s("reqId", &id)
            .o("req", req("GET", &format!("/api/campaigns/{campaign}")))
            .o("err", err)
            .msg("Unhandled error in /api/campaigns/:id");
        c.emit(ts, DemoFile::App, text);
    }
    let ts = c.ts(84.0);
    c.emit(ts, DemoFile::App, listening(ts, "2.13.4"));
}

fn high_cpu(c: &mut Ctx<'_>) {
    for s in c.spread(3.0, 175.0, 28) {
        let ts = c.ts(s);
        let lag = c.range(520, 1_900);
        let cpu = c.range(90, 100) as f64 / 100.0;
        let text = pino(40, ts, APP)
            .n("eventLoopLagMs", lag)
            .f("cpu", cpu, 2)
            .msg("Event loop lag high");
        c.emit(ts, DemoFile::App, text);
    }
}

fn high_memory(c: &mut Ctx<'_>) {
    for (i, s) in c.spread(2.0, 58.0, 4).into_iter().enumerate() {
        let ts = c.ts(s);
        let text = pino(40, ts, WORKER)
            .n("heapUsedMb", 1_480 + 150 * i as i64)
            .n("heapLimitMb", 2_048)
            .msg("Memory usage high");
        c.emit(ts, DemoFile::Worker, text);
    }
    let ts = c.ts(62.0);
    c.emit(
        ts,
        DemoFile::Worker,
        "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory".into(),
    );
    let ts = c.ts(71.0);
    let text = pino(30, ts, WORKER)
        .raw("queues", r#"["campaign-emails","ai-insights"]"#)
        .msg("Worker started");
    c.emit(ts, DemoFile::Worker, text);

    let ts = c.ts(90.0);
    let pid = c.backend_pid();
    let text = pg_entry(
        ts,
        pid,
        true,
        &[
            ("ERROR", "out of memory"),
            ("DETAIL", "Failed on request of size 8192."),
            ("STATEMENT", SLOW_SELECTS[0]),
        ],
    );
    c.emit(ts, DemoFile::Postgres, text);

    c.kern(120.0, "node invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0");
    c.kern(
        120.0,
        "CPU: 1 PID: 2345 Comm: node Not tainted 6.1.0-27-amd64 #1  Debian 6.1.115-1",
    );
    c.kern(120.0, "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=docker-3f2a1b.scope,mems_allowed=0,global_oom,task_memcg=/system.slice/docker-3f2a1b.scope,task=node,pid=2345,uid=1000");
    c.kern(120.0, "Out of memory: Killed process 2345 (node) total-vm:2345678kB, anon-rss:1234567kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:4567kB oom_score_adj:0");
    c.kern(
        121.0,
        "oom_reaper: reaped process 2345 (node), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
    );
    let ts = c.ts(126.0);
    let text = pino(30, ts, APP)
        .n("port", 3000)
        .s("version", "2.13.4")
        .msg("Server listening");
    c.emit(ts, DemoFile::App, text);
    for s in c.spread(130.0, 178.0, 10) {
        let ts = c.ts(s);
        let job = c.range(8_700, 8_800);
        let ms = c.range(200, 900);
        let text = pino(30, ts, WORKER)
            .s("queue", "campaign-emails")
            .s("jobId", &job.to_string())
            .n("durationMs", ms)
            .msg("Job completed");
        c.emit(ts, DemoFile::Worker, text);
    }
}

fn queue_backlog(c: &mut Ctx<'_>) {
    for (i, s) in c.spread(5.0, 175.0, 9).into_iter().enumerate() {
        let ts = c.ts(s);
        let waiting = 1_180 + 510 * i as i64 + c.range(0, 90);
        let text = pino(40, ts, WORKER)
            .s("queue", "campaign-emails")
            .n("waiting", waiting)
            .n("active", 5)
            .msg("Queue backlog growing");
        c.emit(ts, DemoFile::Worker, text);
    }
    for (i, s) in c.spread(20.0, 160.0, 12).into_iter().enumerate() {
        let ts = c.ts(s);
        let text = pino(40, ts, WORKER)
            .s("queue", "campaign-emails")
            .s("jobId", &(9_100 + i).to_string())
            .msg("job stalled more than allowable limit");
        c.emit(ts, DemoFile::Worker, text);
    }
    for (i, s) in c.spread(40.0, 170.0, 4).into_iter().enumerate() {
        let ts = c.ts(s);
        let text = pino(50, ts, WORKER)
            .s("queue", "campaign-emails")
            .s("jobId", &(9_100 + 2 * i).to_string())
            .s("failedReason", "job stalled more than allowable limit")
            .msg("Job failed");
        c.emit(ts, DemoFile::Worker, text);
    }
    for s in c.spread(10.0, 178.0, 8) {
        let ts = c.ts(s);
        let job = c.range(9_200, 9_300);
        let ms = c.range(20_000, 60_000);
        let text = pino(30, ts, WORKER)
            .s("queue", "campaign-emails")
            .s("jobId", &job.to_string())
            .n("durationMs", ms)
            .msg("Job completed");
        c.emit(ts, DemoFile::Worker, text);
    }
}

fn email_delivery(c: &mut Ctx<'_>) {
    for (i, s) in c.spread(5.0, 150.0, 6).into_iter().enumerate() {
        let ts = c.ts(s);
        let err = Json::obj()
            .n("statusCode", 429)
            .s("name", "rate_limit_exceeded")
            .s(
                "message",
                "Too many requests. You can only make 10 requests per second.",
            );
        let text = pino(50, ts, WORKER)
            .s("queue", "campaign-emails")
            .s("jobId", &(9_001 + i).to_string())
            .o("err", err)
            .msg("Resend API error");
        c.emit(ts, DemoFile::Worker, text);
    }
    for s in c.spread(60.0, 140.0, 4) {
        let ts = c.ts(s);
        let err = Json::obj()
            .n("statusCode", 500)
            .s("name", "internal_server_error");
        // The HTTP client logs the failed request with its headers: parse must redact the key.
        let request = format!(
            "POST https://api.resend.com/emails Authorization: Bearer {}",
            SECRETS[1]
        );
        let text = pino(50, ts, WORKER)
            .s("queue", "campaign-emails")
            .o("err", err)
            .s("request", &request)
            .msg("Resend API error");
        c.emit(ts, DemoFile::Worker, text);
    }
    for (i, s) in c.spread(20.0, 170.0, 9).into_iter().enumerate() {
        let ts = c.ts(s);
        let (kind, msg) = if i % 3 == 2 {
            ("email.complained", "Spam complaint received")
        } else {
            ("email.bounced", "Email bounced")
        };
        let email_id = format!("{:08x}", c.rng.random::<u32>());
        let text = pino(40, ts, WORKER)
            .s("type", kind)
            .s("emailId", &email_id)
            .s("to", "m***@example.org")
            .msg(msg);
        c.emit(ts, DemoFile::Worker, text);
    }
    for (i, s) in c.spread(70.0, 175.0, 5).into_iter().enumerate() {
        let ts = c.ts(s);
        let text = pino(50, ts, WORKER)
            .s("queue", "campaign-emails")
            .s("msg", "Email delivery failed")
            .s("jobId", &(9_003 + 3 * i).to_string())
            .n("attempts", 5)
            .end();
        c.emit(ts, DemoFile::Worker, text);
    }
}

fn storage(c: &mut Ctx<'_>) {
    for (i, s) in c.spread(5.0, 140.0, 5).into_iter().enumerate() {
        let ts = c.ts(s);
        let err = Json::obj()
            .s("name", "S3ServiceException")
            .s(
                "message",
                "We encountered an internal error. Please try again.",
            )
            .o("$metadata", Json::obj().n("httpStatusCode", 500));
        let key = format!("uploads/t_42/banner-{}.png", 300 + i);
        let mut line = pino(50, ts, WORKER)
            .s("bucket", "newsletter-assets")
            .s("key", &key)
            .o("err", err);
        if i % 3 == 0 {
            // The SDK's presigned URL, signature included: parse must redact it.
            line = line.s("url", &format!("https://42abc.r2.cloudflarestorage.com/newsletter-assets/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=7f3a9c%2F20261128%2Fauto%2Fs3%2Faws4_request&X-Amz-Date=20261128T140000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature={}", SECRETS[4]));
        }
        c.emit(ts, DemoFile::Worker, line.msg("R2 upload failed"));
    }
    for s in c.spread(15.0, 135.0, 2) {
        let ts = c.ts(s);
        let id = c.req_id();
        let err = Json::obj().s(
            "message",
            "R2 connection error: getaddrinfo ENOTFOUND 42abc.r2.cloudflarestorage.com",
        );
        let text = pino(50, ts, APP)
            .s("reqId", &id)
            .o("req", req("POST", "/api/uploads"))
            .s("msg", "File upload failed")
            .o("err", err)
            .end();
        c.emit(ts, DemoFile::App, text);
    }
    for s in c.spread(10.0, 145.0, 1) {
        let ts = c.ts(s);
        let text = pino(50, ts, APP)
            .s("check", "storage")
            .msg("Storage health check failing");
        c.emit(ts, DemoFile::App, text);
    }
}

fn redis_episode(c: &mut Ctx<'_>) {
    let redis_line = |c: &mut Ctx<'_>, s: f64, role: char, mark: char, msg: &str| {
        let ts = c.ts(s);
        c.emit(ts, DemoFile::Redis, redis(ts, 1, role, mark, msg));
    };
    for s in [2.0, 32.0, 62.0] {
        redis_line(c, s, 'M', '*', "100 changes in 300 seconds. Saving...");
        redis_line(
            c,
            s + 0.01,
            'M',
            '#',
            "Can't save in background: fork: Cannot allocate memory",
        );
    }
    redis_line(c, 40.0, 'M', '#', "Background saving error");
    redis_line(c, 75.0, 'M', '#', "Background saving error");
    for s in c.spread(10.0, 95.0, 2) {
        let ts = c.ts(s);
        let err = Json::obj().s("message", "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.");
        let text = pino(50, ts, APP)
            .s("command", "SET")
            .o("err", err)
            .msg("Redis command failed");
        c.emit(ts, DemoFile::App, text);
    }
    for s in c.spread(50.0, 98.0, 1) {
        let ts = c.ts(s);
        let err = Json::obj().s(
            "message",
            "OOM command not allowed when used memory > 'maxmemory'.",
        );
        let text = pino(50, ts, APP)
            .s("command", "LPUSH")
            .o("err", err)
            .msg("Redis command failed");
        c.emit(ts, DemoFile::App, text);
    }
    // The operator restarts Redis.
    let ts = c.ts(100.0);
    let text = format!(
        "1:signal-handler ({}) Received SIGTERM scheduling shutdown...",
        ts.as_secs()
    );
    c.emit(ts, DemoFile::Redis, text);
    redis_line(c, 100.1, 'M', '#', "User requested shutdown...");
    redis_line(c, 100.2, 'M', '#', "Redis is now ready to exit, bye bye...");
    for (i, s) in c.spread(101.0, 130.0, 5).into_iter().enumerate() {
        let ts = c.ts(s);
        let (host, file) = if i % 2 == 0 {
            (APP, DemoFile::App)
        } else {
            (WORKER, DemoFile::Worker)
        };
        let err = Json::obj()
            .s("message", "connect ECONNREFUSED 172.18.0.4:6379")
            .s("code", "ECONNREFUSED");
        let text = pino(50, ts, host)
            .o("err", err)
            .msg("Redis connection error");
        c.emit(ts, file, text);
    }
    redis_line(
        c,
        131.0,
        'C',
        '#',
        "oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo",
    );
    redis_line(
        c,
        131.0,
        'C',
        '#',
        "Redis version=7.2.4, bits=64, commit=00000000, modified=0, pid=1, just started",
    );
    redis_line(c, 131.1, 'M', '*', "Running mode=standalone, port=6379.");
    redis_line(c, 131.1, 'M', '*', "Server initialized");
    redis_line(c, 131.2, 'M', '*', "Loading RDB produced by version 7.2.4");
    redis_line(c, 131.6, 'M', '*', "DB loaded from disk: 0.412 seconds");
    redis_line(c, 131.6, 'M', '*', "Ready to accept connections tcp");
    for (host, file, s) in [
        (APP, DemoFile::App, 133.0),
        (WORKER, DemoFile::Worker, 134.0),
    ] {
        let ts = c.ts(s);
        let text = pino(30, ts, host).msg("Redis connection restored");
        c.emit(ts, file, text);
    }
}

fn db_down(c: &mut Ctx<'_>) {
    let sys = |c: &mut Ctx<'_>, s: f64, pid: u32, severity: &str, msg: &str| {
        let ts = c.ts(s);
        c.emit(ts, DemoFile::Postgres, pg(ts, pid, false, severity, msg));
    };
    let refused = |c: &mut Ctx<'_>, from: f64, to: f64, n: usize, msg: &str| {
        for s in c.spread(from, to, n) {
            let ts = c.ts(s);
            let pid = c.backend_pid();
            c.emit(ts, DemoFile::Postgres, pg(ts, pid, true, "FATAL", msg));
        }
    };
    // The WAL disk fills up and the checkpointer panics.
    sys(
        c,
        0.5,
        PG_CHECKPOINTER,
        "PANIC",
        "could not write to file \"pg_wal/xlogtemp.57\": No space left on device",
    );
    sys(
        c,
        0.7,
        PG_POSTMASTER,
        "LOG",
        "checkpointer process (PID 57) was terminated by signal 6: Aborted",
    );
    sys(
        c,
        0.7,
        PG_POSTMASTER,
        "LOG",
        "terminating any other active server processes",
    );
    sys(
        c,
        0.9,
        PG_POSTMASTER,
        "LOG",
        "all server processes terminated; reinitializing",
    );
    let known_up = pg_time(c.ts(0.0));
    sys(
        c,
        1.2,
        61,
        "LOG",
        &format!("database system was interrupted; last known up at {known_up}"),
    );
    refused(c, 1.5, 20.0, 3, "the database system is starting up");
    sys(
        c,
        3.0,
        61,
        "LOG",
        "database system was not properly shut down; automatic recovery in progress",
    );
    sys(c, 3.1, 61, "LOG", "redo starts at 0/1A2B3C4D");
    sys(
        c,
        12.0,
        61,
        "LOG",
        "redo done at 0/1A9F0E28 system usage: CPU: user: 0.41 s, system: 0.12 s, elapsed: 8.93 s",
    );
    sys(
        c,
        20.5,
        PG_POSTMASTER,
        "LOG",
        "database system is ready to accept connections",
    );
    // Recovery left a damaged page behind.
    let ts = c.ts(40.0);
    let pid = c.backend_pid();
    let text = pg_entry(
        ts,
        pid,
        true,
        &[
            (
                "ERROR",
                "invalid page in block 4242 of relation base/16384/16402",
            ),
            (
                "STATEMENT",
                "SELECT id, email, status FROM subscribers WHERE tenant_id = $1",
            ),
        ],
    );
    c.emit(ts, DemoFile::Postgres, text);
    // The operator stops the server to check it, then starts it again.
    sys(
        c,
        100.0,
        PG_POSTMASTER,
        "LOG",
        "received fast shutdown request",
    );
    sys(
        c,
        100.1,
        PG_POSTMASTER,
        "LOG",
        "aborting any active transactions",
    );
    refused(
        c,
        100.2,
        101.0,
        1,
        "terminating connection due to administrator command",
    );
    sys(c, 101.2, PG_CHECKPOINTER, "LOG", "shutting down");
    refused(c, 101.5, 110.0, 3, "the database system is shutting down");
    sys(
        c,
        111.0,
        PG_POSTMASTER,
        "LOG",
        "database system is shut down",
    );
    for msg in [
        "starting PostgreSQL 16.4 (Debian 16.4-1.pgdg120+2) on x86_64-pc-linux-gnu, compiled by gcc (Debian 12.2.0-14) 12.2.0, 64-bit",
        "listening on IPv4 address \"0.0.0.0\", port 5432",
        "listening on IPv6 address \"::\", port 5432",
        "listening on Unix socket \"/var/run/postgresql/.s.PGSQL.5432\"",
    ] {
        sys(c, 125.0, PG_POSTMASTER, "LOG", msg);
    }
    let shut_at = pg_time(c.ts(111.0));
    sys(
        c,
        125.3,
        62,
        "LOG",
        &format!("database system was shut down at {shut_at}"),
    );
    refused(c, 125.4, 127.5, 1, "the database system is starting up");
    sys(
        c,
        128.0,
        PG_POSTMASTER,
        "LOG",
        "database system is ready to accept connections",
    );
    for s in c.spread(130.0, 178.0, 30) {
        let ts = c.ts(s);
        let pid = c.backend_pid();
        let ms = c.range(1_000, 40_000) as f64 / 1000.0;
        let text = pg(
            ts,
            pid,
            true,
            "LOG",
            &format!(
                "duration: {ms:.3} ms  statement: SELECT * FROM campaigns WHERE tenant_id = $1"
            ),
        );
        c.emit(ts, DemoFile::Postgres, text);
    }
}

fn security(c: &mut Ctx<'_>) {
    const ATTACKER: &str = "203.0.113.9";
    const TARGETS: [&str; 4] = [
        "admin@example.com",
        "root@example.com",
        "support@example.com",
        "test@example.com",
    ];
    for s in c.spread(8.0, 128.0, 26) {
        let ts = c.ts(s);
        let email = c.pick(&TARGETS);
        let text = pino(40, ts, APP)
            .s("ip", ATTACKER)
            .s("email", email)
            .msg("failed login");
        c.emit(ts, DemoFile::App, text);
    }
    for s in c.spread(40.0, 130.0, 6) {
        let ts = c.ts(s);
        let text = pino(40, ts, APP)
            .s("ip", ATTACKER)
            .o("req", req("POST", "/api/auth/login"))
            .msg("rate limit exceeded");
        c.emit(ts, DemoFile::App, text);
    }
    for s in [70.0, 125.0] {
        let ts = c.ts(s);
        let text = pino(40, ts, APP)
            .s("msg", "suspicious activity detected")
            .s("ip", ATTACKER)
            .s("reason", "credential stuffing")
            .end();
        c.emit(ts, DemoFile::App, text);
    }
    for s in c.spread(20.0, 140.0, 6) {
        let ts = c.ts(s);
        let pid = c.backend_pid();
        let text = pg_entry(
            ts,
            pid,
            true,
            &[
                (
                    "FATAL",
                    "password authentication failed for user \"newsletter\"",
                ),
                (
                    "DETAIL",
                    "Connection matched pg_hba.conf line 99: \"host all all all scram-sha-256\"",
                ),
            ],
        );
        c.emit(ts, DemoFile::Postgres, text);
    }
}
