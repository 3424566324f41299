//! The messaging role: location service and page-mode instant messages.
//!
//! Owns: REGISTER processing ([`registrar`]), MESSAGE routing to every
//! registered contact of the target AOR (RFC 3428 §4, forked in parallel,
//! first 2xx wins), and store-and-forward for recipients with no contact
//! online ([`offline`]: queued, answered 202, delivered in order and once
//! when the recipient next registers).
//!
//! Must never: read or write SIP bytes (the edge does), or answer a sender
//! before the message is either accepted by a contact or written to the
//! store.

pub mod offline;
pub mod registrar;
mod route;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use api::{
    EdgeDelivery, MessageOutcome, Messaging, MessagingError, PageMessage, RegisterContacts,
    RegisterRequest, RegistrarError,
};
use async_trait::async_trait;
use sip::Aor;
use store::{Binding, Store};

pub use registrar::{Registrar, RegistrarConfig};

/// Messaging limits.
#[derive(Debug, Clone)]
pub struct MessagingConfig {
    pub registrar: RegistrarConfig,
    /// How long a forked MESSAGE waits for a 2xx before it is queued
    /// instead. Shorter than the sender's Timer F (32 s) so the sender
    /// hears from us first.
    pub delivery_timeout: Duration,
    /// How long a queued message waits for its recipient.
    pub offline_ttl: Duration,
    /// Queued messages per recipient (486 past it).
    pub offline_max_per_user: usize,
    /// `Some` for a provisioned user directory: other AORs get 404.
    /// `None` in the open default: any address may become a user.
    pub directory: Option<HashSet<Aor>>,
}

impl Default for MessagingConfig {
    fn default() -> Self {
        MessagingConfig {
            registrar: RegistrarConfig::default(),
            delivery_timeout: Duration::from_secs(10),
            offline_ttl: Duration::from_secs(7 * 24 * 3600),
            offline_max_per_user: 100,
            directory: None,
        }
    }
}

/// The messaging role's service, called by the edge through [`Messaging`].
/// Cheap to clone: background deliveries hold a clone.
#[derive(Clone)]
pub struct MessagingService {
    registrar: Arc<Registrar>,
    store: Arc<dyn Store>,
    delivery: Arc<dyn EdgeDelivery>,
    config: Arc<MessagingConfig>,
    flushes: Arc<offline::FlushLocks>,
}

impl MessagingService {
    pub fn new(
        store: Arc<dyn Store>,
        delivery: Arc<dyn EdgeDelivery>,
        config: MessagingConfig,
    ) -> Self {
        MessagingService {
            registrar: Arc::new(Registrar::new(store.clone(), config.registrar.clone())),
            store,
            delivery,
            config: Arc::new(config),
            flushes: Arc::default(),
        }
    }

    fn known(&self, aor: &Aor) -> bool {
        self.config
            .directory
            .as_ref()
            .is_none_or(|users| users.contains(aor))
    }
}

#[async_trait]
impl Messaging for MessagingService {
    async fn register(&self, request: RegisterRequest) -> Result<Vec<Binding>, RegistrarError> {
        if !self.known(&request.aor) {
            return Err(RegistrarError::NotFound);
        }
        let bindings = self.registrar.register(&request).await?;
        // A fresh binding is the moment a recipient comes online: hand
        // over what waited for it (RFC 3428 store and forward).
        if matches!(request.contacts, RegisterContacts::Update(_)) && !bindings.is_empty() {
            let this = self.clone();
            let aor = request.aor.clone();
            tokio::spawn(async move { this.flush_offline(&aor).await });
        }
        Ok(bindings)
    }

    async fn message(&self, message: PageMessage) -> Result<MessageOutcome, MessagingError> {
        if !self.known(&message.target) {
            return Err(MessagingError::NotFound);
        }
        // Keep order: while older messages wait in the queue, a new one
        // queues behind them rather than overtaking.
        if self.has_queued(&message.target).await? {
            self.enqueue(&message).await?;
            let this = self.clone();
            let aor = message.target.clone();
            tokio::spawn(async move { this.flush_offline(&aor).await });
            return Ok(MessageOutcome::Stored);
        }
        let contacts = self.registrar.lookup(&message.target).await?;
        if contacts.is_empty() {
            self.enqueue(&message).await?;
            return Ok(MessageOutcome::Stored);
        }
        let request = route::live_request(&message);
        match route::fork(
            &self.delivery,
            &contacts,
            request,
            self.config.delivery_timeout,
        )
        .await
        {
            route::ForkResult::Accepted(status) => Ok(MessageOutcome::Delivered { status }),
            route::ForkResult::Rejected { status, reason } => {
                Ok(MessageOutcome::Rejected { status, reason })
            }
            route::ForkResult::Unreachable => {
                // Every contact is stale or silent: keep it for the next
                // registration instead of losing it.
                self.enqueue(&message).await?;
                Ok(MessageOutcome::Stored)
            }
        }
    }
}
