//! One devnet shared by several openers: the first serves it, the others
//! ask it over JSON-RPC, and when the server goes a client takes over with
//! the chain as it was.

#![allow(clippy::unwrap_used)]

use beongae_chain::devnet::faucet_script;
use beongae_chain::rpc::{Auth, Bitcoind, DevnetError};
use beongae_chain::shared::{faucet_address, SharedDevnet, SharedDevnetError, INITIAL_BLOCKS};
use beongae_chain::ChainSource;
use bitcoin::{Address, Amount, Network, OutPoint};
use serde_json::json;

const ADDRESS: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn the_first_opener_serves_and_a_client_takes_over_when_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    let a = SharedDevnet::open(dir.path(), any_port()).unwrap();
    assert!(a.is_serving());
    // A new devnet starts with blocks to the faucet.
    let (height, tip) = a.tip().unwrap();
    assert_eq!(height, INITIAL_BLOCKS);
    let info = a.info().unwrap();
    // Coinbases of blocks 1..=51 are mature for block 151.
    assert_eq!(info["faucet_sat"], 51 * 50 * 100_000_000u64);

    let b = SharedDevnet::open(dir.path(), any_port()).unwrap();
    assert!(!b.is_serving());
    assert_eq!(b.url(), a.url());
    assert_eq!(b.tip().unwrap(), (height, tip));

    // The faucet pays over RPC, in a new block to the faucet.
    let to = Address::from_str_regtest(ADDRESS);
    let txid = b.fund(&to, Amount::from_sat(1_234_567)).unwrap();
    assert_eq!(a.tip().unwrap().0, height + 1);
    let paid = a.utxo(&OutPoint { txid, vout: 0 }).unwrap().unwrap();
    assert_eq!(paid.value, Amount::from_sat(1_234_567));
    assert_eq!(paid.script_pubkey, to.script_pubkey());
    // Refusals say what to change.
    let err = b
        .fund(&to, Amount::from_btc(100_000.0).unwrap())
        .unwrap_err();
    let DevnetError::Refused(msg) = err else {
        panic!("{err:?}")
    };
    assert!(
        msg.starts_with("the faucet can pay between 1 sat and "),
        "{msg}"
    );
    let err = b
        .request("generatetoaddress", json!([1, "nonsense"]))
        .unwrap_err();
    assert!(err.to_string().starts_with("Invalid address"), "{err}");

    // Blocks for nobody go to the faucet.
    let mined = b.mine(2, None).unwrap();
    assert_eq!(mined.len(), 2);
    let block = a.block(&mined[1]).unwrap().unwrap();
    assert_eq!(block.txdata[0].output[0].script_pubkey, faucet_script());
    assert_eq!(faucet_address().script_pubkey(), faucet_script());
    let tip = a.tip().unwrap();
    assert_eq!(tip.0, height + 3);

    // The server goes; the client's next request serves the chain itself,
    // as it was.
    drop(a);
    assert_eq!(b.tip().unwrap(), tip);
    assert!(b.is_serving());
    assert_eq!(b.utxo(&OutPoint { txid, vout: 0 }).unwrap().unwrap(), paid);
    // A third opener finds the new server, with the same cookie.
    let c = SharedDevnet::open(dir.path(), any_port()).unwrap();
    assert!(!c.is_serving());
    assert_eq!(c.url(), b.url());
    let rpc = Bitcoind::new(&c.url(), Auth::Cookie(dir.path().join(".cookie")));
    assert_eq!(rpc.tip().unwrap(), tip);

    // Only one may serve.
    let err = SharedDevnet::serve(dir.path(), any_port()).unwrap_err();
    assert!(
        matches!(err, SharedDevnetError::AlreadyServed { ref url, .. } if *url == b.url()),
        "{err}"
    );
}

trait RegtestAddress {
    fn from_str_regtest(s: &str) -> Address;
}

impl RegtestAddress for Address {
    fn from_str_regtest(s: &str) -> Address {
        s.parse::<Address<_>>()
            .unwrap()
            .require_network(Network::Regtest)
            .unwrap()
    }
}
