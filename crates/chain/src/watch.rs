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
