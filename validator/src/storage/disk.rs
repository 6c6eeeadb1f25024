//! [`DiskStore`]: the [`Store`] on [`redb`].
//!
//! Tables (values are postcard):
//!
//! | table | key | value |
//! |---|---|---|
//! | `blocks` | height | [`CommittedBlock`] |
//! | `receipts` | height | the block's receipts, `Vec<`[`TxStatus`]`>` |
//! | `txs` | transaction id | (height, index in the block) of its first inclusion |
//! | `meta` | `"state"` | the [`State`] after the last committed block |
//! | `wal` | (height, sequence) | [`WalRecord`] |
//! | `signed` | (height, round, step) | [`SignRecord`] |
//!
//! A block, its state and its receipts share one write transaction, so a
//! receipt is never missing for a stored block nor stored without it.
//!
//! Blocks and sign records commit with `Durability::Immediate` (redb's default):
//! `commit` returns only once the data is on disk, and redb's copy-on-write
//! commit makes each transaction all-or-nothing across a crash. WAL appends
//! commit without their own fsync and become durable with the next sign record
//! or block, which is at the latest before this validator's next vote leaves.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::{SignRecord, SignStep, Store, StoreError, WalRecord};
use crate::State;
use crate::consensus::message::CommittedBlock;
use crate::state::Hash;
use crate::state::tx::{TxStatus, tx_id};

const BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("blocks");
const RECEIPTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("receipts");
const TXS: TableDefinition<'_, &[u8; 32], (u64, u32)> = TableDefinition::new("txs");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const WAL: TableDefinition<'_, (u64, u64), &[u8]> = TableDefinition::new("wal");
const SIGNED: TableDefinition<'_, (u64, u32, u8), &[u8]> = TableDefinition::new("signed");

const STATE_KEY: &str = "state";

fn step_code(step: SignStep) -> u8 {
    match step {
        SignStep::Proposal => 0,
        SignStep::Prevote => 1,
        SignStep::Precommit => 2,
    }
}

fn dberr<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Database(e.into())
}

/// Chain storage in one redb file.
#[derive(Debug)]
pub struct DiskStore {
    db: Database,
}

impl DiskStore {
    /// Opens (or creates) the store at `path`.
    ///
    /// A new store is built under a temporary name and renamed into place, so a
    /// crash during the very first start never leaves a half-written file that
    /// later starts would refuse.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            let mut tmp = path.as_os_str().to_owned();
            tmp.push(".new");
            let tmp = std::path::PathBuf::from(tmp);
            let io = |e: std::io::Error| StoreError::Database(e.into());
            if tmp.exists() {
                std::fs::remove_file(&tmp).map_err(io)?;
            }
            drop(Self::init(Database::create(&tmp).map_err(dberr)?)?);
            std::fs::rename(&tmp, path).map_err(io)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                // Make the rename itself durable.
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io)?;
            }
        }
        Self::init(Database::create(path).map_err(dberr)?)
    }

    fn init(db: Database) -> Result<Self, StoreError> {
        let txn = db.begin_write().map_err(dberr)?;
        {
            // Create every table up front, so readers never meet a missing one.
            txn.open_table(BLOCKS).map_err(dberr)?;
            txn.open_table(RECEIPTS).map_err(dberr)?;
            txn.open_table(TXS).map_err(dberr)?;
            txn.open_table(META).map_err(dberr)?;
            txn.open_table(WAL).map_err(dberr)?;
            txn.open_table(SIGNED).map_err(dberr)?;
        }
        txn.commit().map_err(dberr)?;
        Ok(Self { db })
    }
}

impl Store for DiskStore {
    fn last_committed(&self) -> Result<Option<(State, CommittedBlock)>, StoreError> {
        let txn = self.db.begin_read().map_err(dberr)?;
        let meta = txn.open_table(META).map_err(dberr)?;
        let blocks = txn.open_table(BLOCKS).map_err(dberr)?;
        let state = match meta.get(STATE_KEY).map_err(dberr)? {
            Some(v) => postcard::from_bytes::<State>(v.value())?,
            None => return Ok(None),
        };
        let Some((_, block)) = blocks.last().map_err(dberr)? else {
            return Err(StoreError::Inconsistent("state without blocks".into()));
        };
        let block: CommittedBlock = postcard::from_bytes(block.value())?;
        if block.block.header.height != state.height() {
            return Err(StoreError::Inconsistent(format!(
                "state at height {} but last block at {}",
                state.height(),
                block.block.header.height
            )));
        }
        Ok(Some((state, block)))
    }

    fn block(&self, height: u64) -> Result<Option<CommittedBlock>, StoreError> {
        let txn = self.db.begin_read().map_err(dberr)?;
        let blocks = txn.open_table(BLOCKS).map_err(dberr)?;
        match blocks.get(height).map_err(dberr)? {
            Some(v) => Ok(Some(postcard::from_bytes(v.value())?)),
            None => Ok(None),
        }
    }

