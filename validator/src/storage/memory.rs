//! [`MemStore`]: the [`Store`] contract in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::{SignRecord, SignStep, Store, StoreError, WalRecord};
use crate::State;
use crate::consensus::message::CommittedBlock;
use crate::state::Hash;
use crate::state::tx::{TxStatus, tx_id};

#[derive(Debug, Default)]
struct Inner {
    blocks: BTreeMap<u64, CommittedBlock>,
    receipts: BTreeMap<u64, Vec<TxStatus>>,
    txs: HashMap<Hash, (u64, u32)>,
    state: Option<State>,
    wal: BTreeMap<u64, Vec<WalRecord>>,
    signed: BTreeMap<(u64, u32, SignStep), SignRecord>,
}

/// In-memory storage. Clones share the same data, so a simulation can "crash" an
/// engine (drop it) and restart a new one on the same store.
#[derive(Debug, Clone, Default)]
pub struct MemStore(Arc<Mutex<Inner>>);

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.0
            .lock()
            .map_err(|_| StoreError::Inconsistent("memory store lock poisoned".into()))
    }
}

impl Store for MemStore {
    fn last_committed(&self) -> Result<Option<(State, CommittedBlock)>, StoreError> {
        let inner = self.lock()?;
        match (&inner.state, inner.blocks.last_key_value()) {
            (Some(state), Some((_, block))) => Ok(Some((state.clone(), block.clone()))),
            _ => Ok(None),
        }
    }

    fn block(&self, height: u64) -> Result<Option<CommittedBlock>, StoreError> {
        Ok(self.lock()?.blocks.get(&height).cloned())
    }

    fn commit(
        &mut self,
        block: &CommittedBlock,
        state: &State,
        receipts: &[TxStatus],
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let height = block.block.header.height;
        inner.blocks.insert(height, block.clone());
        inner.receipts.insert(height, receipts.to_vec());
        for (i, tx) in block.block.txs.iter().enumerate() {
            // A transaction whose bytes cannot be encoded has no id; it was
            // refused in the block and cannot be asked about.
            if let (Ok(id), Ok(i)) = (tx_id(tx), u32::try_from(i)) {
                inner.txs.entry(id).or_insert((height, i));
            }
        }
        inner.state = Some(state.clone());
        inner.wal.retain(|h, _| *h > height);
        inner.signed.retain(|(h, _, _), _| *h > height);
        Ok(())
    }

    fn receipts(&self, height: u64) -> Result<Option<Vec<TxStatus>>, StoreError> {
        Ok(self.lock()?.receipts.get(&height).cloned())
    }

    fn tx_location(&self, id: &Hash) -> Result<Option<(u64, u32)>, StoreError> {
        Ok(self.lock()?.txs.get(id).copied())
    }

    fn wal_append(&mut self, height: u64, record: &WalRecord) -> Result<(), StoreError> {
        self.lock()?
            .wal
            .entry(height)
            .or_default()
            .push(record.clone());
        Ok(())
    }

    fn wal(&self, height: u64) -> Result<Vec<WalRecord>, StoreError> {
        Ok(self.lock()?.wal.get(&height).cloned().unwrap_or_default())
    }

    fn record_signed(&mut self, record: &SignRecord) -> Result<(), StoreError> {
        self.lock()?.signed.insert(record.slot(), record.clone());
        Ok(())
    }

    fn signed(&self) -> Result<Vec<SignRecord>, StoreError> {
        Ok(self.lock()?.signed.values().cloned().collect())
    }
}
