//! The Redis store: one standalone Redis, or a Redis Cluster.
//!
//! Key layout and encoding: docs/decisions/0006-redis-store.md and
//! [`keys`]. Every change that touches more than one key runs as one Lua
//! script ([`scripts`]) over keys of one AOR (one hash tag). The one index
//! that spans AORs, the presentities of each Herald slot, is kept in the
//! same script on a standalone Redis and in ordered extra steps on a
//! cluster (see [`RedisStore::save_presence`]).
//!
//! Every call is bounded by [`RedisConfig::timeout`]; a failure to reach
//! Redis, a timeout or a cluster that is down is
//! [`StoreError::Unavailable`] (the edge answers 503), and the next call
//! after Redis is back goes through (the connections reconnect on their
//! own).

mod keys;
mod scripts;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClientBuilder;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, Pipeline, RedisError, RedisFuture, Script, Value};
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use sip::Aor;

use crate::{
    all_slots, slot_of, Binding, BindingSet, Credential, DocumentBase, MessageId,
    PublicationRecord, Store, StoreError, StoredDocument, StoredMessage, SubscriptionRecord,
    UnixTime,
};

/// Where the store connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One Redis server: `redis://host:port` (optionally with
    /// `user:password@` and a `/db`).
    Standalone(String),
    /// Seed nodes of a Redis Cluster (`redis://host:port` each); the
    /// client learns the others from them.
    Cluster(Vec<String>),
}

impl FromStr for RedisTarget {
    type Err = StoreError;

    /// `redis://host:port` is a standalone server.
    /// `redis+cluster://host1:port1,host2:port2` and a comma-separated list
    /// of `redis://` URLs are the seed nodes of a cluster (one seed is
    /// enough: `redis+cluster://host:port`).
    fn from_str(s: &str) -> Result<Self, StoreError> {
        let s = s.trim();
        let invalid = || StoreError::Unavailable(format!("invalid Redis address {s:?}"));
        if let Some(nodes) = s.strip_prefix("redis+cluster://") {
            let nodes: Vec<String> = nodes
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| format!("redis://{n}"))
                .collect();
            if nodes.is_empty() {
                return Err(invalid());
            }
            return Ok(RedisTarget::Cluster(nodes));
        }
        if s.contains(',') {
            let nodes: Vec<String> = s
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(String::from)
                .collect();
            if nodes.iter().any(|n| !n.starts_with("redis://")) {
                return Err(invalid());
            }
            return Ok(RedisTarget::Cluster(nodes));
        }
        if s.starts_with("redis://") {
            Ok(RedisTarget::Standalone(s.to_string()))
        } else {
            Err(invalid())
        }
    }
}

/// Bounds on waiting for Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisConfig {
    /// Longest one store call waits, reconnecting included; past it the
    /// call fails with [`StoreError::Unavailable`] (so a hung Redis gives a
    /// quick 503, not a hung transaction). Default 2 s.
    pub timeout: Duration,
    /// Longest one attempt to open a connection to a node waits.
    /// Default 1 s.
    pub connect_timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
        }
    }
}

/// [`Store`] in Redis, standalone or Redis Cluster, one type for both.
///
/// `RedisStore::connect("redis://127.0.0.1:6379")` connects to one server
/// through a [`ConnectionManager`] (one multiplexed connection that
/// reconnects by itself). `RedisStore::connect("redis+cluster://10.0.0.1:7000,10.0.0.2:7000")`
/// (or `"redis://10.0.0.1:7000,redis://10.0.0.2:7000"`) connects to a
/// Redis Cluster through a [`ClusterConnection`], which follows slot moves
/// and reconnects to nodes. See [`RedisTarget`] for the forms.
///
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    config: RedisConfig,
    /// The presence ownership epoch this store writes with (0 until
    /// [`Store::take_epoch`]); clones share it.
    epoch: Arc<AtomicU64>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.conn {
            Conn::Standalone(_) => "standalone",
            Conn::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("kind", &kind)
            .field("config", &self.config)
            .field("epoch", &self.epoch.load(Ordering::SeqCst))
            .finish()
    }
}

