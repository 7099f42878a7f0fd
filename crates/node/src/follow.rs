//! Following the chain for a core: a [`ChainWatcher`] turned into the
//! core's inputs, with the fallback for a reorganisation deeper than what
//! was watched. The runtime's chain poll and the simulator (`beongae-sim`)
//! both follow the chain with it.

use std::sync::Arc;

use beongae_chain::{BlockEvent, ChainError, ChainSource, ChainWatcher};

use crate::core::{Input, NodeCore};

/// After this many polls in a row fail because the chain reorganised below
/// the blocks watched, the follower starts again
/// [`DEEP_REORG_UNDO`] blocks below its tip.
const DEEP_REORG_POLLS: u32 = 3;

/// How far below its tip the follower starts again after a reorganisation
/// deeper than what it watched: the blocks in between are disconnected,
/// then connected again from the chain (the core takes blocks it saw again
/// in its stride).
const DEEP_REORG_UNDO: u32 = 100;

/// A chain watcher, the count of polls that failed in a row, and blocks
/// to disconnect before what the next poll finds.
#[derive(Debug, Clone)]
pub struct ChainFollower {
    watcher: ChainWatcher,
    failures: u32,
    undo: Vec<BlockEvent>,
}

impl ChainFollower {
    /// Follows from where `watcher` stands.
    pub fn new(watcher: ChainWatcher) -> ChainFollower {
        ChainFollower {
            watcher,
            failures: 0,
            undo: Vec::new(),
        }
    }

    /// Follows for a core that stands at `height` (`None`: it never
    /// followed a chain; it starts at `start`, the tip it was made at), having processed the
    /// `recent` blocks ([`crate::core::NodeCore::recent_blocks`]):
    /// - from those blocks, so that a reorganisation while it was down
    ///   is undone first;
    /// - without them (it stopped right after it started following, or
    ///   in the middle of the disconnections of a deep reorganisation),
    ///   the block at `height` is not known to be the chain's: it may
    ///   have been replaced, and the replacement's transactions would
    ///   never be seen. The follower starts [`DEEP_REORG_UNDO`] blocks
    ///   below, as after a deep reorganisation, and its first poll
    ///   disconnects the blocks down to there.
    pub fn start(
        source: &dyn ChainSource,
        recent: &[(u32, bitcoin::BlockHash)],
        height: Option<u32>,
        start: u32,
    ) -> Result<ChainFollower, ChainError> {
        if let Some(watcher) = ChainWatcher::resume(recent) {
            return Ok(ChainFollower::new(watcher));
        }
        let Some(height) = height else {
            return Ok(ChainFollower::new(ChainWatcher::starting_at(
                source, start,
            )?));
        };
        let from = height.saturating_sub(DEEP_REORG_UNDO);
        let mut follower = ChainFollower::new(ChainWatcher::starting_at(source, from)?);
        follower.undo = disconnections(from, height);
        Ok(follower)
    }

    /// Follows for `core` ([`ChainFollower::start`] with its blocks and
    /// height; `tip`, the chain's, where a core without channels starts),
    /// and tells a core that never followed the chain the block it starts
    /// at ([`NodeCore::starts_following_at`]).
    pub fn start_for(
        core: &mut NodeCore,
        source: &dyn ChainSource,
        tip: u32,
    ) -> Result<ChainFollower, ChainError> {
        let made_at = core.height().unwrap_or(tip);
        let follower = ChainFollower::start(
            source,
            &core.recent_blocks(),
            core.followed_height(),
            made_at,
        )?;
        let (height, hash) = follower.watcher.tip();
        core.starts_following_at(height, hash);
        Ok(follower)
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
                std::mem::take(&mut self.undo)
                    .into_iter()
                    .chain(events)
                    .collect()
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
                let mut events = std::mem::take(&mut self.undo);
                events.extend(disconnections(from, tip));
                events
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

/// Blocks `to` down to `from + 1` disconnected (their hashes are not
/// known, nor needed by the core).
fn disconnections(from: u32, to: u32) -> Vec<BlockEvent> {
    (from + 1..=to)
        .rev()
        .map(|height| BlockEvent::Disconnected {
            height,
            hash: <bitcoin::BlockHash as bitcoin::hashes::Hash>::all_zeros(),
        })
        .collect()
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

    /// Found by the simulator (seeds 2381, 2580, 5408): a node stopped in
    /// the middle of a deep reorganisation's disconnections had no block
    /// hashes left, resumed at its height with the chain's hash there,
    /// and never saw the transactions of the block that had replaced its
    /// own (there, the peer's commitment: its balance was never swept).
    #[test]
    fn a_core_without_the_hashes_of_its_blocks_resumes_a_hundred_below() {
        let chain = Mutex::new(Devnet::new());
        let a = ScriptBuf::new_op_return([1u8; 1]);
        let b = ScriptBuf::new_op_return([2u8; 1]);
        chain.lock().unwrap().mine(150, &a, 1_700_000_000);
        // The core stands at 148, its block 148 replaced since.
        chain.lock().unwrap().disconnect(3);
        chain.lock().unwrap().mine(4, &b, 1_700_000_000);
        let mut f = ChainFollower::start(&chain, &[], Some(148), 151).unwrap();
        assert_eq!(f.tip(), 48);
        let mut expected = vec![('^', 151)];
        expected.extend((49..=148).rev().map(|h| ('-', h)));
        expected.extend((49..=151).map(|h| ('+', h)));
        assert_eq!(heights(&f.poll(&chain).unwrap())[..], expected[..]);
        assert!(f.poll(&chain).unwrap().is_empty());
        // A core that never followed the chain starts where it was made.
        let f = ChainFollower::start(&chain, &[], None, 150).unwrap();
        assert_eq!(f.tip(), 150);
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
