//! The admitted runs this process is sending to AMC (`jobs::admit`), each with the lease
//! it holds. They are in no job of the queue, so a hard stop hands them back itself: a
//! submit step per run, carrying its lease, which another worker takes over at once (as
//! a handed-back step job would be).

use chrono::{DateTime, Utc};
use common::ids::ExecutionId;
use common::jobs::SubmitJob;
use queue::Producer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The runs on their way to AMC and their leases; cheap to clone.
#[derive(Clone, Default)]
pub struct Sending(Arc<Mutex<HashMap<ExecutionId, DateTime<Utc>>>>);

/// A run on its way to AMC; leaves the set when dropped.
pub struct OnItsWay {
    set: Sending,
    id: ExecutionId,
}

impl Sending {
    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<ExecutionId, DateTime<Utc>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `id`, leased until `lease`, is on its way to AMC.
    pub fn hold(&self, id: ExecutionId, lease: DateTime<Utc>) -> OnItsWay {
        self.runs().insert(id, lease);
        OnItsWay {
            set: self.clone(),
            id,
        }
    }

    /// Pushes a submit step for every run still on its way, carrying its lease; returns
    /// how many went out.
    pub async fn hand_back(&self, producer: &Producer) -> usize {
        let jobs: Vec<SubmitJob> = self
            .runs()
            .iter()
            .map(|(id, lease)| SubmitJob::new(*id, Some(*lease)))
            .collect();
        if jobs.is_empty() {
            return 0;
        }
        match producer.enqueue_batch(&jobs).await {
            Ok(_) => jobs.len(),
            Err(e) => {
                tracing::warn!(error = %e, runs = jobs.len(), "could not hand back the runs on their way to AMC; the reconciler takes them once their leases run out");
                0
            }
        }
    }
}

impl OnItsWay {
    /// Its lease was renewed until `lease`.
    pub fn renewed(&self, lease: DateTime<Utc>) {
        self.set.runs().insert(self.id, lease);
    }
}

impl Drop for OnItsWay {
    fn drop(&mut self) {
        self.set.runs().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_leaves_the_set_when_it_arrives() {
        let set = Sending::default();
        let id = ExecutionId(uuid::Uuid::now_v7());
        let t = Utc::now();
        let way = set.hold(id, t);
        assert_eq!(set.runs().len(), 1);
        way.renewed(t + chrono::Duration::seconds(5));
        assert_eq!(
            set.runs().get(&id),
            Some(&(t + chrono::Duration::seconds(5)))
        );
        drop(way);
        assert!(set.runs().is_empty());
    }
}