#[derive(Clone)]
enum Conn {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Standalone(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Standalone(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// How many requests `presentities_in_slots` keeps in flight on a cluster
/// (one SMEMBERS per slot index, each in its own Redis slot).
const CLUSTER_SCAN_TASKS: usize = 16;
/// Slot indexes read per pipeline on a standalone Redis.
const STANDALONE_SCAN_BATCH: usize = 256;

impl RedisStore {
    /// Connects with the default [`RedisConfig`]; `target` as in
    /// [`RedisTarget`]'s `FromStr`.
    pub async fn connect(target: &str) -> Result<RedisStore, StoreError> {
        Self::connect_with(target.parse()?, RedisConfig::default()).await
    }

    /// Connects to `target`, waiting at most `config.timeout` for the
    /// first connection (a cluster also reads its slot map then).
    pub async fn connect_with(
        target: RedisTarget,
        config: RedisConfig,
    ) -> Result<RedisStore, StoreError> {
        let connecting = async {
            match target {
                RedisTarget::Standalone(url) => {
                    let client = ::redis::Client::open(url.as_str())?;
                    // Short, few retries: a call waits on a reconnect in
                    // progress, and it must end within `config.timeout`;
                    // when the retries are used up the next call starts
                    // a new reconnect.
                    let manager_config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(config.connect_timeout))
                        .set_response_timeout(Some(config.timeout))
                        .set_number_of_retries(3)
                        .set_min_delay(Duration::from_millis(50))
                        .set_max_delay(Duration::from_millis(400));
                    let manager =
                        ConnectionManager::new_with_config(client, manager_config).await?;
                    Ok(Conn::Standalone(manager))
                }
                RedisTarget::Cluster(nodes) => {
                    let client = ClusterClientBuilder::new(nodes)
                        .connection_timeout(config.connect_timeout)
                        .response_timeout(config.timeout)
                        .retries(3)
                        .min_retry_wait(20)
                        .max_retry_wait(400)
                        .build()?;
                    Ok(Conn::Cluster(client.get_async_connection().await?))
                }
            }
        };
        let conn = bounded(config.timeout, async {
            connecting.await.map_err(unavailable)
        })
        .await?;
        Ok(RedisStore {
            conn,
            config,
            epoch: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    /// Runs `op` with this store's time bound.
    async fn bounded<T>(
        &self,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        bounded(self.config.timeout, op).await
    }

    async fn query<T: ::redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn).await.map_err(unavailable)
    }

    async fn invoke<T: ::redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let mut conn = self.conn.clone();
        invocation
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    /// Writes one presence record (`field` in `hash`, `other` being the
    /// presentity's other hash) and keeps the slot index.
    ///
    /// Standalone: one script does both. Cluster: the index is in another
    /// slot, so it is written in separate steps, ordered so that a
    /// presentity with state is never missing from the index once every
    /// acknowledged call has finished: an index entry is added alongside
    /// every write (so a retried write after a crash restores it) and
    /// again after a write that found the presentity empty; a delete that
    /// empties it removes the entry and then looks again, putting it back
    /// if a write came in between (see [`Self::delete_presence`]). What can
    /// remain is a stale entry (a crash between emptying and removing),
    /// which `presentities()` callers tolerate.
    async fn save_presence(
        &self,
        presentity: &Aor,
        hash: &str,
        other: &str,
        field: &str,
        record: Vec<u8>,
        replaces: Option<&str>,
    ) -> Result<(), StoreError> {
        let aor = presentity.as_str().as_bytes();
        let index = keys::presentities_in_slot(slot_of(presentity));
        let epoch_key = keys::presence_epoch(presentity);
        let replaces = replaces.unwrap_or("").as_bytes();
        let epoch = self.epoch();
        let epoch_arg = epoch.to_string();
        let args: [&[u8]; 5] = [
            field.as_bytes(),
            &record,
            aor,
            replaces,
            epoch_arg.as_bytes(),
        ];
        if !self.is_cluster() {
            let was_empty: i64 = self
                .invoke(
                    &scripts::SAVE_PRESENCE,
                    &[hash, other, &epoch_key, &index],
                    &args,
                )
                .await?;
            return fenced(presentity, epoch, was_empty).map(drop);
        }
        let add = Cmd::sadd(&index, aor);
        let keys = [hash, other, &epoch_key];
        let (was_empty, _added) = tokio::try_join!(
            self.invoke::<i64>(&scripts::SAVE_PRESENCE, &keys, &args),
            self.query::<i64>(&add),
        )?;
        // Fenced: the index entry added alongside is a stale one at worst
        // (tolerated), and the presentity has state anyway (its owner's).
        if fenced(presentity, epoch, was_empty)? == 1 {
            let _: i64 = self.query(&add).await?;
        }
        Ok(())
    }

    /// Deletes one presence record and, when the presentity is left with
    /// none, its slot index entry (standalone: in the same script; cluster:
    /// remove, look again, re-add if a write came in meanwhile).
    async fn delete_presence(
        &self,
        presentity: &Aor,
        hash: &str,
        other: &str,
        field: &str,
    ) -> Result<(), StoreError> {
        let aor = presentity.as_str().as_bytes();
        let index = keys::presentities_in_slot(slot_of(presentity));
        let epoch_key = keys::presence_epoch(presentity);
        let epoch = self.epoch();
        let epoch_arg = epoch.to_string();
        let args: [&[u8]; 3] = [field.as_bytes(), aor, epoch_arg.as_bytes()];
        if !self.is_cluster() {
            let left: i64 = self
                .invoke(
                    &scripts::DELETE_PRESENCE,
                    &[hash, other, &epoch_key, &index],
                    &args,
                )
                .await?;
            return fenced(presentity, epoch, left).map(drop);
        }
        let left: i64 = self
            .invoke(&scripts::DELETE_PRESENCE, &[hash, other, &epoch_key], &args)
            .await?;
        if fenced(presentity, epoch, left)? == 0 {
            let _: i64 = self.query(&Cmd::srem(&index, aor)).await?;
            let exists: i64 = self.query(&Cmd::exists(&[hash, other])).await?;
            if exists > 0 {
                let _: i64 = self.query(&Cmd::sadd(&index, aor)).await?;
            }
        }
        Ok(())
    }

    /// The epoch presence writes carry now.
    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// The members of the slot indexes of `slots`, as they are stored.
    async fn index_members(&self, slots: &[u16]) -> Result<Vec<String>, StoreError> {
        let timeout = self.config.timeout;
        let mut members = Vec::new();
        match &self.conn {
            Conn::Standalone(_) => {
                for batch in slots.chunks(STANDALONE_SCAN_BATCH) {
                    let mut pipe = ::redis::pipe();
                    for slot in batch {
                        pipe.smembers(keys::presentities_in_slot(*slot));
                    }
                    let mut conn = self.conn.clone();
                    let sets: Vec<Vec<String>> = bounded(timeout, async {
                        pipe.query_async(&mut conn).await.map_err(unavailable)
                    })
                    .await?;
                    members.extend(sets.into_iter().flatten());
                }
            }
            Conn::Cluster(_) => {
                // Each index key is in its own Redis slot and the client
                // refuses cross-slot pipelines: several tasks each read
                // their share one key at a time over the shared connection.
                let mut tasks = tokio::task::JoinSet::new();
                let share = slots.len().div_ceil(CLUSTER_SCAN_TASKS).max(1);
                for part in slots.chunks(share) {
                    let part = part.to_vec();
                    let mut conn = self.conn.clone();
                    tasks.spawn(async move {
                        let mut found = Vec::new();
                        for slot in part {
                            let cmd = Cmd::smembers(keys::presentities_in_slot(slot));
                            let set: Vec<String> = bounded(timeout, async {
                                cmd.query_async(&mut conn).await.map_err(unavailable)
                            })
                            .await?;
                            found.extend(set);
                        }
                        Ok::<_, StoreError>(found)
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    let found = done.map_err(|e| {
                        StoreError::Unavailable(format!("reading the slot indexes failed: {e}"))
                    })??;
                    members.extend(found);
                }
            }
        }
        Ok(members)
    }
}

/// `op`, or [`StoreError::Unavailable`] once `limit` has passed.
async fn bounded<T>(
    limit: Duration,
    op: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, op).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Unavailable(format!(
            "no answer from Redis within {limit:?}"
        ))),
    }
}

/// A presence script's answer: a negative one is minus the epoch of the
/// owner that fenced this writer off.
fn fenced(presentity: &Aor, epoch: u64, answer: i64) -> Result<i64, StoreError> {
    if answer < 0 {
        Err(StoreError::Fenced {
            aor: presentity.clone(),
            epoch,
            owner_epoch: answer.unsigned_abs(),
        })
    } else {
        Ok(answer)
    }
}

/// Every Redis error is the store being unavailable to the caller: the
/// connection, a timeout, a cluster that is down or moving, or a reply the
/// store cannot use. All of them are worth a 503 and a retry, none a panic.
fn unavailable(e: RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value)
        .map_err(|e| StoreError::Unavailable(format!("cannot encode a record: {e}")))
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Unavailable(format!("undecodable record in {key}: {e}")))
}

