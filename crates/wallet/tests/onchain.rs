//! The on-chain wallet against the devnet: funded by mining, paying out with
//! transactions the devnet's mempool (Bitcoin Core's interpreter) accepts,
//! restored from its mnemonic, and rescanned after a reorg.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use beongae_chain::devnet::Devnet;
use beongae_chain::ChainSource;
use beongae_script::FeeratePerKw;
use beongae_wallet::{OnchainWallet, Seed, WalletError};
use bitcoin::{Amount, Network, NetworkKind};

const T0: u32 = 1_700_000_000;

fn wallet(seed: &Seed) -> OnchainWallet {
    OnchainWallet::new(&seed.master_key(NetworkKind::Test), Network::Regtest).unwrap()
}

/// A wallet mined 101 blocks on a P2TR address (two coinbase outputs
/// mature, the rest not), which then paid itself one P2WPKH coin of 1 BTC,
/// confirmed: coins of both kinds.
fn mixed_wallet(entropy: u8) -> (Mutex<Devnet>, OnchainWallet) {
    use beongae_wallet::AddressKind;
    let chain = Mutex::new(Devnet::new());
    let mut w = wallet(&Seed::from_entropy([entropy; 32]));
    let tr = w.new_address_of(AddressKind::P2tr).script_pubkey();
    chain.lock().unwrap().mine(101, &tr, T0);
    w.sync(&chain).unwrap();
    let wpkh = w.new_address_of(AddressKind::P2wpkh).script_pubkey();
    let tx = w
        .pay_to(wpkh, Amount::from_btc(1.0).unwrap(), FeeratePerKw(2500))
        .unwrap();
    chain.broadcast(&tx).unwrap();
    w.note_broadcast(tx, u64::from(T0));
    chain.lock().unwrap().mine(1, &burn(), T0);
    w.sync(&chain).unwrap();
    (chain, w)
}

fn burn() -> bitcoin::ScriptBuf {
    bitcoin::ScriptBuf::new_op_return([0u8; 0])
}

#[test]
fn fund_pay_restore_and_reorg() {
    let chain = Mutex::new(Devnet::new());
    let seed = Seed::from_entropy([11; 32]);
    let mut alice = wallet(&seed);
    let address = alice.new_address();
    chain
        .lock()
        .unwrap()
        .mine(101, &address.script_pubkey(), T0);
    alice.sync(&chain).unwrap();
    assert_eq!(alice.synced_height(), 101);
    let b = alice.balance();
    assert_eq!(
        b.confirmed + b.immature,
        Amount::from_btc(50.0 * 101.0).unwrap()
    );
    assert!(b.confirmed >= Amount::from_btc(50.0).unwrap(), "{b:?}");

    // Pay Bob 1 BTC; the devnet's mempool accepts the signed transaction.
    let bob_seed = Seed::from_entropy([22; 32]);
    let mut bob = wallet(&bob_seed);
    let bob_address = bob.new_address();
    let tx = alice
        .pay_to(
            bob_address.script_pubkey(),
            Amount::from_btc(1.0).unwrap(),
            FeeratePerKw(2500),
        )
        .unwrap();
    let txid = chain.broadcast(&tx).unwrap();
    alice.note_broadcast(tx.clone(), u64::from(T0));
    chain
        .lock()
        .unwrap()
        .mine(1, &bitcoin::ScriptBuf::new_op_return([0u8; 0]), T0);
    assert_eq!(chain.lock().unwrap().confirmations(&txid), Some(1));
    bob.sync(&chain).unwrap();
    assert_eq!(bob.balance().confirmed, Amount::from_btc(1.0).unwrap());
    alice.sync(&chain).unwrap();
    let after = alice.balance();
    assert_eq!(after.unconfirmed, Amount::ZERO);

    // Restored from the words on a fresh wallet: the same funds.
    let restored_seed = Seed::from_phrase(&seed.phrase()).unwrap();
    let mut restored = wallet(&restored_seed);
    restored.sync(&chain).unwrap();
    assert_eq!(restored.balance(), alice.balance());

    // Errors a user can act on.
    let too_much = alice.pay_to(
        bob_address.script_pubkey(),
        Amount::from_btc(1_000_000.0).unwrap(),
        FeeratePerKw(2500),
    );
    assert!(
        matches!(too_much, Err(WalletError::InsufficientFunds { .. })),
        "{too_much:?}"
    );
    let dust = alice.pay_to(
        bob_address.script_pubkey(),
        Amount::from_sat(100),
        FeeratePerKw(2500),
    );
    assert!(matches!(dust, Err(WalletError::Dust(_))));
    let mainnet = alice.parse_address("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4");
    assert!(matches!(mainnet, Err(WalletError::WrongNetwork { .. })));
    assert!(matches!(
        alice.parse_address("hello"),
        Err(WalletError::BadAddress(_))
    ));

    // Reorg: the block with the payment is disconnected (the payment goes
    // back to the mempool); after rescanning, Bob has no confirmed coin.
    chain.lock().unwrap().disconnect(1);
    assert_eq!(chain.lock().unwrap().confirmations(&txid), Some(0));
    bob.sync(&chain).unwrap();
    assert_eq!(bob.balance().confirmed, Amount::ZERO);
    // Mined again, it is back.
    chain
        .lock()
        .unwrap()
        .mine(1, &bitcoin::ScriptBuf::new_op_return([0u8; 0]), T0 + 60);
    bob.sync(&chain).unwrap();
    assert_eq!(bob.balance().confirmed, Amount::from_btc(1.0).unwrap());
}

