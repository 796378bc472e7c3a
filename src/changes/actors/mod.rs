//! Conversation actors (SC-1): one actix actor per live conversation, the single writer of that
//! conversation on this node. Each change — agent reply, note, property change, merge, end of
//! chat — is handled by the conversation's actor one at a time: it commits through the store,
//! publishes the resulting events (after the commit, never before), and re-arms the chat's
//! inactivity timer from the stored deadline.
//!
//! The [`Registry`] starts actors on demand on a small pool of actix arbiters and forgets them
//! when they stop (idle for [`conversation::IDLE`] with no timer pending); their state reloads
//! from the store. The [`sweeper`] ends chats whose stored deadline passed while no actor was
//! watching (a restart, a dead node) — the store's conditional update makes every end happen
//! exactly once however many timers and sweepers race for it.
//!
//! [`Registry::stop`] ends the arbiter threads and joins them (the last step of a node's stop,
//! after nothing sends to actors any more): each thread's runtime is dropped with its actors.

pub mod conversation;
pub mod sweeper;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use actix::{Actor, Addr, MailboxError};
use actix_rt::ArbiterHandle;
use dashmap::DashMap;
use tokio::sync::oneshot;
use tokio::time::Instant;

use self::conversation::{ConversationActor, Live};
use super::commit::Core;
use crate::shutdown::StopError;

pub struct Registry {
    actors: Arc<Live>,
    arbiters: Vec<ArbiterHandle>,
    /// Each arbiter thread: what ends it, and the thread to join ([`Self::stop`]).
    threads: Mutex<Vec<(oneshot::Sender<()>, JoinHandle<()>)>>,
    /// Arbiter threads not yet ended (their runtime and actors dropped).
    alive: Arc<AtomicUsize>,
}

/// Counts an arbiter thread down when it ends (declared before its system, so dropped after it).
struct Alive(Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Registry {
    /// Start `threads` arbiter threads to host the actors, each with one idle sweep over its own
    /// actors every [`conversation::SWEEP`] (one timer per thread rather than one per actor).
    pub fn new(threads: usize) -> anyhow::Result<Self> {
        let mut arbiters = Vec::new();
        let mut joins = Vec::new();
        let alive = Arc::new(AtomicUsize::new(0));
        for i in 0..threads.max(1) {
            let (tx, rx) = std::sync::mpsc::channel();
            let (stop, stopped) = oneshot::channel::<()>();
            alive.fetch_add(1, Ordering::SeqCst);
            let guard = Alive(alive.clone());
            let thread = std::thread::Builder::new().name(format!("switchboard-actors-{i}")).spawn(move || {
                let _alive = guard;
                let system = actix_rt::System::new();
                system.block_on(async move {
                    let _ = tx.send(actix_rt::Arbiter::current());
                    // Until `stop`: then the system, its runtime and every actor on it are dropped.
                    let _ = stopped.await;
                });
            })?;
            arbiters.push(rx.recv()?);
            joins.push((stop, thread));
        }
        let actors: Arc<Live> = Arc::new(DashMap::new());
        let n = arbiters.len();
        for (i, arbiter) in arbiters.iter().enumerate() {
            let actors = actors.clone();
            arbiter.spawn(async move {
                let mut tick = tokio::time::interval(conversation::SWEEP);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    // Collected first: the actors' `stopped` removes them from the map.
                    let mine: Vec<Addr<ConversationActor>> =
                        actors.iter().filter(|e| Self::slot(*e.key(), n) == i).map(|e| e.value().clone()).collect();
                    for addr in mine {
                        addr.do_send(conversation::StopIfIdle);
                    }
                }
            });
        }
        Ok(Self { actors, arbiters, threads: Mutex::new(joins), alive })
    }

    /// End the arbiter threads (dropping their actors) and join them, waiting until `deadline`.
    /// Call when nothing sends to actors any more; an actor asked afterwards answers
    /// `MailboxError::Closed`.
    pub async fn stop(&self, deadline: Instant) -> Result<(), StopError> {
        let threads: Vec<_> = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        let mut joins = Vec::with_capacity(threads.len());
        for (stop, thread) in threads {
            let _ = stop.send(());
            joins.push(thread);
        }
        let count = joins.len();
        let joined = tokio::task::spawn_blocking(move || {
            for thread in joins {
                let _ = thread.join();
            }
        });
        match tokio::time::timeout_at(deadline, joined).await {
            Ok(_) => Ok(()),
            Err(_) => Err(StopError::ThreadsOverran { threads: count }),
        }
    }

    /// How many arbiter threads are still running (0 after [`Self::stop`]).
    pub fn threads_running(&self) -> usize {
        self.alive.load(Ordering::SeqCst)
    }

    /// The arbiter of a conversation.
    fn slot(conversation_id: i64, arbiters: usize) -> usize {
        (conversation_id as usize) % arbiters
    }

    /// The actor of `conversation_id`, started if needed.
    pub fn get(&self, rt: &Core, conversation_id: i64) -> Addr<ConversationActor> {
        if let Some(addr) = self.actors.get(&conversation_id)
            && addr.connected()
        {
            return addr.clone();
        }
        let arbiter = &self.arbiters[Self::slot(conversation_id, self.arbiters.len())];
        let (rt, live) = (rt.clone(), self.actors.clone());
        let addr =
            ConversationActor::start_in_arbiter(arbiter, move |_| ConversationActor::new(conversation_id, rt, live));
        self.actors.insert(conversation_id, addr.clone());
        addr
    }

    /// How many conversations have a live actor on this node.
    pub fn len(&self) -> usize {
        self.actors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actors.is_empty()
    }
}

/// Send `msg` to a conversation's actor; if the actor stopped in between, start a fresh one and
/// send again (the message was not processed: a stopped actor's mailbox is dropped unread).
pub async fn ask<M>(rt: &Core, registry: &Registry, conversation_id: i64, msg: M) -> Result<M::Result, MailboxError>
where
    M: actix::Message + Send + Clone + 'static,
    M::Result: Send,
    ConversationActor: actix::Handler<M>,
{
    match registry.get(rt, conversation_id).send(msg.clone()).await {
        Err(MailboxError::Closed) => registry.get(rt, conversation_id).send(msg).await,
        other => other,
    }
}