#[async_trait]
impl Store for RedisStore {
    async fn bindings(&self, aor: &Aor, now: UnixTime) -> Result<BindingSet, StoreError> {
        let key = keys::bindings(aor);
        self.bounded(async {
            let (version, encoded): (Option<String>, Option<Vec<u8>>) =
                self.query(&Cmd::hmget(&key, &["v", "b"])).await?;
            let Some(version) = version else {
                return Ok(BindingSet::default());
            };
            let version = version.parse().map_err(|_| {
                StoreError::Unavailable(format!("undecodable version in {key}: {version:?}"))
            })?;
            let mut bindings: Vec<Binding> = match encoded {
                Some(bytes) => decode(&key, &bytes)?,
                None => Vec::new(),
            };
            bindings.retain(|b| b.expires_at > now);
            Ok(BindingSet { bindings, version })
        })
        .await
    }

    async fn replace_bindings(
        &self,
        aor: &Aor,
        version: u64,
        bindings: Vec<Binding>,
    ) -> Result<(), StoreError> {
        let key = keys::bindings(aor);
        let encoded = if bindings.is_empty() {
            Vec::new()
        } else {
            encode(&bindings)?
        };
        let latest = bindings.iter().map(|b| b.expires_at.0).max().unwrap_or(0);
        let (version, latest) = (version.to_string(), latest.to_string());
        self.bounded(async {
            let written: i64 = self
                .invoke(
                    &scripts::REPLACE_BINDINGS,
                    &[&key],
                    &[version.as_bytes(), &encoded, latest.as_bytes()],
                )
                .await?;
            if written == 1 {
                Ok(())
            } else {
                Err(StoreError::Conflict(aor.clone()))
            }
        })
        .await
    }

