//! Everything that flows into the console besides the terminal: the store's listing, the
//! control loop's reports, discovery state, request events, and the results of background work.

use super::app::Msg;
use crate::control::reconcile::Report;
use crate::discovery::fds::DiscoveryState;
use crate::gateway::telemetry::RequestEvent;
use crate::store::Listing;
use std::sync::Arc;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc, watch};

pub struct Feeds {
    listing: Option<watch::Receiver<Arc<Listing>>>,
    reports: Option<watch::Receiver<Arc<Report>>>,
    discovery: Option<watch::Receiver<Arc<DiscoveryState>>>,
    events: Option<broadcast::Receiver<RequestEvent>>,
    internal: Option<mpsc::UnboundedReceiver<Msg>>,
}

impl Feeds {
    pub fn new(
        listing: watch::Receiver<Arc<Listing>>,
        reports: watch::Receiver<Arc<Report>>,
        discovery: watch::Receiver<Arc<DiscoveryState>>,
        events: broadcast::Receiver<RequestEvent>,
        internal: mpsc::UnboundedReceiver<Msg>,
    ) -> Feeds {
        Feeds {
            listing: Some(listing),
            reports: Some(reports),
            discovery: Some(discovery),
            events: Some(events),
            internal: Some(internal),
        }
    }

    /// The current state of every watch, to start from.
    pub fn initial(&mut self) -> Vec<Msg> {
        let mut v = Vec::new();
        if let Some(l) = &mut self.listing {
            v.push(Msg::Listing(l.borrow_and_update().clone()));
        }
        if let Some(r) = &mut self.reports {
            v.push(Msg::Report(r.borrow_and_update().clone()));
        }
        if let Some(d) = &mut self.discovery {
            v.push(Msg::Discovery(d.borrow_and_update().clone()));
        }
        v
    }

    /// The next message; waits (forever, if every source has closed).
    pub async fn next(&mut self) -> Msg {
        loop {
            tokio::select! {
                r = changed(&mut self.listing) => match r {
                    Some(v) => return Msg::Listing(v),
                    None => self.listing = None,
                },
                r = changed(&mut self.reports) => match r {
                    Some(v) => return Msg::Report(v),
                    None => self.reports = None,
                },
                r = changed(&mut self.discovery) => match r {
                    Some(v) => return Msg::Discovery(v),
                    None => self.discovery = None,
                },
                r = recv_event(&mut self.events) => match r {
                    Ok(e) => return Msg::Request(Box::new(e)),
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => self.events = None,
                },
                m = recv_internal(&mut self.internal) => match m {
                    Some(m) => return m,
                    None => self.internal = None,
                },
            }
        }
    }

    /// A message that is ready now, if any.
    pub fn try_next(&mut self) -> Option<Msg> {
        if let Some(m) = self.internal.as_mut().and_then(|r| r.try_recv().ok()) {
            return Some(m);
        }
        if let Some(e) = &mut self.events {
            loop {
                match e.try_recv() {
                    Ok(ev) => return Some(Msg::Request(Box::new(ev))),
                    Err(TryRecvError::Lagged(_)) => continue,
                    Err(_) => break,
                }
            }
        }
        if let Some(l) = &mut self.listing
            && l.has_changed().unwrap_or(false)
        {
            return Some(Msg::Listing(l.borrow_and_update().clone()));
        }
        if let Some(r) = &mut self.reports
            && r.has_changed().unwrap_or(false)
        {
            return Some(Msg::Report(r.borrow_and_update().clone()));
        }
        if let Some(d) = &mut self.discovery
            && d.has_changed().unwrap_or(false)
        {
            return Some(Msg::Discovery(d.borrow_and_update().clone()));
        }
        None
    }
}

async fn changed<T: Clone>(rx: &mut Option<watch::Receiver<T>>) -> Option<T> {
    match rx {
        Some(r) => match r.changed().await {
            Ok(()) => Some(r.borrow_and_update().clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

async fn recv_event(
    rx: &mut Option<broadcast::Receiver<RequestEvent>>,
) -> Result<RequestEvent, RecvError> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_internal(rx: &mut Option<mpsc::UnboundedReceiver<Msg>>) -> Option<Msg> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}
