//! Turning a [`ChainSource`] into a stream of connected and disconnected
//! blocks, for any source (the devnet or Bitcoin Core): poll the tip, find
//! where our view and the source's best chain fork, and report the blocks
//! to undo and the blocks to apply, in order.

use bitcoin::{Block, BlockHash};

use crate::{ChainError, ChainSource};

/// A change of the best chain.
#[derive(Debug, Clone, PartialEq)]
pub enum BlockEvent {
    /// A block joined the best chain.
    Connected {
        /// Its height.
        height: u32,
        /// The block.
        block: Block,
    },
    /// A block left the best chain (reorg); reported tip first.
    Disconnected {
        /// Its height.
        height: u32,
        /// Its hash.
        hash: BlockHash,
    },
}

/// Follows a chain source's best chain from a starting block.
#[derive(Debug, Clone)]
pub struct ChainWatcher {
    /// Height of `hashes[0]`.
    base: u32,
    /// Our view of the best chain from `base` up.
    hashes: Vec<BlockHash>,
}

impl ChainWatcher {
    /// Starts at the source's block at `height` (events begin after it).
    pub fn starting_at(source: &dyn ChainSource, height: u32) -> Result<Self, ChainError> {
        let hash = source.block_hash(height)?.ok_or_else(|| {
            ChainError::Unavailable(format!("no block at height {height} to start from"))
        })?;
        Ok(ChainWatcher {
            base: height,
            hashes: vec![hash],
        })
    }

    /// Resumes from the blocks a node processed before it stopped
    /// (`(height, hash)`, lowest first, consecutive): the first poll
    /// disconnects those the source's chain no longer has (a reorganisation
    /// while the node was down), then connects the new ones. `None` if
    /// `blocks` is empty or not consecutive.
    pub fn resume(blocks: &[(u32, BlockHash)]) -> Option<Self> {
        let base = blocks.first()?.0;
        if blocks
            .windows(2)
            .any(|w| w[0].0.checked_add(1) != Some(w[1].0))
        {
            return None;
        }
        Some(ChainWatcher {
            base,
            hashes: blocks.iter().map(|(_, h)| *h).collect(),
        })
    }

    /// The last block we reported.
    pub fn tip(&self) -> (u32, BlockHash) {
        (
            self.base + self.hashes.len() as u32 - 1,
            *self.hashes.last().expect("never empty"),
        )
    }