/// P2TR coins pay (the devnet checks the BIP 340 key-path signatures), and
/// a payment no single kind covers spends P2TR and P2WPKH coins together.
#[test]
fn taproot_and_mixed_payments() {
    use beongae_wallet::AddressKind;
    let chain = Mutex::new(Devnet::new());
    let mut alice = wallet(&Seed::from_entropy([31; 32]));
    let tr_address = alice.new_address_of(AddressKind::P2tr);
    assert!(tr_address.to_string().starts_with("bcrt1p"));
    chain
        .lock()
        .unwrap()
        .mine(101, &tr_address.script_pubkey(), T0);
    alice.sync(&chain).unwrap();
    assert_eq!(alice.balance().confirmed, Amount::from_btc(100.0).unwrap());

    // Carol gets 1 BTC on each kind of address.
    let mut carol = wallet(&Seed::from_entropy([32; 32]));
    for kind in [AddressKind::P2tr, AddressKind::P2wpkh] {
        let to = carol.new_address_of(kind).script_pubkey();
        let tx = alice
            .pay_to(to, Amount::from_btc(1.0).unwrap(), FeeratePerKw(2500))
            .unwrap();
        chain.broadcast(&tx).unwrap();
        alice.note_broadcast(tx, u64::from(T0));
    }
    chain
        .lock()
        .unwrap()
        .mine(1, &bitcoin::ScriptBuf::new_op_return([0u8; 0]), T0);
    carol.sync(&chain).unwrap();
    assert_eq!(carol.balance().confirmed, Amount::from_btc(2.0).unwrap());

    // 1.5 BTC needs both of Carol's coins.
    let dave = wallet(&Seed::from_entropy([33; 32]))
        .new_address()
        .script_pubkey();
    let tx = carol
        .pay_to(dave, Amount::from_btc(1.5).unwrap(), FeeratePerKw(2500))
        .unwrap();
    assert_eq!(tx.input.len(), 2);
    let txid = chain.broadcast(&tx).unwrap();
    chain
        .lock()
        .unwrap()
        .mine(1, &bitcoin::ScriptBuf::new_op_return([0u8; 0]), T0);
    assert_eq!(chain.lock().unwrap().confirmations(&txid), Some(1));
    carol.sync(&chain).unwrap();
    let left = carol.balance().confirmed;
    assert!(
        left < Amount::from_btc(0.5).unwrap() && left > Amount::from_btc(0.4999).unwrap(),
        "{left}"
    );
}

