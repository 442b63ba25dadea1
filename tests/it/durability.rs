//! Nothing that matters is lost: a write the store refuses for good is dead-lettered while the
//! writes after it land; a request carrying a control character is refused at the edge; and a
//! 60 s store outage with a failover, operator requests and a SIGTERM or SIGKILL of the
//! orchestrator in the middle ends with every record made before the kill in the store, once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use failover_orchestrator::metrics::Metrics;
use failover_orchestrator::store::writer::{self, StoreStatus};
use failover_orchestrator::store::{AuditRecord, Store, Write};
use fo_lab::postgres::{PgCluster, PgOptions};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::{PDNS_KEY_ENV, Spec, TestApp, fresh_database, spawn_app, w};

fn audit(action: &str, outcome: &str) -> Write {
    Write::Audit(AuditRecord {
        id: uuid::Uuid::new_v4(),
        at: Utc::now(),
        actor: "durability-test".into(),
        action: action.into(),
        target: None,
        outcome: outcome.into(),
        request_id: None,
        details: json!({}),
    })
}

async fn wait_status(
    rx: &mut tokio::sync::watch::Receiver<StoreStatus>,
    what: &str,
    pred: impl Fn(&StoreStatus) -> bool,
) {
    let ok = tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|s| pred(s))).await.is_ok();
    assert!(ok, "timed out waiting for {what}; last status {:?}", rx.borrow());
}

/// The count `sql` gives once it reaches `want` (or the last one after 15 s).
async fn count_within(store: &Store, sql: &str, want: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n: i64 = sqlx::query_scalar(sql).fetch_one(store.pool()).await.unwrap_or(-1);
        if n >= want || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The regression of issue 12: one NUL in a reason made the writer retry that row forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_store_refuses_for_good_is_dead_lettered_and_the_writes_after_it_land() {
    let dsn = fresh_database().await;
    let store = Store::connect_lazy(&secrecy::SecretString::from(dsn)).unwrap();
    store.migrate().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (spill, left, _) = writer::Spill::open(dir.path()).unwrap();
    assert!(left.is_empty());
    let (w, handle) = writer::channel(store.clone(), Arc::new(Metrics::new()), Some((spill, left)));
    let cancel = CancellationToken::new();
    let task = tokio::spawn(w.run(cancel.clone(), Duration::from_secs(5)));
    let mut rx = handle.subscribe();

    // PostgreSQL refuses a NUL in text (SQLSTATE 22021): permanent, whatever the retries.
    let sent = Instant::now();
    handle.send(audit("poison", "nul \u{0} here"));
    for i in 0..20 {
        handle.send(audit("after", &format!("after {i}")));
    }
    wait_status(&mut rx, "the first write after the poison to land", |s| s.written >= 1).await;
    // The figure of issue 12 (printed, not asserted: the machine is shared): from the poison's
    // send to the next write in the store, the dead-letter path included.
    let to_next = sent.elapsed();
    wait_status(&mut rx, "the 20 writes after the poison to land", |s| s.written >= 20 && s.pending == 0).await;
    let st = rx.borrow().clone();
    assert_eq!(st.dead_letters, 1, "{st:?}");
    let note = st.last_dead_letter.clone().expect("the dead letter is in the status");
    assert_eq!((note.kind.as_str(), note.kept_in), ("audit", "store"));
    assert!(note.error.contains("22021"), "the SQLSTATE is named: {}", note.error);
    assert!(st.reachable, "a refused write does not make the store look unreachable");

    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'after'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(after, 20);
    let letters = store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].kind, "audit");
    let payload: Value = serde_json::from_str(&letters[0].payload).expect("the payload is the write as JSON");
    assert_eq!(payload["record"]["outcome"], "nul \u{0} here", "the refused write is kept whole");
    eprintln!("durability: poison sent → dead-lettered → next write landed in {to_next:?}");

    // A constraint violation is permanent too: the table itself refuses the value.
    sqlx::query("ALTER TABLE audit_log ADD CONSTRAINT no_rejects CHECK (outcome <> 'reject me')")
        .execute(store.pool())
        .await
        .unwrap();
    handle.send(audit("refused", "reject me"));
    handle.send(audit("after-constraint", "fine"));
    wait_status(&mut rx, "the write after the constraint violation to land", |s| s.dead_letters == 2 && s.pending == 0)
        .await;
    assert!(rx.borrow().last_dead_letter.as_ref().unwrap().error.contains("23514"), "{:?}", rx.borrow());
    let landed: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'after-constraint'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(landed, 1);
    // Everything landed or dead-lettered: the spill file is empty again.
    assert_eq!(rx.borrow().spill.as_ref().map(|s| s.entries), Some(0), "{:?}", rx.borrow());
    cancel.cancel();
    task.await.unwrap();
}