    async fn enqueue_message(
        &self,
        aor: &Aor,
        message: StoredMessage,
        max_queued: usize,
    ) -> Result<(), StoreError> {
        let queue = keys::queue(aor);
        let expiry = keys::queue_expiry(aor);
        let last_id = keys::last_message_id(aor);
        // The id is the hash field; the one in the record is not read.
        let encoded = encode(&StoredMessage {
            id: MessageId(0),
            ..message
        })?;
        let now = message.received_at.0.to_string();
        let expires = message.expires_at.0.to_string();
        let max = max_queued.to_string();
        self.bounded(async {
            let id: Option<String> = self
                .invoke(
                    &scripts::ENQUEUE_MESSAGE,
                    &[&queue, &expiry, &last_id],
                    &[now.as_bytes(), expires.as_bytes(), max.as_bytes(), &encoded],
                )
                .await?;
            match id {
                Some(_) => Ok(()),
                None => Err(StoreError::QueueFull(aor.clone())),
            }
        })
        .await
    }

    async fn queued_messages(
        &self,
        aor: &Aor,
        now: UnixTime,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let key = keys::queue(aor);
        self.bounded(async {
            let stored: HashMap<String, Vec<u8>> = self.query(&Cmd::hgetall(&key)).await?;
            let mut messages = Vec::with_capacity(stored.len());
            for (id, bytes) in stored {
                let id = id.parse().map_err(|_| {
                    StoreError::Unavailable(format!("undecodable message id in {key}: {id:?}"))
                })?;
                let mut message: StoredMessage = decode(&key, &bytes)?;
                if message.expires_at > now {
                    message.id = MessageId(id);
                    messages.push(message);
                }
            }
            messages.sort_by_key(|m| m.id);
            Ok(messages)
        })
        .await
    }