/// A payment that needs coins of both kinds spends only mature, confirmed
/// P2TR coins alongside the P2WPKH ones: the devnet (with Bitcoin Core's
/// coinbase maturity rule) accepts it although most of the P2TR balance is
/// immature coinbase.
#[test]
fn mixed_payment_leaves_immature_coinbase_alone() {
    let (chain, mut alice) = mixed_wallet(41);
    let burn = burn();
    let spendable = alice.balance().confirmed;
    assert!(spendable > Amount::from_btc(100.0).unwrap(), "{spendable}");
    assert!(alice.balance().immature > Amount::from_btc(4000.0).unwrap());

    // More than either kind holds alone, less than both.
    let to = wallet(&Seed::from_entropy([42; 32]))
        .new_address()
        .script_pubkey();
    let amount = spendable - Amount::from_btc(0.01).unwrap();
    let tx = alice.pay_to(to, amount, FeeratePerKw(2500)).unwrap();
    let txid = chain.broadcast(&tx).unwrap();
    chain.lock().unwrap().mine(1, &burn, T0);
    assert_eq!(chain.lock().unwrap().confirmations(&txid), Some(1));
}

/// Persisted (BDK's SQLite tables in a directory): a wallet reopened after
/// a restart knows the blocks it saw (it resumes there, no rescan), the
/// addresses it gave out (a new one is new) and our unconfirmed
/// transaction (its coin is not spent twice: the next payment takes
/// another). Another seed's wallet does not open it.
#[test]
fn a_persisted_wallet_remembers_across_restarts() {
    let chain = Mutex::new(Devnet::new());
    let dir = tempfile::tempdir().unwrap();
    let seed = Seed::from_entropy([33; 32]);
    let master = seed.master_key(NetworkKind::Test);
    let mut w = OnchainWallet::open(&master, Network::Regtest, dir.path()).unwrap();
    let first = w.new_address();
    chain.lock().unwrap().mine(1, &first.script_pubkey(), T0);
    chain
        .lock()
        .unwrap()
        .mine(100, &bitcoin::ScriptBuf::new_op_return([0u8; 0]), T0);
    w.sync(&chain).unwrap();
    let tx = w
        .pay_to(
            bitcoin::ScriptBuf::new_op_return([1u8; 4]),
            Amount::from_btc(1.0).unwrap(),
            FeeratePerKw(2500),
        )
        .unwrap();
    chain.broadcast(&tx).unwrap();
    w.note_broadcast(tx.clone(), u64::from(T0));
    let before = w.balance();
    drop(w);

    let mut w = OnchainWallet::open(&master, Network::Regtest, dir.path()).unwrap();
    assert_eq!(w.synced_height(), 101, "resumes where it stopped");
    assert_eq!(w.balance(), before);
    assert_ne!(w.new_address(), first, "the first address was given out");
    // The one mature coin is spent by our unconfirmed transaction: the
    // next payment spends that transaction's change, not the coin again.
    let again = w
        .pay_to(
            first.script_pubkey(),
            Amount::from_btc(1.0).unwrap(),
            FeeratePerKw(2500),
        )
        .unwrap();
    assert_eq!(again.input.len(), 1);
    assert_ne!(again.input[0].previous_output, tx.input[0].previous_output);
    assert_eq!(again.input[0].previous_output.txid, tx.compute_txid());
    drop(w);
    let other = Seed::from_entropy([55; 32]).master_key(NetworkKind::Test);
    let err = OnchainWallet::open(&other, Network::Regtest, dir.path()).unwrap_err();
    assert!(err.to_string().contains("not this seed's"), "{err}");
}