/// The request from issue 12 gets a 400 naming the field, and the store keeps taking records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_request_with_a_nul_in_its_reason_is_refused_and_recording_goes_on() {
    let mut app = spawn_app(Spec { powerdns: false, ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(30)).await;
    let bad =
        json!({ "evacuate": "primary", "steps": [50], "dry_run": true, "hold_seconds": 1, "reason": "nul \u{0} here" });
    let (code, body) = app.post("/api/v1/drills", bad).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["field"], "reason", "{body}");
    assert!(body["error"].as_str().unwrap().contains("U+0000"), "{body}");
    let bell = json!({ "evacuate": "primary", "steps": [50], "dry_run": true, "reason": "ok", "note": "x" });
    let (code, _) = app.post("/api/v1/drills", bell).await;
    assert_eq!(code, 400, "unknown fields are still refused first");

    let good =
        json!({ "evacuate": "primary", "steps": [50], "dry_run": true, "hold_seconds": 1, "reason": "after the nul" });
    let (code, body) = app.post("/api/v1/drills", good).await;
    assert_eq!(code, 201, "{body}");
    // The audit row is sent once the response is made: poll the store for it.
    let after =
        count_within(&app.store, "SELECT count(*) FROM audit_log WHERE details->>'reason' = 'after the nul'", 1).await;
    assert_eq!(after, 1, "the next request's audit row is recorded");
    let refused = count_within(&app.store, "SELECT count(*) FROM audit_log WHERE outcome LIKE '400%'", 2).await;
    assert_eq!(refused, 2, "both refused requests are audited too (without the NUL)");
    assert_eq!(app.status.borrow().store.dead_letters, 0, "nothing reached the store that it had to refuse");
    app.shutdown().await;
}

// ---- a store outage with a kill in the middle -------------------------------------------

/// A real orchestrator process on the test's configuration.
struct Orchestrator {
    proc: tokio::process::Child,
    api: SocketAddr,
    log: PathBuf,
}

