//! Coalescing of repeated work per key inside one process: while a pass for a key runs,
//! further requests for it only mark it dirty, and the running pass goes round again.
//! Used for admission, where one pass over an account admits every queued run it can, so a
//! burst of N new runs costs a few passes instead of N passes serialised on one row lock.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// Per-key "running / dirty" state.
#[derive(Debug, Default)]
pub struct Coalescer<K: Eq + Hash + Clone> {
    running: Mutex<HashMap<K, bool>>,
}

/// The right to run passes for one key; released when dropped.
#[derive(Debug)]
pub struct Turn<'a, K: Eq + Hash + Clone> {
    owner: &'a Coalescer<K>,
    key: K,
    held: bool,
}

impl<K: Eq + Hash + Clone> Coalescer<K> {
    pub fn new() -> Self {
        Self {
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Takes the turn for `key`, or, when a pass for it is running, marks it dirty and
    /// returns `None`: that pass will run once more, after everything seen so far.
    pub fn enter(&self, key: K) -> Option<Turn<'_, K>> {
        let mut map = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&key) {
            Some(dirty) => {
                *dirty = true;
                None
            }
            None => {
                map.insert(key.clone(), false);
                Some(Turn {
                    owner: self,
                    key,
                    held: true,
                })
            }
        }
    }
}

impl<K: Eq + Hash + Clone> Turn<'_, K> {
    /// After a pass: `true` when requests came in meanwhile (run another pass); `false`
    /// releases the key.
    pub fn again(&mut self) -> bool {
        let mut map = self.owner.running.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&self.key) {
            Some(dirty) if *dirty => {
                *dirty = false;
                true
            }
            _ => {
                map.remove(&self.key);
                self.held = false;
                false
            }
        }
    }
}

impl<K: Eq + Hash + Clone> Drop for Turn<'_, K> {
    fn drop(&mut self) {
        if self.held {
            let mut map = self.owner.running.lock().unwrap_or_else(|e| e.into_inner());
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_during_a_pass_cause_exactly_one_more_pass() {
        let c = Coalescer::new();
        let mut turn = c.enter("acct").expect("first caller runs");
        assert!(c.enter("acct").is_none(), "second caller only marks dirty");
        assert!(c.enter("acct").is_none());
        assert!(c.enter("other").is_some(), "other keys are independent");
        assert!(turn.again(), "dirty: one more pass");
        assert!(!turn.again(), "clean: released");
        drop(turn);
        assert!(c.enter("acct").is_some(), "free again");
    }

    #[test]
    fn a_failed_pass_releases_the_key() {
        let c = Coalescer::new();
        {
            let _turn = c.enter(1).expect("turn");
            assert!(c.enter(1).is_none());
        }
        assert!(c.enter(1).is_some());
    }
}