/// A transaction built and not broadcast yet (a funding awaiting the
/// peer's signature, a claim the node keeps first) reserves its coins:
/// the next one picks other coins. The reservation lives in memory only:
/// after a crash before the broadcast the coin is free again, while a
/// broadcast one stays spent across the restart.
#[test]
fn built_transactions_reserve_their_coins_until_broadcast() {
    let chain = Mutex::new(Devnet::new());
    let dir = tempfile::tempdir().unwrap();
    let master = Seed::from_entropy([66; 32]).master_key(NetworkKind::Test);
    let mut w = OnchainWallet::open(&master, Network::Regtest, dir.path()).unwrap();
    let address = w.new_address();
    chain.lock().unwrap().mine(2, &address.script_pubkey(), T0);
    chain
        .lock()
        .unwrap()
        .mine(100, &bitcoin::ScriptBuf::new_op_return([0u8; 0]), T0);
    w.sync(&chain).unwrap();
    let to = bitcoin::ScriptBuf::new_op_return([2u8; 4]);
    let pay = |w: &mut OnchainWallet| {
        w.pay_to(
            to.clone(),
            Amount::from_btc(1.0).unwrap(),
            FeeratePerKw(2500),
        )
        .unwrap()
    };
    let first = pay(&mut w);
    // What is left after it: two coins of 50 BTC less 1 BTC and its fee.
    let fee = |t: &bitcoin::Transaction| {
        Amount::from_btc(50.0).unwrap() - t.output.iter().map(|o| o.value).sum::<Amount>()
    };
    let hundred = Amount::from_btc(100.0).unwrap();
    let one = Amount::from_btc(1.0).unwrap();
    assert_eq!(w.left_after(&first), hundred - one - fee(&first));
    w.reserve(&first);
    let second = pay(&mut w);
    // Built after the first (reserved, not broadcast): both count.
    assert_eq!(
        w.left_after(&second),
        hundred - one - fee(&first) - one - fee(&second)
    );
    assert_ne!(
        first.input[0].previous_output, second.input[0].previous_output,
        "the reserved coin is not picked again"
    );
    w.reserve(&second);
    // Both coins reserved: nothing left.
    assert!(matches!(
        w.pay_to(
            to.clone(),
            Amount::from_btc(1.0).unwrap(),
            FeeratePerKw(2500)
        ),
        Err(WalletError::InsufficientFunds { .. })
    ));
    // The first is broadcast, the second never is (a crash).
    chain.broadcast(&first).unwrap();
    w.note_broadcast(first.clone(), u64::from(T0));
    // 60 BTC needs the second coin (50) with the first's change (49):
    // refused while the second is reserved.
    let sixty = Amount::from_btc(60.0).unwrap();
    assert!(matches!(
        w.pay_to(to.clone(), sixty, FeeratePerKw(2500)),
        Err(WalletError::InsufficientFunds { .. })
    ));
    drop(w);
    let mut w = OnchainWallet::open(&master, Network::Regtest, dir.path()).unwrap();
    // The unbroadcast reservation died with the process; the broadcast
    // payment is remembered (its coin stays spent: 60 BTC takes the two
    // others).
    let third = w.pay_to(to.clone(), sixty, FeeratePerKw(2500)).unwrap();
    let mut spent: Vec<_> = third.input.iter().map(|i| i.previous_output).collect();
    spent.sort();
    let mut expected = vec![
        second.input[0].previous_output,
        bitcoin::OutPoint {
            txid: first.compute_txid(),
            vout: first
                .output
                .iter()
                .position(|o| o.script_pubkey != to)
                .unwrap() as u32,
        },
    ];
    expected.sort();
    assert_eq!(spent, expected);
    // Reserved, then forgotten: the coins are free again at once.
    w.reserve(&third);
    assert!(w.pay_to(to.clone(), sixty, FeeratePerKw(2500)).is_err());
    w.forget(third.compute_txid(), u64::from(T0));
    assert!(w.pay_to(to.clone(), sixty, FeeratePerKw(2500)).is_ok());
}