impl Orchestrator {
    async fn start(app: &TestApp, dir: &Path, name: &str) -> Orchestrator {
        let port = fo_lab::process::free_port([127, 0, 0, 1].into());
        let api: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let text = app.config_text.replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{api}\""));
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        let log = dir.join(format!("{name}.log"));
        let proc = tokio::process::Command::new(env!("CARGO_BIN_EXE_failover-orchestrator"))
            .args(["serve", "--config"])
            .arg(&path)
            .env(PDNS_KEY_ENV, &app.pdns_key)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("start the orchestrator binary");
        Orchestrator { proc, api, log }
    }

    async fn status(&self, http: &reqwest::Client, token: &str) -> Option<Value> {
        http.get(format!("http://{}/api/v1/status", self.api)).bearer_auth(token).send().await.ok()?.json().await.ok()
    }

    async fn wait(
        &self,
        http: &reqwest::Client,
        token: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.status(http, token).await
                && pred(&s)
            {
                return s;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("timed out waiting for {what}; last status {:?}; log:\n{log}", self.status(http, token).await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn weights_are(s: &Value, p: i64, st: i64, verified: bool) -> bool {
    let plan = &s["plan"];
    plan["weights"]["primary"] == p && plan["weights"]["standby"] == st && (!verified || !plan["verified_at"].is_null())
}

/// How a write read back from the spill file is found in the store.
fn lookup(kind: &str, record: &Value) -> Option<(String, Value)> {
    let by_id =
        |table: &str| Some((format!("SELECT count(*) FROM {table} WHERE id = $1::text::uuid"), record["id"].clone()));
    match kind {
        "plan" => Some(("SELECT count(*) FROM plans WHERE id = $1::text::uuid".into(), record["plan"]["id"].clone())),
        "audit" => by_id("audit_log"),
        "transition" => by_id("health_transitions"),
        "alarm" => by_id("alarms"),
        "drill" => by_id("drills"),
        "drill_event" => by_id("drill_events"),
        "operation" => by_id("operations"),
        "incident" => by_id("incidents"),
        "plan_outcome" => Some((
            "SELECT count(*) FROM plans WHERE id = $1::text::uuid AND outcome ? $2".into(),
            json!([record["plan_id"], record["provider"]]),
        )),
        _ => None,
    }
}

#[derive(Debug, Default)]
struct Figures {
    accepted: u64,
    spilled: u64,
    replayed: u64,
    checked: u64,
    lost: u64,
}

async fn store_outage_with(signal: &str) -> Figures {
    let mut pg = PgCluster::start_primary(
        &format!("it-outage-{}", signal.to_lowercase()),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        &PgOptions::default(),
    )
    .await
    .unwrap();
    pg.create_database("fo").await.unwrap();
    // The in-process orchestrator prepares the store, the zone and the apps; processes take over.
    let mut app = spawn_app(Spec { store_dsn: Some(pg.dsn_db("fo")), ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(30)).await;
    app.cancel.cancel();
    let task = std::mem::replace(&mut app.task, tokio::spawn(async { Ok(()) }));
    task.await.unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let (viewer, operator) = (app.tokens.viewer.clone(), app.tokens.operator.clone());

    let a = Orchestrator::start(&app, dir.path(), "a").await;
    a.wait(&http, &viewer, "the first orchestrator steady", Duration::from_secs(60), |s| weights_are(s, 80, 20, true))
        .await;

    // The store goes away for 60 s.
    let outage = Instant::now();
    pg.kill();
    // Operator requests during the outage (before the failover, while every region is up):
    // each is a drill row, drill events and an audit row.
    let mut reasons = Vec::new();
    for i in 0..3 {
        let reason = format!("outage drill {i} {}", uuid::Uuid::new_v4());
        let body = json!({ "evacuate": "standby", "target": "dr", "steps": [50], "dry_run": true, "reason": reason });
        let r = http
            .post(format!("http://{}/api/v1/drills", a.api))
            .bearer_auth(&operator)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap_or_default());
        reasons.push(reason);
    }
    let t0 = Utc::now();
    app.apps[0].kill().await;
    let failed_over = a
        .wait(&http, &viewer, "the failover, verified while the store is down", Duration::from_secs(30), |s| {
            weights_are(s, 0, 100, true) && s["store"]["reachable"] == false
        })
        .await;
    let plan_id = failed_over["plan"]["plan"]["id"].as_str().or(failed_over["plan"]["id"].as_str()).map(str::to_string);
    // Halfway through, the orchestrator is stopped or killed.
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(outage.elapsed())).await;
    let before = a.status(&http, &viewer).await.expect("status before the kill");
    let mut figures = Figures {
        accepted: before["store"]["accepted"].as_u64().unwrap_or(0),
        spilled: before["store"]["spill"]["entries"].as_u64().unwrap_or(0),
        ..Figures::default()
    };
    assert!(figures.spilled > 0, "writes wait in the spill file: {}", before["store"]);
    let mut a = a;
    let pid = a.proc.id().expect("a running orchestrator");
    fo_lab::process::send_signal(signal, pid).unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(20), a.proc.wait()).await.expect("exits").unwrap();
    if signal == "TERM" {
        assert!(exit.success(), "a graceful stop with the store down exits 0: {exit:?}");
    }
    let spill_dir = app.spill_dir.clone();
    let text = std::fs::read_to_string(spill_dir.join("spill.jsonl")).expect("the spill file survives the stop");
    let left: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!left.is_empty(), "the spill file holds the writes not yet stored");

    // The second orchestrator starts while the store is still down (15 s before it returns,
    // well within its 30 s wait for the store).
    tokio::time::sleep(Duration::from_secs(45).saturating_sub(outage.elapsed())).await;
    let b = Orchestrator::start(&app, dir.path(), "b").await;
    tokio::time::sleep(Duration::from_secs(60).saturating_sub(outage.elapsed())).await;
    pg.restart().await.unwrap();
    let after = b
        .wait(&http, &viewer, "the second orchestrator caught up", Duration::from_secs(60), |s| {
            weights_are(s, 0, 100, true) && s["store"]["reachable"] == true && s["store"]["pending"] == 0
        })
        .await;
    figures.replayed = after["store"]["spill"]["replayed"].as_u64().unwrap_or(0);
    assert!(figures.replayed >= left.len() as u64, "every spilled write was read back: {}", after["store"]);

    let store = Store::connect_lazy(&secrecy::SecretString::from(app.direct_store_dsn.clone())).unwrap();
    for line in &left {
        let kind = line["write"]["kind"].as_str().unwrap_or_default();
        let Some((sql, key)) = lookup(kind, &line["write"]["record"]) else { continue };
        figures.checked += 1;
        let n: i64 = if let Some(pair) = key.as_array() {
            sqlx::query_scalar(&sql)
                .bind(pair[0].as_str().unwrap_or_default())
                .bind(pair[1].as_str().unwrap_or_default())
                .fetch_one(store.pool())
                .await
                .unwrap()
        } else {
            sqlx::query_scalar(&sql).bind(key.as_str().unwrap_or_default()).fetch_one(store.pool()).await.unwrap()
        };
        if n != 1 {
            figures.lost += 1;
            eprintln!("durability: missing {kind}: {}", line["write"]);
        }
    }
    assert_eq!(figures.lost, 0, "every spilled write is in the store once: {figures:?}");
    for r in &reasons {
        for (table, column) in [("drills", "reason"), ("audit_log", "details->>'reason'")] {
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE {column} = $1"))
                .bind(r)
                .fetch_one(store.pool())
                .await
                .unwrap();
            assert_eq!(n, 1, "{table} holds `{r}` exactly once");
        }
    }
    if let Some(id) = plan_id {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM plans WHERE id = $1::text::uuid AND (weights->>'primary')::int = 0",
        )
        .bind(&id)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(n, 1, "the failover plan made during the outage is on record");
    }
    let downs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM health_transitions WHERE region = 'primary' AND to_health = 'down' AND at >= $1",
    )
    .bind(t0)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(downs >= 1, "the primary's fall, seen during the outage, is on record");
    eprintln!(
        "durability: store down 60 s, SIG{signal} at 30 s: {} writes made, {} in the spill file at the kill, {} replayed, {} checked in the store, {} lost",
        figures.accepted, figures.spilled, figures.replayed, figures.checked, figures.lost
    );
    let mut b = b;
    b.proc.start_kill().unwrap();
    b.proc.wait().await.unwrap();
    pg.stop().await.unwrap();
    figures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_with_a_sigterm_in_the_middle_loses_no_record() {
    store_outage_with("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_with_a_sigkill_in_the_middle_loses_no_record() {
    store_outage_with("KILL").await;
}
