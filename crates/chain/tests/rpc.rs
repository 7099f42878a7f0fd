//! The `Bitcoind` JSON-RPC client against `devnet serve` over real HTTP.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use beongae_chain::devnet::Devnet;
use beongae_chain::rpc::{serve_devnet, write_cookie, Auth, Bitcoind};
use beongae_chain::{ChainError, ChainSource, FeeratePerKw};
use bitcoin::{Address, Amount, Network, OutPoint};
use common::Wallet;

fn server(
    auth: Auth,
    dir: Option<std::path::PathBuf>,
) -> (beongae_chain::rpc::RpcServer, Arc<Mutex<Devnet>>) {
    let devnet = Arc::new(Mutex::new(Devnet::new()));
    let on_change = dir
        .map(|d| Box::new(move |dn: &Devnet| dn.save(&d).unwrap()) as beongae_chain::rpc::OnChange);
    let s = serve_devnet(
        devnet.clone(),
        "127.0.0.1:0".parse().unwrap(),
        auth,
        on_change,
    )
    .unwrap();
    (s, devnet)
}

#[test]
fn client_against_devnet_serve() {
    let auth = Auth::UserPass("user".into(), "pass".into());
    let (s, _devnet) = server(auth.clone(), None);
    let rpc = Bitcoind::new(&format!("http://{}", s.addr()), auth);
    let genesis = bitcoin::constants::genesis_block(Network::Regtest).block_hash();
    assert_eq!(rpc.tip().unwrap(), (0, genesis));
    assert_eq!(rpc.chain().unwrap(), "regtest");

    let w = Wallet::new(1);
    let address = Address::from_script(&w.spk, Network::Regtest).unwrap();
    let hashes = rpc.generate_to_address(101, &address).unwrap();
    assert_eq!(hashes.len(), 101);
    assert_eq!(rpc.tip().unwrap(), (101, hashes[100]));
    assert_eq!(rpc.block_hash(1).unwrap(), Some(hashes[0]));
    assert_eq!(rpc.block_hash(102).unwrap(), None);
    let block1 = rpc.block(&hashes[0]).unwrap().unwrap();
    assert_eq!(block1.block_hash(), hashes[0]);
    assert_eq!(rpc.block(&genesis).unwrap().unwrap().block_hash(), genesis);
    assert_eq!(
        rpc.block(&bitcoin::BlockHash::from_raw_hash(
            bitcoin::hashes::Hash::all_zeros()
        ))
        .unwrap(),
        None
    );

    // UTXO lookup, broadcast, rejection with the reason, confirmation.
    let coinbase = OutPoint {
        txid: block1.txdata[0].compute_txid(),
        vout: 0,
    };
    let value = block1.txdata[0].output[0].value;
    assert_eq!(rpc.utxo(&coinbase).unwrap().unwrap().value, value);
    let tx = w.pay(
        (coinbase, value),
        &Wallet::new(2).spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(1000),
    );
    let mut bad = tx.clone();
    bad.output[0].value = Amount::from_sat(999_999); // breaks the signature
    match rpc.broadcast(&bad) {
        Err(ChainError::Rejected(why)) => {
            assert!(why.contains("fails script verification"), "{why}")
        }
        other => panic!("expected rejection, got {other:?}"),
    }
    let txid = rpc.broadcast(&tx).unwrap();
    assert_eq!(txid, tx.compute_txid());
    assert_eq!(rpc.raw_transaction(&txid).unwrap(), Some(tx.clone()));
    // Again while in the mempool: its txid, as sendrawtransaction answers.
    assert_eq!(rpc.broadcast(&tx).unwrap(), txid);
    rpc.generate_to_address(1, &address).unwrap();
    match rpc.broadcast(&tx) {
        Err(ChainError::Rejected(why)) => assert!(why.contains("already"), "{why}"),
        other => panic!("expected rejection once confirmed, got {other:?}"),
    }
    assert_eq!(rpc.utxo(&coinbase).unwrap(), None, "spent");
    assert_eq!(
        rpc.utxo(&OutPoint { txid, vout: 0 })
            .unwrap()
            .unwrap()
            .value,
        Amount::from_sat(1_000_000)
    );
    assert_eq!(rpc.fee_estimate(6).unwrap(), FeeratePerKw(2500));
}