/// A payment of everything (`send ADDRESS all`): every spendable coin of
/// both kinds goes, less the fee, except the fee reserve kept back in an
/// output of its own; immature coinbase outputs stay. The devnet's mempool
/// accepts it. A wallet with nothing beyond the fee and the reserve is told so.
#[test]
fn a_sweep_sends_everything_but_the_reserve() {
    let (chain, mut alice) = mixed_wallet(51);
    let burn = burn();
    let before = alice.balance();
    assert!(before.immature > Amount::ZERO);

    let to = wallet(&Seed::from_entropy([52; 32]))
        .new_address()
        .script_pubkey();
    let keep = Amount::from_sat(50_000);
    let tx = alice
        .sweep_to(to.clone(), FeeratePerKw(2500), keep)
        .unwrap();
    assert_eq!(tx.output.len(), 2);
    let sent = tx
        .output
        .iter()
        .find(|o| o.script_pubkey == to)
        .unwrap()
        .value;
    let kept = tx
        .output
        .iter()
        .find(|o| o.script_pubkey != to)
        .unwrap()
        .value;
    assert_eq!(kept, keep);
    let fee = before.confirmed - sent - kept;
    // The fee is what 2,500 sat/kW asks of its weight (BDK counts the
    // largest signatures, so a little more).
    let weight = tx.weight().to_wu();
    assert!(
        fee.to_sat() * 1000 >= weight * 2500,
        "{fee} for {weight} WU"
    );
    assert!(fee.to_sat() * 1000 < weight * 2600, "{fee} for {weight} WU");
    let txid = chain.broadcast(&tx).unwrap();
    alice.note_broadcast(tx, u64::from(T0));
    chain.lock().unwrap().mine(1, &burn, T0);
    assert_eq!(chain.lock().unwrap().confirmations(&txid), Some(1));
    alice.sync(&chain).unwrap();
    // The reserve is all that is spendable now (one more coinbase output
    // matured with the block, and it is not the sweep's).
    let after = alice.balance();
    let matured = before.immature - after.immature;
    assert_eq!(after.confirmed, keep + matured);

    // The reserve cannot pay itself and a fee.
    let mut bob = wallet(&Seed::from_entropy([53; 32]));
    let bob_address = bob.new_address().script_pubkey();
    let tx = alice
        .pay_to(
            bob_address.clone(),
            Amount::from_sat(60_000),
            FeeratePerKw(2500),
        )
        .unwrap();
    chain.broadcast(&tx).unwrap();
    chain.lock().unwrap().mine(1, &burn, T0);
    bob.sync(&chain).unwrap();
    assert_eq!(bob.balance().confirmed, Amount::from_sat(60_000));
    assert!(matches!(
        bob.sweep_to(to.clone(), FeeratePerKw(2500), Amount::from_sat(60_000)),
        Err(WalletError::InsufficientFunds { .. })
    ));
    // Without a reserve it all goes, less the fee.
    let tx = bob
        .sweep_to(to.clone(), FeeratePerKw(2500), Amount::ZERO)
        .unwrap();
    assert_eq!(tx.output.len(), 1);
    let fee = Amount::from_sat(60_000) - tx.output[0].value;
    let weight = tx.weight().to_wu();
    assert!(
        fee.to_sat() * 1000 >= weight * 2500,
        "{fee} for {weight} WU"
    );
    assert!(fee.to_sat() * 1000 < weight * 2600, "{fee} for {weight} WU");
    chain.broadcast(&tx).unwrap();
    bob.note_broadcast(tx, u64::from(T0));
    chain.lock().unwrap().mine(1, &burn, T0);
    bob.sync(&chain).unwrap();
    assert_eq!(bob.balance().confirmed, Amount::ZERO);
    let empty = bob.sweep_to(to, FeeratePerKw(2500), Amount::ZERO);
    assert!(
        matches!(empty, Err(WalletError::NothingToSend)),
        "{empty:?}"
    );
}

/// A channel opened with everything (`openchannel PEER all`): the sweep's
/// amount to a P2WSH funding output is then paid by `pay_to` with the same
/// coins, its change being the reserve kept.
#[test]
fn the_most_a_sweep_pays_is_then_payable_with_the_reserve_as_change() {
    let (chain, mut alice) = mixed_wallet(61);
    let burn = burn();

    let funding =
        bitcoin::ScriptBuf::new_p2wsh(&bitcoin::ScriptBuf::from(vec![0x51]).wscript_hash());
    let keep = Amount::from_sat(20_000);
    let sweep = alice
        .sweep_to(funding.clone(), FeeratePerKw(2500), keep)
        .unwrap();
    let most = sweep
        .output
        .iter()
        .find(|o| o.script_pubkey == funding)
        .unwrap()
        .value;
    let tx = alice
        .pay_to(funding.clone(), most, FeeratePerKw(2500))
        .unwrap();
    assert_eq!(tx.input.len(), sweep.input.len());
    // The reserve, give or take the fee's rounding (a sat or two).
    let left = alice.left_after(&tx);
    assert!(left >= keep && left <= keep + Amount::from_sat(2), "{left}");
    let txid = chain.broadcast(&tx).unwrap();
    chain.lock().unwrap().mine(1, &burn, T0);
    assert_eq!(chain.lock().unwrap().confirmations(&txid), Some(1));
}