    fn commit(
        &mut self,
        block: &CommittedBlock,
        state: &State,
        receipts: &[TxStatus],
    ) -> Result<(), StoreError> {
        let height = block.block.header.height;
        let block_bytes = postcard::to_allocvec(block)?;
        let state_bytes = postcard::to_allocvec(state)?;
        let receipt_bytes = postcard::to_allocvec(receipts)?;
        // A transaction whose bytes cannot be encoded has no id; it was refused
        // in the block and cannot be asked about.
        let ids: Vec<(Hash, u32)> = block
            .block
            .txs
            .iter()
            .enumerate()
            .filter_map(|(i, tx)| Some((tx_id(tx).ok()?, u32::try_from(i).ok()?)))
            .collect();
        let txn = self.db.begin_write().map_err(dberr)?;
        {
            let mut blocks = txn.open_table(BLOCKS).map_err(dberr)?;
            blocks
                .insert(height, block_bytes.as_slice())
                .map_err(dberr)?;
            let mut stored = txn.open_table(RECEIPTS).map_err(dberr)?;
            stored
                .insert(height, receipt_bytes.as_slice())
                .map_err(dberr)?;
            let mut txs = txn.open_table(TXS).map_err(dberr)?;
            for (id, i) in &ids {
                // First inclusion wins: a later copy is a replay, refused.
                if txs.get(id).map_err(dberr)?.is_none() {
                    txs.insert(id, (height, *i)).map_err(dberr)?;
                }
            }
            let mut meta = txn.open_table(META).map_err(dberr)?;
            meta.insert(STATE_KEY, state_bytes.as_slice())
                .map_err(dberr)?;
            let mut wal = txn.open_table(WAL).map_err(dberr)?;
            wal.retain(|(h, _), _| h > height).map_err(dberr)?;
            let mut signed = txn.open_table(SIGNED).map_err(dberr)?;
            signed.retain(|(h, _, _), _| h > height).map_err(dberr)?;
        }
        txn.commit().map_err(dberr)?;
        Ok(())
    }

    fn receipts(&self, height: u64) -> Result<Option<Vec<TxStatus>>, StoreError> {
        let txn = self.db.begin_read().map_err(dberr)?;
        let receipts = txn.open_table(RECEIPTS).map_err(dberr)?;
        match receipts.get(height).map_err(dberr)? {
            Some(v) => Ok(Some(postcard::from_bytes(v.value())?)),
            None => Ok(None),
        }
    }

    fn tx_location(&self, id: &Hash) -> Result<Option<(u64, u32)>, StoreError> {
        let txn = self.db.begin_read().map_err(dberr)?;
        let txs = txn.open_table(TXS).map_err(dberr)?;
        Ok(txs.get(id).map_err(dberr)?.map(|v| v.value()))
    }

    fn wal_append(&mut self, height: u64, record: &WalRecord) -> Result<(), StoreError> {
        let bytes = postcard::to_allocvec(record)?;
        let mut txn = self.db.begin_write().map_err(dberr)?;
        // No fsync of its own: the next durable commit (a sign record, at the
        // latest before our next vote leaves, or a block) makes it durable. What a
        // crash can lose is only input received after our last signature, which
        // peers re-send; safety rests on the sign records, which are durable.
        txn.set_durability(Durability::None).map_err(dberr)?;
        {
            let mut wal = txn.open_table(WAL).map_err(dberr)?;
            let next = wal
                .range((height, 0)..=(height, u64::MAX))
                .map_err(dberr)?
                .next_back()
                .transpose()
                .map_err(dberr)?
                .map_or(0, |(k, _)| k.value().1.saturating_add(1));
            wal.insert((height, next), bytes.as_slice())
                .map_err(dberr)?;
        }
        txn.commit().map_err(dberr)?;
        Ok(())
    }

    fn wal(&self, height: u64) -> Result<Vec<WalRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(dberr)?;
        let wal = txn.open_table(WAL).map_err(dberr)?;
        let mut out = Vec::new();
        for entry in wal.range((height, 0)..=(height, u64::MAX)).map_err(dberr)? {
            let (_, v) = entry.map_err(dberr)?;
            out.push(postcard::from_bytes(v.value())?);
        }
        Ok(out)
    }

    fn record_signed(&mut self, record: &SignRecord) -> Result<(), StoreError> {
        let bytes = postcard::to_allocvec(record)?;
        let txn = self.db.begin_write().map_err(dberr)?;
        {
            let mut signed = txn.open_table(SIGNED).map_err(dberr)?;
            signed
                .insert(
                    (record.height, record.round, step_code(record.step)),
                    bytes.as_slice(),
                )
                .map_err(dberr)?;
        }
        txn.commit().map_err(dberr)?;
        Ok(())
    }

    fn signed(&self) -> Result<Vec<SignRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(dberr)?;
        let signed = txn.open_table(SIGNED).map_err(dberr)?;
        let mut out = Vec::new();
        for entry in signed.iter().map_err(dberr)? {
            let (_, v) = entry.map_err(dberr)?;
            out.push(postcard::from_bytes(v.value())?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::SignStep;

    #[test]
    fn a_half_created_store_from_a_crash_is_replaced_and_records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.redb");
        // What a crash during the first `create` leaves behind.
        std::fs::write(dir.path().join("chain.redb.new"), b"").unwrap();
        let mut store = DiskStore::open(&path).unwrap();
        assert!(store.last_committed().unwrap().is_none());
        let record = SignRecord {
            height: 3,
            round: 1,
            step: SignStep::Prevote,
            value: None,
            proposal: None,
        };
        store.record_signed(&record).unwrap();
        store
            .wal_append(
                3,
                &WalRecord::Timeout {
                    kind: malachitebft_core_types::TimeoutKind::Propose,
                    round: malachitebft_core_types::Round::new(1),
                },
            )
            .unwrap();
        drop(store);
        let store = DiskStore::open(&path).unwrap();
        assert_eq!(store.signed().unwrap(), vec![record]);
        assert_eq!(store.wal(3).unwrap().len(), 1);
        assert!(store.wal(4).unwrap().is_empty());
    }
}
