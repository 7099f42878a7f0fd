//! Following the chain for a core: a [`ChainWatcher`] turned into the
//! core's inputs, with the fallback for a reorganisation deeper than what
//! was watched. The runtime's chain poll and the simulator (`beongae-sim`)
//! both follow the chain with it.

use std::sync::Arc;

use beongae_chain::{BlockEvent, ChainError, ChainSource, ChainWatcher};

use crate::core::Input;

/// After this many polls in a row fail because the chain reorganised below
/// the blocks watched, the follower starts again
/// [`DEEP_REORG_UNDO`] blocks below its tip.
const DEEP_REORG_POLLS: u32 = 3;

/// How far below its tip the follower starts again after a reorganisation
/// deeper than what it watched: the blocks in between are disconnected,
/// then connected again from the chain (the core takes blocks it saw again
/// in its stride).
const DEEP_REORG_UNDO: u32 = 100;

/// A chain watcher and the count of polls that failed in a row.
#[derive(Debug, Clone)]
pub struct ChainFollower {
    watcher: ChainWatcher,
    failures: u32,
}

impl ChainFollower {
    /// Follows from where `watcher` stands.
    pub fn new(watcher: ChainWatcher) -> ChainFollower {
        ChainFollower {
            watcher,
            failures: 0,
        }
    }

    /// The last block reported.
    pub fn tip(&self) -> u32 {
        self.watcher.tip().0
    }

    /// One poll of `source`: the inputs for the core, in order. When blocks
    /// changed, [`Input::ChainTip`] comes first (until the core has them
    /// all it knows it is behind), then each disconnected and connected
    /// block. On an error nothing changes (a poll that fails half-way must
    /// not leave the follower past blocks the core never received), except
    /// that the third failure in a row because the chain reorganised below
    /// what was watched starts again [`DEEP_REORG_UNDO`] blocks below the
    /// tip and returns the disconnections down to there.
    pub fn poll(&mut self, source: &dyn ChainSource) -> Result<Vec<Input>, ChainError> {
        let mut copy = self.watcher.clone();
        let events = match copy.poll(source) {
            Ok(events) => {
                self.watcher = copy;
                self.failures = 0;
                events
            }
            Err(e) => {
                self.failures += 1;
                let deep = e.to_string().contains("reorganised below");
                if !deep || self.failures < DEEP_REORG_POLLS {
                    return Err(e);
                }
                let tip = self.tip();
                let from = tip.saturating_sub(DEEP_REORG_UNDO);
                self.watcher = ChainWatcher::starting_at(source, from)?;
                self.failures = 0;
                (from + 1..=tip)
                    .rev()
                    .map(|height| BlockEvent::Disconnected {
                        height,
                        hash: <bitcoin::BlockHash as bitcoin::hashes::Hash>::all_zeros(),
                    })
                    .collect()
            }
        };
        let mut inputs = Vec::with_capacity(events.len() + 1);
        if !events.is_empty() {
            inputs.push(Input::ChainTip { height: self.tip() });
        }
        inputs.extend(events.into_iter().map(|e| match e {
            BlockEvent::Connected { height, block } => Input::BlockConnected {
                height,
                block: Arc::new(block),
            },
            BlockEvent::Disconnected { height, .. } => Input::BlockDisconnected { height },
        }));
        Ok(inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use beongae_chain::devnet::Devnet;
    use bitcoin::ScriptBuf;
    use std::sync::Mutex;

    fn heights(inputs: &[Input]) -> Vec<(char, u32)> {
        inputs
            .iter()
            .map(|i| match i {
                Input::ChainTip { height } => ('^', *height),
                Input::BlockConnected { height, .. } => ('+', *height),
                Input::BlockDisconnected { height } => ('-', *height),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_reorganisation_below_the_blocks_watched_starts_again_a_hundred_below() {
        let chain = Mutex::new(Devnet::new());
        let a = ScriptBuf::new_op_return([1u8; 1]);
        let b = ScriptBuf::new_op_return([2u8; 1]);
        chain.lock().unwrap().mine(150, &a, 1_700_000_000);
        let mut f = ChainFollower::new(ChainWatcher::starting_at(&chain, 148).unwrap());
        assert_eq!(
            heights(&f.poll(&chain).unwrap()),
            vec![('^', 150), ('+', 149), ('+', 150)]
        );
        assert!(f.poll(&chain).unwrap().is_empty());
        // Five blocks replaced by six: below block 148, where watching began.
        chain.lock().unwrap().disconnect(5);
        chain.lock().unwrap().mine(6, &b, 1_700_000_000);
        for _ in 0..2 {
            let e = f.poll(&chain).unwrap_err().to_string();
            assert!(e.contains("reorganised below height 148"), "{e}");
        }
        let mut expected = vec![('^', 50)];
        expected.extend((51..=150).rev().map(|h| ('-', h)));
        assert_eq!(heights(&f.poll(&chain).unwrap())[..], expected[..]);
        assert_eq!(f.tip(), 50);
        let next = heights(&f.poll(&chain).unwrap());
        assert_eq!(next[0], ('^', 151));
        assert_eq!(
            next[1..],
            (51..=151).map(|h| ('+', h)).collect::<Vec<_>>()[..]
        );
    }
}