#[test]
fn wrong_credentials_and_cookie_auth() {
    let dir = tempfile::tempdir().unwrap();
    let cookie = write_cookie(&dir.path().join(".cookie")).unwrap();
    let (s, _devnet) = server(cookie.clone(), None);
    let url = format!("http://{}", s.addr());
    assert_eq!(Bitcoind::new(&url, cookie).tip().unwrap().0, 0);
    match Bitcoind::new(&url, Auth::UserPass("__cookie__".into(), "wrong".into())).tip() {
        Err(ChainError::Unavailable(why)) => {
            assert!(why.contains("authentication failed"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    // Nothing listening: a clear error, no hang.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert!(matches!(
        Bitcoind::new(
            &format!("http://{closed}"),
            Auth::UserPass("a".into(), "b".into())
        )
        .tip(),
        Err(ChainError::Unavailable(_))
    ));
}

#[test]
fn served_devnet_is_saved_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Auth::UserPass("u".into(), "p".into());
    let (s, _) = server(auth.clone(), Some(dir.path().to_owned()));
    let rpc = Bitcoind::new(&format!("http://{}", s.addr()), auth);
    let address = Address::from_script(&Wallet::new(1).spk, Network::Regtest).unwrap();
    let hashes = rpc.generate_to_address(5, &address).unwrap();
    drop(s);
    let loaded = Devnet::load(dir.path()).unwrap();
    assert_eq!(loaded.height(), 5);
    assert_eq!(loaded.tip_hash(), hashes[4]);
}

/// `submitpackage` against `devnet serve`: a parent and its child go in
/// together; a package whose child spends nothing known is refused with
/// the reason.
#[test]
fn a_package_is_submitted_parent_and_child() {
    let auth = Auth::UserPass("user".into(), "pass".into());
    let (s, devnet) = server(auth.clone(), None);
    let rpc = Bitcoind::new(&format!("http://{}", s.addr()), auth);
    let w = Wallet::new(1);
    let address = Address::from_script(&w.spk, Network::Regtest).unwrap();
    let hashes = rpc.generate_to_address(101, &address).unwrap();
    let coinbase = rpc.block(&hashes[0]).unwrap().unwrap().txdata[0].clone();
    let coin = (
        OutPoint {
            txid: coinbase.compute_txid(),
            vout: 0,
        },
        coinbase.output[0].value,
    );
    let parent = w.pay(
        coin,
        &w.spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(300),
    );
    let child = w.pay(
        (
            OutPoint {
                txid: parent.compute_txid(),
                vout: 0,
            },
            Amount::from_sat(1_000_000),
        ),
        &w.spk,
        Amount::from_sat(500_000),
        Amount::from_sat(5_000),
    );
    assert_eq!(
        rpc.broadcast_package(&parent, &child).unwrap(),
        child.compute_txid()
    );
    let mempool = devnet.lock().unwrap().mempool();
    assert_eq!(mempool, vec![parent.compute_txid(), child.compute_txid()]);
    let orphan = w.pay(
        (
            OutPoint {
                txid: bitcoin::Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros()),
                vout: 0,
            },
            Amount::from_sat(1_000_000),
        ),
        &w.spk,
        Amount::from_sat(500_000),
        Amount::from_sat(5_000),
    );
    match rpc.broadcast_package(&parent, &orphan) {
        Err(ChainError::Rejected(why)) => assert!(why.contains("error"), "{why}"),
        other => panic!("{other:?}"),
    }
}