    async fn remove_message(&self, aor: &Aor, id: MessageId) -> Result<(), StoreError> {
        let keys = [
            keys::queue(aor),
            keys::queue_expiry(aor),
            keys::last_message_id(aor),
        ];
        let id = id.0.to_string();
        self.bounded(async {
            let _: i64 = self
                .invoke(
                    &scripts::REMOVE_MESSAGE,
                    &[&keys[0], &keys[1], &keys[2]],
                    &[id.as_bytes()],
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn save_publication(
        &self,
        presentity: &Aor,
        record: PublicationRecord,
    ) -> Result<(), StoreError> {
        let encoded = encode(&record)?;
        let pubs = keys::publications(presentity);
        let subs = keys::subscriptions(presentity);
        self.bounded(self.save_presence(presentity, &pubs, &subs, &record.etag, encoded, None))
            .await
    }

    /// One script: the new record in, the old one out.
    async fn replace_publication(
        &self,
        presentity: &Aor,
        record: PublicationRecord,
        replaces: &str,
    ) -> Result<(), StoreError> {
        let encoded = encode(&record)?;
        let pubs = keys::publications(presentity);
        let subs = keys::subscriptions(presentity);
        self.bounded(self.save_presence(
            presentity,
            &pubs,
            &subs,
            &record.etag,
            encoded,
            Some(replaces),
        ))
        .await
    }

    async fn delete_publication(&self, presentity: &Aor, etag: &str) -> Result<(), StoreError> {
        let pubs = keys::publications(presentity);
        let subs = keys::subscriptions(presentity);
        self.bounded(self.delete_presence(presentity, &pubs, &subs, etag))
            .await
    }

    async fn save_subscription(
        &self,
        presentity: &Aor,
        record: SubscriptionRecord,
    ) -> Result<(), StoreError> {
        let encoded = encode(&record)?;
        let pubs = keys::publications(presentity);
        let subs = keys::subscriptions(presentity);
        let id = record.id.to_string();
        self.bounded(self.save_presence(presentity, &subs, &pubs, &id, encoded, None))
            .await
    }

    async fn save_notify_counters(
        &self,
        presentity: &Aor,
        id: u64,
        notify_cseq: u32,
        winfo_version: u32,
    ) -> Result<(), StoreError> {
        let subs = keys::subscriptions(presentity);
        let epoch_key = keys::presence_epoch(presentity);
        let epoch = self.epoch();
        let (id, cseq, winfo, epoch_arg) = (
            id.to_string(),
            notify_cseq.to_string(),
            winfo_version.to_string(),
            epoch.to_string(),
        );
        self.bounded(async {
            let updated: i64 = self
                .invoke(
                    &scripts::SAVE_NOTIFY_COUNTERS,
                    &[&subs, &epoch_key],
                    &[
                        id.as_bytes(),
                        cseq.as_bytes(),
                        winfo.as_bytes(),
                        epoch_arg.as_bytes(),
                    ],
                )
                .await?;
            fenced(presentity, epoch, updated).map(drop)
        })
        .await
    }

    /// `INCR pres:epoch`: one counter for every process on this Redis.
    async fn take_epoch(&self) -> Result<Option<u64>, StoreError> {
        let taken: u64 = self
            .bounded(self.query(&Cmd::incr(keys::PRESENCE_EPOCHS, 1)))
            .await?;
        // Two takes finishing out of order still leave the higher one.
        self.epoch.fetch_max(taken, Ordering::SeqCst);
        Ok(Some(self.epoch()))
    }

    async fn claim_presentity(&self, presentity: &Aor) -> Result<(), StoreError> {
        let epoch_key = keys::presence_epoch(presentity);
        let pubs = keys::publications(presentity);
        let subs = keys::subscriptions(presentity);
        let epoch = self.epoch();
        let epoch_arg = epoch.to_string();
        self.bounded(async {
            let claimed: i64 = self
                .invoke(
                    &scripts::CLAIM_PRESENCE,
                    &[&epoch_key, &pubs, &subs],
                    &[epoch_arg.as_bytes()],
                )
                .await?;
            fenced(presentity, epoch, claimed).map(drop)
        })
        .await
    }

    async fn delete_subscription(&self, presentity: &Aor, id: u64) -> Result<(), StoreError> {
        let pubs = keys::publications(presentity);
        let subs = keys::subscriptions(presentity);
        let id = id.to_string();
        self.bounded(self.delete_presence(presentity, &subs, &pubs, &id))
            .await
    }

    async fn presence_state(
        &self,
        presentity: &Aor,
    ) -> Result<(Vec<PublicationRecord>, Vec<SubscriptionRecord>), StoreError> {
        let pubs_key = keys::publications(presentity);
        let subs_key = keys::subscriptions(presentity);
        self.bounded(async {
            // Both hashes in one slot: read them in one MULTI so they agree.
            let mut pipe = ::redis::pipe();
            pipe.atomic().hgetall(&pubs_key).hgetall(&subs_key);
            let mut conn = self.conn.clone();
            let (pubs, subs): (HashMap<String, Vec<u8>>, HashMap<String, Vec<u8>>) =
                pipe.query_async(&mut conn).await.map_err(unavailable)?;
            let mut publications = pubs
                .values()
                .map(|bytes| decode::<PublicationRecord>(&pubs_key, bytes))
                .collect::<Result<Vec<_>, _>>()?;
            publications.sort_by(|a, b| a.etag.cmp(&b.etag));
            let mut subscriptions = subs
                .values()
                .map(|bytes| decode::<SubscriptionRecord>(&subs_key, bytes))
                .collect::<Result<Vec<_>, _>>()?;
            subscriptions.sort_by_key(|s| s.id);
            Ok((publications, subscriptions))
        })
        .await
    }

    async fn presentities(&self) -> Result<Vec<Aor>, StoreError> {
        self.presentities_in_slots(&all_slots()).await
    }

    async fn presentities_in_slots(&self, slots: &[u16]) -> Result<Vec<Aor>, StoreError> {
        let mut aors: Vec<Aor> = self
            .index_members(slots)
            .await?
            .iter()
            // Only Herald writes the index, from `Aor::as_str`, which
            // parses back; anything else is not a presentity of ours.
            .filter_map(|s| s.parse().ok())
            .collect();
        aors.sort();
        aors.dedup();
        Ok(aors)
    }

    /// The credential hash first, then the index (another slot on a
    /// cluster): a crash in between leaves a user the index misses until
    /// the next `put`, never an index entry hiding a deleted user's HA1.
    async fn put_credential(&self, aor: &Aor, credential: Credential) -> Result<(), StoreError> {
        let key = keys::credentials(aor);
        let encoded = encode(&credential)?;
        self.bounded(async {
            let _: i64 = self
                .query(&Cmd::hset(&key, &credential.realm, encoded))
                .await?;
            let _: i64 = self
                .query(&Cmd::sadd(keys::CREDENTIAL_USERS, aor.as_str()))
                .await?;
            Ok(())
        })
        .await
    }

    async fn credentials(&self, aor: &Aor) -> Result<Vec<Credential>, StoreError> {
        let key = keys::credentials(aor);
        self.bounded(async {
            let stored: HashMap<String, Vec<u8>> = self.query(&Cmd::hgetall(&key)).await?;
            let mut list = stored
                .values()
                .map(|bytes| decode::<Credential>(&key, bytes))
                .collect::<Result<Vec<_>, _>>()?;
            list.sort_by(|a, b| a.realm.cmp(&b.realm));
            Ok(list)
        })
        .await
    }

    async fn delete_credentials(&self, aor: &Aor) -> Result<bool, StoreError> {
        let key = keys::credentials(aor);
        self.bounded(async {
            let deleted: i64 = self.query(&Cmd::del(&key)).await?;
            let _: i64 = self
                .query(&Cmd::srem(keys::CREDENTIAL_USERS, aor.as_str()))
                .await?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn credential_users(&self) -> Result<Vec<Aor>, StoreError> {
        self.bounded(async {
            let members: Vec<String> = self.query(&Cmd::smembers(keys::CREDENTIAL_USERS)).await?;
            let mut aors: Vec<Aor> = members.iter().filter_map(|s| s.parse().ok()).collect();
            aors.sort();
            Ok(aors)
        })
        .await
    }

    async fn document(&self, user: &Aor, path: &str) -> Result<Option<StoredDocument>, StoreError> {
        let key = keys::document(user, path);
        self.bounded(async {
            let (etag, content): (Option<String>, Option<Vec<u8>>) = self
                .query(::redis::cmd("HMGET").arg(&key).arg("e").arg("c"))
                .await?;
            Ok(match (etag, content) {
                (Some(etag), Some(content)) => Some(StoredDocument { etag, content }),
                _ => None,
            })
        })
        .await
    }

    async fn put_document(
        &self,
        user: &Aor,
        path: &str,
        base: DocumentBase<'_>,
        document: StoredDocument,
    ) -> Result<(), StoreError> {
        let key = keys::document(user, path);
        let base = match base {
            DocumentBase::Absent => "",
            DocumentBase::Etag(etag) => etag,
        };
        let args: [&[u8]; 3] = [base.as_bytes(), document.etag.as_bytes(), &document.content];
        let written: i64 = self
            .bounded(self.invoke(&scripts::WRITE_DOCUMENT, &[&key], &args))
            .await?;
        if written == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict(user.clone()))
        }
    }

    async fn delete_document(&self, user: &Aor, path: &str, etag: &str) -> Result<(), StoreError> {
        let key = keys::document(user, path);
        let args: [&[u8]; 3] = [etag.as_bytes(), b"", b""];
        let written: i64 = self
            .bounded(self.invoke(&scripts::WRITE_DOCUMENT, &[&key], &args))
            .await?;
        if written == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict(user.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            "redis://127.0.0.1:6379".parse(),
            Ok(RedisTarget::Standalone("redis://127.0.0.1:6379".into()))
        );
        assert_eq!(
            "redis+cluster://a:7000, b:7001".parse(),
            Ok(RedisTarget::Cluster(vec![
                "redis://a:7000".into(),
                "redis://b:7001".into()
            ]))
        );
        assert_eq!(
            "redis://a:7000,redis://b:7001".parse(),
            Ok(RedisTarget::Cluster(vec![
                "redis://a:7000".into(),
                "redis://b:7001".into()
            ]))
        );
        assert!("127.0.0.1:6379".parse::<RedisTarget>().is_err());
        assert!("redis+cluster://".parse::<RedisTarget>().is_err());
        assert!("redis://a:1,b:2".parse::<RedisTarget>().is_err());
    }
}
