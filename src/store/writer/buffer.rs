//! The writer's in-memory queue: arrival order, and what may give way when it is full.
//!
//! Plans, transitions, alarms, audit rows, operations, drills, holds, incidents and
//! maintenance are **kept**: they are never dropped to make room, whatever the outage's
//! length (the spill file holds them too). Lag sample batches are **thinnable**: when the
//! queue reaches its capacity, every other lag batch still queued is dropped (the series
//! keeps its span at half the resolution), and the count per kind is reported. When nothing
//! thinnable is left, the queue grows past its capacity rather than lose a kept write.
//!
//! No I/O: the writer task owns one and drives it.

use std::collections::{BTreeMap, VecDeque};

use tokio::sync::oneshot;

use crate::store::Write;

/// One queued write and who waits for it.
pub(crate) struct Item {
    /// The write.
    pub(crate) write: Write,
    /// Fired once the write is durable.
    pub(crate) ack: Option<oneshot::Sender<()>>,
    /// Whether it is in the spill file.
    pub(crate) spilled: bool,
}

/// Whether a write may be thinned out of a full buffer.
pub(crate) fn thinnable(w: &Write) -> bool {
    matches!(w, Write::LagSamples(_))
}

/// The queue.
pub(crate) struct Buffer {
    items: VecDeque<Item>,
    capacity: usize,
    thinnable: usize,
    thinned: BTreeMap<&'static str, u64>,
}

impl Buffer {
    /// An empty queue that thins once it holds `capacity` writes.
    pub(crate) fn new(capacity: usize) -> Self {
        Self { items: VecDeque::new(), capacity: capacity.max(2), thinnable: 0, thinned: BTreeMap::new() }
    }

    /// Queues `item` last, thinning first when the queue is full.
    pub(crate) fn push(&mut self, item: Item) {
        if self.items.len() >= self.capacity && self.thinnable > 0 {
            self.thin();
        }
        if thinnable(&item.write) {
            self.thinnable += 1;
        }
        self.items.push_back(item);
    }

    /// Drops every other thinnable write (the older of each pair), keeping the newest.
    fn thin(&mut self) {
        let mut seen = 0usize;
        let total = self.thinnable;
        let mut dropped = 0u64;
        let mut kind = "";
        self.items.retain(|i| {
            if !thinnable(&i.write) {
                return true;
            }
            seen += 1;
            // Keep the newest thinnable write so the series reaches the present.
            let keep = seen.is_multiple_of(2) || seen == total;
            if !keep {
                dropped += 1;
                kind = i.write.kind();
            }
            keep
        });
        self.thinnable -= dropped as usize;
        if dropped > 0 {
            *self.thinned.entry(kind).or_default() += dropped;
        }
    }

    /// The oldest write.
    pub(crate) fn front(&self) -> Option<&Item> {
        self.items.front()
    }

    /// Removes and returns the oldest write.
    pub(crate) fn pop(&mut self) -> Option<Item> {
        let item = self.items.pop_front()?;
        if thinnable(&item.write) {
            self.thinnable -= 1;
        }
        Some(item)
    }

    /// Whether every queued write is in the spill file.
    pub(crate) fn all_spilled(&self) -> bool {
        self.items.iter().all(|i| i.spilled)
    }

    /// Acknowledges every queued write that is durable in the spill file (kept writes are
    /// fsynced when spilled; lag samples are not, and are never waited for).
    pub(crate) fn ack_spilled(&mut self) {
        for i in self.items.iter_mut().filter(|i| i.spilled && !thinnable(&i.write)) {
            if let Some(ack) = i.ack.take() {
                let _ = ack.send(());
            }
        }
    }

    /// Writes queued.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Writes thinned out since start, per kind.
    pub(crate) fn thinned(&self) -> &BTreeMap<&'static str, u64> {
        &self.thinned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AuditRecord;
    use chrono::Utc;
    use proptest::prelude::*;

    fn audit(n: u32) -> Write {
        Write::Audit(AuditRecord {
            id: uuid::Uuid::from_u128(u128::from(n)),
            at: Utc::now(),
            actor: "t".into(),
            action: format!("a{n}"),
            target: None,
            outcome: "ok".into(),
            request_id: None,
            details: serde_json::json!({}),
        })
    }

    fn lag() -> Write {
        Write::LagSamples(Vec::new())
    }

    fn item(write: Write) -> Item {
        Item { write, ack: None, spilled: false }
    }

    #[test]
    fn a_full_buffer_thins_lag_samples_and_keeps_every_audit_row() {
        let mut b = Buffer::new(10);
        for _ in 0..8 {
            b.push(item(lag()));
        }
        for n in 0..5 {
            b.push(item(audit(n)));
        }
        let audits = b.items.iter().filter(|i| matches!(i.write, Write::Audit(_))).count();
        assert_eq!(audits, 5);
        assert_eq!(b.thinned().get("lag_samples"), Some(&4));
        assert_eq!(b.len(), 9);
    }

    #[test]
    fn with_nothing_thinnable_the_buffer_grows_past_its_capacity() {
        let mut b = Buffer::new(4);
        for n in 0..50 {
            b.push(item(audit(n)));
        }
        assert_eq!(b.len(), 50);
        assert!(b.thinned().is_empty());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(bool),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![3 => any::<bool>().prop_map(Op::Push), 1 => Just(Op::Pop)]
    }

    proptest! {
        #[test]
        fn kept_writes_are_never_dropped_and_keep_their_order(cap in 2usize..40, ops in proptest::collection::vec(op(), 0..400)) {
            let mut b = Buffer::new(cap);
            let mut next = 0u32;
            let mut popped = Vec::new();
            let mut pushed = Vec::new();
            for o in ops {
                match o {
                    Op::Push(is_lag) => {
                        if is_lag { b.push(item(lag())) } else { pushed.push(next); b.push(item(audit(next))) }
                        next += 1;
                    }
                    Op::Pop => if let Some(i) = b.pop()
                        && let Write::Audit(a) = i.write { popped.push(a.id.as_u128() as u32) },
                }
                // The count of thinnable writes stays true.
                prop_assert_eq!(b.thinnable, b.items.iter().filter(|i| thinnable(&i.write)).count());
                // Past capacity only by kept writes (and the few newest lag batches).
                let kept = b.len() - b.thinnable;
                prop_assert!(b.len() <= cap.max(kept + 3), "{} queued, capacity {}, {} kept", b.len(), cap, kept);
            }
            while let Some(i) = b.pop() {
                if let Write::Audit(a) = i.write { popped.push(a.id.as_u128() as u32) }
            }
            prop_assert_eq!(popped, pushed);
        }
    }
}
