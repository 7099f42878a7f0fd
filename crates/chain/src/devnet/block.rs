//! Regtest block assembly: coinbase (BIP 34 height, witness commitment),
//! merkle roots and proof of work at the regtest target.

use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::hashes::Hash;
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::transaction::Version;
use bitcoin::{
    absolute::LockTime, Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence,
    Transaction, TxIn, TxMerkleNode, TxOut, Witness,
};

/// Regtest's proof-of-work limit (`nBits` 0x207fffff).
pub const REGTEST_BITS: u32 = 0x207f_ffff;

/// Regtest halves the subsidy every 150 blocks.
pub const HALVING_INTERVAL: u32 = 150;

/// The block subsidy at `height`: 50 BTC halved every 150 blocks.
pub fn subsidy(height: u32) -> Amount {
    let halvings = height / HALVING_INTERVAL;
    if halvings >= 64 {
        return Amount::ZERO;
    }
    Amount::from_sat((50 * 100_000_000) >> halvings)
}

/// The coinbase of block `height` paying `reward` to `script_pubkey`, with the
/// witness commitment output filled in later by [`assemble`].
fn coinbase(height: u32, reward: Amount, script_pubkey: ScriptBuf) -> Transaction {
    // BIP 34: the height first; then a tag so the scriptSig is at least 2 bytes.
    let script_sig = Builder::new()
        .push_int(i64::from(height))
        .push_slice(PushBytesBuf::try_from(b"beongae devnet".to_vec()).expect("14 bytes"))
        .into_script();
    let mut witness = Witness::new();
    witness.push([0u8; 32]); // witness reserved value
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig,
            sequence: Sequence::MAX,
            witness,
        }],
        output: vec![TxOut {
            value: reward,
            script_pubkey,
        }],
    }
}

/// Assembles and mines a block on `prev` at `height` with `txs` (already
/// validated, parents before children) and the coinbase paying
/// `subsidy + fees` to `script_pubkey`.
pub fn assemble(
    prev: BlockHash,
    height: u32,
    time: u32,
    txs: Vec<Transaction>,
    fees: Amount,
    script_pubkey: ScriptBuf,
) -> Block {
    let mut txdata = Vec::with_capacity(txs.len() + 1);
    txdata.push(coinbase(height, subsidy(height) + fees, script_pubkey));
    txdata.extend(txs);
    let mut block = Block {
        header: Header {
            version: BlockVersion::from_consensus(0x2000_0000),
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::all_zeros(),
            time,
            bits: CompactTarget::from_consensus(REGTEST_BITS),
            nonce: 0,
        },
        txdata,
    };
    // BIP 141 witness commitment: OP_RETURN aa21a9ed || SHA256d(witness root || reserved).
    let witness_root = block.witness_root().expect("block has a coinbase");
    let commitment = Block::compute_witness_commitment(&witness_root, &[0u8; 32]);
    let mut script = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
    script.extend_from_slice(commitment.as_byte_array());
    block.txdata[0].output.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: ScriptBuf::from_bytes(script),
    });
    block.header.merkle_root = block.compute_merkle_root().expect("block has transactions");
    let target = block.header.target();
    while !target.is_met_by(block.header.block_hash()) {
        block.header.nonce = block.header.nonce.wrapping_add(1);
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsidy_halves_every_150_blocks() {
        assert_eq!(subsidy(0), Amount::from_btc(50.0).unwrap());
        assert_eq!(subsidy(149), Amount::from_btc(50.0).unwrap());
        assert_eq!(subsidy(150), Amount::from_btc(25.0).unwrap());
        assert_eq!(subsidy(300), Amount::from_btc(12.5).unwrap());
        assert_eq!(subsidy(150 * 64), Amount::ZERO);
    }

    #[test]
    fn assembled_blocks_are_valid() {
        let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
        let block = assemble(
            genesis.block_hash(),
            1,
            genesis.header.time + 1,
            vec![],
            Amount::ZERO,
            ScriptBuf::new_op_return([1u8; 4]),
        );
        assert!(block.check_merkle_root());
        assert!(block.check_witness_commitment());
        assert!(block.header.validate_pow(block.header.target()).is_ok());
        // BIP 34 as Bitcoin Core writes it: `CScript() << height`, which is
        // OP_1 for height 1 (rust-bitcoin's parser only reads data pushes).
        assert_eq!(block.txdata[0].input[0].script_sig.as_bytes()[0], 0x51);
        let tall = assemble(
            genesis.block_hash(),
            300,
            0,
            vec![],
            Amount::ZERO,
            ScriptBuf::new(),
        );
        assert_eq!(tall.bip34_block_height(), Ok(300));
        assert_eq!(block.txdata[0].output[0].value, subsidy(1));
    }
}