/// The same with P2TR coins only: paying with them alone would make a
/// P2TR change output, which costs more fee than the sweep's P2WPKH one
/// and leaves a few sat less than the reserve, so that way is passed over
/// for the one spending them as the sweep did.
#[test]
fn a_payment_keeping_the_reserve_passes_over_a_costlier_change() {
    use beongae_wallet::AddressKind;
    let chain = Mutex::new(Devnet::new());
    let mut alice = wallet(&Seed::from_entropy([71; 32]));
    let tr = alice.new_address_of(AddressKind::P2tr).script_pubkey();
    chain.lock().unwrap().mine(101, &tr, T0);
    alice.sync(&chain).unwrap();
    let funding =
        bitcoin::ScriptBuf::new_p2wsh(&bitcoin::ScriptBuf::from(vec![0x51]).wscript_hash());
    let keep = Amount::from_sat(20_000);
    let feerate = FeeratePerKw(2500);
    let sweep = alice.sweep_to(funding.clone(), feerate, keep).unwrap();
    let most = sweep
        .output
        .iter()
        .find(|o| o.script_pubkey == funding)
        .unwrap()
        .value
        - Amount::from_sat(10);
    // Taproot coins alone: P2TR change, 12 vB more, 30 sat more fee.
    let tr_only = alice.pay_to(funding.clone(), most, feerate).unwrap();
    assert!(alice.left_after(&tr_only) < keep);
    let tx = alice
        .pay_to_keeping(funding.clone(), most, feerate, keep)
        .unwrap();
    let left = alice.left_after(&tx);
    assert!(
        left >= keep && left <= keep + Amount::from_sat(12),
        "{left}"
    );
    let txid = chain.broadcast(&tx).unwrap();
    let burn = bitcoin::ScriptBuf::new_op_return([0u8; 0]);
    chain.lock().unwrap().mine(1, &burn, T0);
    assert_eq!(chain.lock().unwrap().confirmations(&txid), Some(1));
    // Asked to keep more than any way leaves: the error says what would be.
    let e = alice.pay_to_keeping(funding, most, feerate, Amount::from_btc(1000.0).unwrap());
    assert!(
        matches!(e, Err(WalletError::BelowFeeReserve { .. })),
        "{e:?}"
    );
}

/// Coins paid to a receiving address (a mutual close's output, say) do not
/// pay until they confirm: a racing transaction may still replace them.
#[test]
fn unconfirmed_coins_to_a_receiving_address_wait_for_a_confirmation() {
    let chain = Mutex::new(Devnet::new());
    let mut alice = wallet(&Seed::from_entropy([81; 32]));
    let a = alice.new_address().script_pubkey();
    chain.lock().unwrap().mine(101, &a, T0);
    alice.sync(&chain).unwrap();
    let mut bob = wallet(&Seed::from_entropy([82; 32]));
    let b = bob.new_address().script_pubkey();
    let tx = alice
        .pay_to(b, Amount::from_sat(100_000), FeeratePerKw(2500))
        .unwrap();
    chain.broadcast(&tx).unwrap();
    // Bob's wallet learns of it unconfirmed (as of a close of ours it
    // broadcast).
    bob.note_broadcast(tx, u64::from(T0));
    assert_eq!(bob.balance().unconfirmed, Amount::from_sat(100_000));
    let to = alice.new_address().script_pubkey();
    let e = bob.sweep_to(to.clone(), FeeratePerKw(2500), Amount::ZERO);
    assert!(matches!(e, Err(WalletError::NothingToSend)), "{e:?}");
    let e = bob.pay_to(to.clone(), Amount::from_sat(10_000), FeeratePerKw(2500));
    assert!(
        matches!(e, Err(WalletError::InsufficientFunds { .. })),
        "{e:?}"
    );
    let burn = bitcoin::ScriptBuf::new_op_return([0u8; 0]);
    chain.lock().unwrap().mine(1, &burn, T0);
    bob.sync(&chain).unwrap();
    assert!(bob
        .pay_to(to, Amount::from_sat(10_000), FeeratePerKw(2500))
        .is_ok());
}