    /// What changed since the last poll.
    pub fn poll(&mut self, source: &dyn ChainSource) -> Result<Vec<BlockEvent>, ChainError> {
        let (tip_height, tip_hash) = source.tip()?;
        let mut events = Vec::new();
        if tip_hash == self.tip().1 {
            return Ok(events);
        }
        // The highest block we share with the source's chain.
        let mut fork = self.tip().0.min(tip_height);
        if fork < self.base {
            // A source behind where we started (resumed) from, e.g. still
            // syncing: wait for it (not a reorganisation, as far as we know).
            return Err(ChainError::Unavailable(format!(
                "the chain source's tip {tip_height} is below height {} where following the chain started; waiting for it to catch up",
                self.base
            )));
        }
        while fork > self.base
            && source.block_hash(fork)? != Some(self.hashes[(fork - self.base) as usize])
        {
            fork -= 1;
        }
        if source.block_hash(fork)? != Some(self.hashes[(fork - self.base) as usize]) {
            return Err(ChainError::Unavailable(format!(
                "the chain reorganised below height {} where watching started",
                self.base
            )));
        }
        while self.tip().0 > fork {
            let (height, hash) = self.tip();
            self.hashes.pop();
            events.push(BlockEvent::Disconnected { height, hash });
        }
        for height in fork + 1..=tip_height {
            let Some(hash) = source.block_hash(height)? else {
                break;
            };
            let Some(block) = source.block(&hash)? else {
                break;
            };
            if block.header.prev_blockhash != self.tip().1 {
                break; // the chain moved while we read it; the next poll continues
            }
            self.hashes.push(hash);
            events.push(BlockEvent::Connected { height, block });
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devnet::Devnet;
    use bitcoin::ScriptBuf;
    use std::sync::Mutex;

    fn heights(events: &[BlockEvent]) -> Vec<(char, u32)> {
        events
            .iter()
            .map(|e| match e {
                BlockEvent::Connected { height, .. } => ('+', *height),
                BlockEvent::Disconnected { height, .. } => ('-', *height),
            })
            .collect()
    }

    #[test]
    fn connects_then_follows_a_reorg() {
        let chain = Mutex::new(Devnet::new());
        let spk = ScriptBuf::new_op_return([1u8; 1]);
        let mut w = ChainWatcher::starting_at(&chain, 0).unwrap();
        assert!(w.poll(&chain).unwrap().is_empty());
        chain.lock().unwrap().mine(3, &spk, 1_700_000_000);
        assert_eq!(
            heights(&w.poll(&chain).unwrap()),
            vec![('+', 1), ('+', 2), ('+', 3)]
        );
        assert!(w.poll(&chain).unwrap().is_empty());

        // Replace blocks 2 and 3 with a longer branch.
        let old3 = chain.lock().unwrap().tip_hash();
        chain.lock().unwrap().disconnect(2);
        chain
            .lock()
            .unwrap()
            .mine(3, &ScriptBuf::new_op_return([2u8; 1]), 1_700_000_100);
        let events = w.poll(&chain).unwrap();
        assert_eq!(
            heights(&events),
            vec![('-', 3), ('-', 2), ('+', 2), ('+', 3), ('+', 4)]
        );
        assert_eq!(
            events[0],
            BlockEvent::Disconnected {
                height: 3,
                hash: old3
            }
        );
        assert_eq!(w.tip(), (4, chain.lock().unwrap().tip_hash()));
    }

    /// A node stopped at block 4 of a chain that was then reorganised
    /// from block 3: resuming from its blocks disconnects 4 and 3 (tip
    /// first) before connecting the new branch; from the same blocks on an
    /// unchanged chain only the new blocks come.
    #[test]
    fn resuming_undoes_a_reorg_that_happened_meanwhile() {
        let chain = Mutex::new(Devnet::new());
        let spk = ScriptBuf::new_op_return([1u8; 1]);
        chain.lock().unwrap().mine(4, &spk, 1_700_000_000);
        let seen: Vec<(u32, BlockHash)> = {
            let d = chain.lock().unwrap();
            (1..=4)
                .map(|h| (h, d.block_at(h).unwrap().block_hash()))
                .collect()
        };
        assert!(ChainWatcher::resume(&[]).is_none());
        assert!(ChainWatcher::resume(&[seen[0], seen[2]]).is_none());
        let mut same = ChainWatcher::resume(&seen).unwrap();
        assert_eq!(same.tip(), seen[3]);
        chain.lock().unwrap().mine(1, &spk, 1_700_000_000);
        assert_eq!(heights(&same.poll(&chain).unwrap()), vec![('+', 5)]);
        chain.lock().unwrap().disconnect(3);
        chain
            .lock()
            .unwrap()
            .mine(3, &ScriptBuf::new_op_return([2u8; 1]), 1_700_000_100);
        let mut w = ChainWatcher::resume(&seen).unwrap();
        let events = w.poll(&chain).unwrap();
        assert_eq!(
            heights(&events),
            vec![('-', 4), ('-', 3), ('+', 3), ('+', 4), ('+', 5)]
        );
        assert_eq!(
            events[0],
            BlockEvent::Disconnected {
                height: 4,
                hash: seen[3].1
            }
        );
    }

    /// A source whose tip is below the blocks resumed from (a node still
    /// syncing) is waited for with an error, not a reorganisation; once it
    /// catches up, nothing is disconnected.
    #[test]
    fn a_source_behind_the_resumed_blocks_is_waited_for() {
        let ahead = Mutex::new(Devnet::new());
        let spk = ScriptBuf::new_op_return([1u8; 1]);
        ahead.lock().unwrap().mine(6, &spk, 1_700_000_000);
        let seen: Vec<(u32, BlockHash)> = {
            let d = ahead.lock().unwrap();
            (4..=6)
                .map(|h| (h, d.block_at(h).unwrap().block_hash()))
                .collect()
        };
        let mut w = ChainWatcher::resume(&seen).unwrap();
        let behind = Mutex::new(Devnet::new());
        behind.lock().unwrap().mine(2, &spk, 1_700_000_000);
        let e = w.poll(&behind).unwrap_err().to_string();
        assert!(
            e.contains("the chain source's tip 2 is below height 4"),
            "{e}"
        );
        assert!(!e.contains("reorganised below"));
        ahead.lock().unwrap().mine(1, &spk, 1_700_000_000);
        assert_eq!(heights(&w.poll(&ahead).unwrap()), vec![('+', 7)]);
    }

    #[test]
    fn reorg_below_the_start_is_an_error() {
        let chain = Mutex::new(Devnet::new());
        let spk = ScriptBuf::new_op_return([1u8; 1]);
        chain.lock().unwrap().mine(5, &spk, 1_700_000_000);
        let mut w = ChainWatcher::starting_at(&chain, 4).unwrap();
        chain.lock().unwrap().disconnect(3);
        chain
            .lock()
            .unwrap()
            .mine(4, &ScriptBuf::new_op_return([2u8; 1]), 1_700_000_100);
        assert!(matches!(w.poll(&chain), Err(ChainError::Unavailable(_))));
    }
}
