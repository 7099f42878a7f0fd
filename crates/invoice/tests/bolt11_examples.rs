//! BOLT 11 §"Examples" and §"Examples of Invalid Invoices", transcribed from
//! `11-payment-encoding.md`. Every valid example is decoded, each field is
//! checked, and it is re-encoded and re-signed with the spec's `priv_key` to
//! give the exact same string.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use beongae_invoice::{
    Currency, DescriptionHash, Invoice, InvoiceBuilder, InvoiceError, PaymentSecret, TaggedField,
};
use beongae_wire::{Msat, NodeId, PaymentHash, ShortChannelId};
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{Address, Network};

/// BOLT 11 §"Examples": "all the following examples are signed with
/// `priv_key`=`e126f68f...`".
const PRIV_KEY: &str = "e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734";
/// The node id of `PRIV_KEY` ("to me @03e7156a...").
const PAYEE: &str = "03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad";
const HASH: &str = "0001020304050607080900010203040506070809000102030405060708090102";
/// "All invoices contain a `payment_secret`=`1111...` unless otherwise noted."
const SECRET: [u8; 32] = [0x11; 32];
const TIMESTAMP: u64 = 1_496_314_658;
/// SHA256 of the "entire list of things" description.
const LIST_HASH: &str = "3925b6f67e2c340036ed12093dd44e0368df1b6ea26c53dbe4811f58fd5db8c1";

const DONATION: &str = "lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq9qrsgq357wnc5r2ueh7ck6q93dj32dlqnls087fxdwk8qakdyafkq3yap9us6v52vjjsrvywa6rt52cm9r9zqt8r2t7mlcwspyetp5h2tztugp9lfyql";
const COFFEE: &str = "lnbc2500u1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu9qrsgquk0rl77nj30yxdy8j9vdx85fkpmdla2087ne0xh8nhedh8w27kyke0lp53ut353s06fv3qfegext0eh0ymjpf39tuven09sam30g4vgpfna3rh";
const NONSENSE: &str = "lnbc2500u1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0xqzpu9qrsgqhtjpauu9ur7fw2thcl4y9vfvh4m9wlfyz2gem29g5ghe2aak2pm3ps8fdhtceqsaagty2vph7utlgj48u0ged6a337aewvraedendscp573dxr";
const HASHED: &str = "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqs9qrsgq7ea976txfraylvgzuxs8kgcw23ezlrszfnh8r6qtfpr6cxga50aj6txm9rxrydzd06dfeawfk6swupvz4erwnyutnjq7x39ymw6j38gp7ynn44";
const TESTNET_P2PKH: &str = "lntb20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygshp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfpp3x9et2e20v6pu37c5d9vax37wxq72un989qrsgqdj545axuxtnfemtpwkc45hx9d2ft7x04mt8q7y6t0k2dge9e7h8kpy9p34ytyslj3yu569aalz2xdk8xkd7ltxqld94u8h2esmsmacgpghe9k8";
const ROUTED: &str = "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqsfpp3qjmp7lwpagxun9pygexvgpjdc4jdj85fr9yq20q82gphp2nflc7jtzrcazrra7wwgzxqc8u7754cdlpfrmccae92qgzqvzq2ps8pqqqqqqpqqqqq9qqqvpeuqafqxu92d8lr6fvg0r5gv0heeeqgcrqlnm6jhphu9y00rrhy4grqszsvpcgpy9qqqqqqgqqqqq7qqzq9qrsgqdfjcdk6w3ak5pca9hwfwfh63zrrz06wwfya0ydlzpgzxkn5xagsqz7x9j4jwe7yj7vaf2k9lqsdk45kts2fd0fkr28am0u4w95tt2nsq76cqw0";
const P2SH: &str = "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygshp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfppj3a24vwu6r8ejrss3axul8rxldph2q7z99qrsgqz6qsgww34xlatfj6e3sngrwfy3ytkt29d2qttr8qz2mnedfqysuqypgqex4haa2h8fx3wnypranf3pdwyluftwe680jjcfp438u82xqphf75ym";
const P2WPKH: &str = "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygshp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfppqw508d6qejxtdg4y5r3zarvary0c5xw7k9qrsgqt29a0wturnys2hhxpner2e3plp6jyj8qx7548zr2z7ptgjjc7hljm98xhjym0dg52sdrvqamxdezkmqg4gdrvwwnf0kv2jdfnl4xatsqmrnsse";
const P2WSH: &str = "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygshp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfp4qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q9qrsgq9vlvyj8cqvq6ggvpwd53jncp9nwc47xlrsnenq2zp70fq83qlgesn4u3uyf4tesfkkwwfg3qs54qe426hp3tz7z6sweqdjg05axsrjqp9yrrwc";
const P2TR: &str = "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqsfp4pptdvg0d2nj99568qn6ssdy4cygnwuxgw2ukmnwgwz7jpqjz2kszs9qrsgqy606dznq28exnydt2r4c29y56xjtn3sk4mhgjtl4pg2y4ar3249rq4ajlmj9jy8zvlzw7cr8mggqzm842xfr0v72rswzq9xvr4hknfsqwmn6xd";
const PICO: &str = "lnbc9678785340p1pwmna7lpp5gc3xfm08u9qy06djf8dfflhugl6p7lgza6dsjxq454gxhj9t7a0sd8dgfkx7cmtwd68yetpd5s9xar0wfjn5gpc8qhrsdfq24f5ggrxdaezqsnvda3kkum5wfjkzmfqf3jkgem9wgsyuctwdus9xgrcyqcjcgpzgfskx6eqf9hzqnteypzxz7fzypfhg6trddjhygrcyqezcgpzfysywmm5ypxxjemgw3hxjmn8yptk7untd9hxwg3q2d6xjcmtv4ezq7pqxgsxzmnyyqcjqmt0wfjjq6t5v4khxsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygsxqyjw5qcqp2rzjq0gxwkzc8w6323m55m4jyxcjwmy7stt9hwkwe2qxmy8zpsgg7jcuwz87fcqqeuqqqyqqqqlgqqqqn3qq9q9qrsgqrvgkpnmps664wgkp43l22qsgdw4ve24aca4nymnxddlnp8vh9v2sdxlu5ywdxefsfvm0fq3sesf08uf6q9a2ke0hc9j6z6wlxg5z5kqpu2v9wz";
const FEATURES_99: &str = "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqqsgq2a25dxl5hrntdtn6zvydt7d66hyzsyhqs4wdynavys42xgl6sgx9c4g7me86a27t07mdtfry458rtjr0v92cnmswpsjscgt2vcse3sgpz3uapa";
const FEATURES_99_UPPER: &str = "LNBC25M1PVJLUEZPP5QQQSYQCYQ5RQWZQFQQQSYQCYQ5RQWZQFQQQSYQCYQ5RQWZQFQYPQDQ5VDHKVEN9V5SXYETPDEESSP5ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYGS9Q5SQQQQQQQQQQQQQQQQSGQ2A25DXL5HRNTDTN6ZVYDT7D66HYZSYHQS4WDYNAVYS42XGL6SGX9C4G7ME86A27T07MDTFRY458RTJR0V92CNMSWPSJSCGT2VCSE3SGPZ3UAPA";
const IGNORED_FIELDS: &str = "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqqsgq2qrqqqfppnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqppnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqpp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqhpnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqhp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqspnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqsp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnp5qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnpkqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqz599y53s3ujmcfjp5xrdap68qxymkqphwsexhmhr8wdz5usdzkzrse33chw6dlp3jhuhge9ley7j2ayx36kawe7kmgg8sv5ugdyusdcqzn8z9x";
const METADATA: &str = "lnbc10m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdp9wpshjmt9de6zqmt9w3skgct5vysxjmnnd9jx2mq8q8a04uqsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q2gqqqqqqsgq7hf8he7ecf7n4ffphs6awl9t6676rrclv9ckg3d3ncn7fct63p6s365duk5wrk202cfy3aj5xnnp5gs3vrdvruverwwq7yzhkf5a3xqpd05wjc";
const HIGH_S: &str = "lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq9qrsgq357wnc5r2ueh7ck6q93dj32dlqnls087fxdwk8qakdyafkq3yap2r09nt4ndd0unm3z9u5t48y6ucv4r5sg7lk98c77ctvjczkspk5qprc90gx";

fn h32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn payee() -> NodeId {
    PAYEE.parse().unwrap()
}

/// Decodes, checks the common fields, and checks that re-encoding and
/// re-signing with the spec's key give back the same string.
fn decode_and_resign(s: &str) -> Invoice {
    let invoice = Invoice::decode(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(invoice.encode(), s.to_lowercase(), "re-encoding");
    assert_eq!(invoice.to_string().parse::<Invoice>().unwrap(), invoice);
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&hex::decode(PRIV_KEY).unwrap()).unwrap();
    let mut builder = InvoiceBuilder::new(invoice.currency()).timestamp(invoice.timestamp());
    if let Some(a) = invoice.amount() {
        builder = builder.amount(a);
    }
    for f in invoice.fields() {
        builder = builder.field(f.clone());
    }
    let signed = builder.sign(&secp, &key).unwrap();
    assert_eq!(signed.encode(), s.to_lowercase(), "re-signing");
    assert_eq!(signed, invoice);
    assert_eq!(invoice.payee_node_id(), payee());
    invoice
}

fn check_common(inv: &Invoice, amount: Option<u64>, timestamp: u64) {
    assert_eq!(inv.amount(), amount.map(Msat::from_msat));
    assert_eq!(inv.timestamp(), timestamp);
    assert_eq!(inv.payment_secret(), PaymentSecret(SECRET));
}

fn features_of(inv: &Invoice) -> Vec<u32> {
    inv.features().bits().collect()
}

fn fallback_addresses(inv: &Invoice, network: Network) -> Vec<String> {
    inv.fallbacks()
        .map(|f| {
            Address::from_script(&f.script_pubkey(), network)
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn donation_any_amount() {
    let inv = decode_and_resign(DONATION);
    check_common(&inv, None, TIMESTAMP);
    assert_eq!(inv.currency(), Currency::Bitcoin);
    assert_eq!(inv.payment_hash(), PaymentHash(h32(HASH)));
    assert_eq!(
        inv.description(),
        Some("Please consider supporting this project")
    );
    assert_eq!(features_of(&inv), vec![8, 14]);
    assert!(!inv.has_explicit_payee());
    assert_eq!(inv.expiry(), 3600);
    assert_eq!(inv.min_final_cltv_expiry_delta(), 18);
    // Signature breakdown.
    let sig = inv.signature_bytes();
    assert_eq!(hex::encode(&sig[..64]), "8d3ce9e28357337f62da0162d9454df827f83cfe499aeb1c1db349d4d81127425e434ca29929406c23bba1ae8ac6ca32880b38d4bf6ff874024cac34ba9625f1");
    assert_eq!(sig[64], 1);
    assert_eq!(
        hex::encode(inv.signing_hash()),
        "6daf4d488be41ce7cbb487cab1ef2975e5efcea879b20d421f0ef86b07cbb987"
    );
}

#[test]
fn coffee_within_one_minute() {
    let inv = decode_and_resign(COFFEE);
    check_common(&inv, Some(250_000_000), TIMESTAMP);
    assert_eq!(inv.description(), Some("1 cup coffee"));
    assert_eq!(inv.expiry(), 60);
    assert_eq!(features_of(&inv), vec![8, 14]);
    assert!(!inv.is_expired(TIMESTAMP + 60));
    assert!(inv.is_expired(TIMESTAMP + 61));
    assert_eq!(inv.signature_bytes()[64], 1);
    assert_eq!(
        hex::encode(inv.signing_hash()),
        "047e24bf270b25d42a56d57b2578faa3a10684641bab817c2851a871cb41dbc0"
    );
}

#[test]
fn nonsense_utf8_description() {
    let inv = decode_and_resign(NONSENSE);
    check_common(&inv, Some(250_000_000), TIMESTAMP);
    assert_eq!(inv.description(), Some("ナンセンス 1杯"));
    assert_eq!(inv.expiry(), 60);
    assert_eq!(hex::encode(&inv.signature_bytes()[..64]), "bae41ef385e0fc972977c7ea42b12cbd76577d2412919da8a8a22f9577b6507710c0e96dd78c821dea16453037f717f44aa7e3d196ebb18fbb97307dcb7336c3");
}

#[test]
fn hashed_description() {
    let inv = decode_and_resign(HASHED);
    check_common(&inv, Some(2_000_000_000), TIMESTAMP);
    assert_eq!(inv.description(), None);
    assert_eq!(
        inv.description_hash(),
        Some(DescriptionHash(h32(LIST_HASH)))
    );
    assert!(inv.matches_description("One piece of chocolate cake, one icecream cone, one pickle, one slice of swiss cheese, one slice of salami, one lollypop, one piece of cherry pie, one sausage, one cupcake, and one slice of watermelon"));
    assert!(!inv.matches_description("one pickle"));
    assert_eq!(
        hex::encode(inv.signing_hash()),
        "e2ffa444e2979edb639fbdaa384638683ba1a5240b14dd7a150e45a04eea261d"
    );
}

#[test]
fn testnet_p2pkh_fallback() {
    let inv = decode_and_resign(TESTNET_P2PKH);
    check_common(&inv, Some(2_000_000_000), TIMESTAMP);
    assert_eq!(inv.currency(), Currency::BitcoinTestnet);
    assert_eq!(
        inv.description_hash(),
        Some(DescriptionHash(h32(LIST_HASH)))
    );
    assert_eq!(inv.payment_hash(), PaymentHash(h32(HASH)));
    assert_eq!(
        fallback_addresses(&inv, Network::Testnet),
        vec!["mk2QpYatsKicvFVuTAQLBryyccRXMUaGHP"]
    );
    assert_eq!(inv.fallbacks().next().unwrap().version(), 17);
}

#[test]
fn mainnet_p2pkh_fallback_and_route_hints() {
    let inv = decode_and_resign(ROUTED);
    check_common(&inv, Some(2_000_000_000), TIMESTAMP);
    assert_eq!(
        fallback_addresses(&inv, Network::Bitcoin),
        vec!["1RustyRX2oai4EYYDpQGWvEL62BBGqN9T"]
    );
    let hints: Vec<_> = inv.route_hints().collect();
    assert_eq!(hints.len(), 1);
    let hops = &hints[0].0;
    assert_eq!(hops.len(), 2);
    let expect = [
        (
            "029e03a901b85534ff1e92c43c74431f7ce72046060fcf7a95c37e148f78c77255",
            (66051, 263430, 1800),
            1,
            20,
            3,
        ),
        (
            "039e03a901b85534ff1e92c43c74431f7ce72046060fcf7a95c37e148f78c77255",
            (197637, 395016, 2314),
            2,
            30,
            4,
        ),
    ];
    for (hop, (key, (b, t, o), base, prop, cltv)) in hops.iter().zip(expect) {
        assert_eq!(hop.src_node_id, key.parse::<NodeId>().unwrap());
        assert_eq!(hop.short_channel_id, ShortChannelId::new(b, t, o).unwrap());
        assert_eq!(hop.fee_base(), Msat::from_msat(base));
        assert_eq!(hop.fee_base_msat, base as u32);
        assert_eq!(hop.fee_proportional_millionths, prop);
        assert_eq!(hop.cltv_expiry_delta, cltv);
    }
    assert_eq!(inv.signature_bytes()[64], 0);
}

#[test]
fn p2sh_fallback() {
    let inv = decode_and_resign(P2SH);
    check_common(&inv, Some(2_000_000_000), TIMESTAMP);
    assert_eq!(
        fallback_addresses(&inv, Network::Bitcoin),
        vec!["3EktnHQD7RiAE6uzMj2ZifT9YgRrkSgzQX"]
    );
    assert_eq!(inv.fallbacks().next().unwrap().version(), 18);
}

#[test]
fn p2wpkh_fallback() {
    let inv = decode_and_resign(P2WPKH);
    assert_eq!(
        fallback_addresses(&inv, Network::Bitcoin),
        vec!["bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"]
    );
    assert_eq!(inv.fallbacks().next().unwrap().version(), 0);
}

#[test]
fn p2wsh_fallback() {
    let inv = decode_and_resign(P2WSH);
    assert_eq!(
        fallback_addresses(&inv, Network::Bitcoin),
        vec!["bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3"]
    );
}

#[test]
fn p2tr_fallback() {
    let inv = decode_and_resign(P2TR);
    assert_eq!(
        fallback_addresses(&inv, Network::Bitcoin),
        vec!["bc1pptdvg0d2nj99568qn6ssdy4cygnwuxgw2ukmnwgwz7jpqjz2kszse2s3lm"]
    );
    assert_eq!(inv.fallbacks().next().unwrap().version(), 1);
}

#[test]
fn pico_amount_blockstream_store() {
    // This example is signed with another key (its own payment hash and
    // timestamp): decode, check and re-encode, without re-signing.
    let inv = Invoice::decode(PICO).unwrap();
    assert_eq!(inv.encode(), PICO);
    check_common(&inv, Some(967_878_534), 1_572_468_703);
    assert_eq!(
        inv.payment_hash(),
        PaymentHash(h32(
            "462264ede7e14047e9b249da94fefc47f41f7d02ee9b091815a5506bc8abf75f"
        ))
    );
    assert_eq!(inv.description(), Some("Blockstream Store: 88.85 USD for Blockstream Ledger Nano S x 1, \"Back In My Day\" Sticker x 2, \"I Got Lightning Working\" Sticker x 2 and 1 more items"));
    assert_eq!(inv.expiry(), 604_800);
    assert_eq!(inv.min_final_cltv_expiry_delta(), 10);
    let hints: Vec<_> = inv.route_hints().collect();
    assert_eq!(hints.len(), 1);
    let hop = &hints[0].0[0];
    assert_eq!(
        hop.src_node_id,
        "03d06758583bb5154774a6eb221b1276c9e82d65bbaceca806d90e20c108f4b1c7"
            .parse::<NodeId>()
            .unwrap()
    );
    assert_eq!(
        hop.short_channel_id,
        ShortChannelId::new(589_390, 3312, 1).unwrap()
    );
    assert_eq!(hop.fee_base_msat, 1000);
    assert_eq!(hop.fee_proportional_millionths, 2500);
    assert_eq!(hop.cltv_expiry_delta, 40);
    assert_eq!(features_of(&inv), vec![8, 14]);
}

#[test]
fn features_8_14_and_99() {
    let inv = decode_and_resign(FEATURES_99);
    check_common(&inv, Some(2_500_000_000), TIMESTAMP);
    assert_eq!(inv.description(), Some("coffee beans"));
    assert_eq!(features_of(&inv), vec![8, 14, 99]);
}

#[test]
fn upper_case() {
    let inv = decode_and_resign(FEATURES_99_UPPER);
    assert_eq!(inv, Invoice::decode(FEATURES_99).unwrap());
    assert_eq!(inv.encode_upper(), FEATURES_99_UPPER);
}

#[test]
fn fields_which_must_be_ignored() {
    let inv = decode_and_resign(IGNORED_FIELDS);
    check_common(&inv, Some(2_500_000_000), TIMESTAMP);
    assert_eq!(inv.payment_hash(), PaymentHash(h32(HASH)));
    assert_eq!(inv.description(), Some("coffee beans"));
    assert_eq!(inv.description_hash(), None);
    assert!(!inv.has_explicit_payee());
    assert_eq!(inv.fallbacks().count(), 0);
    assert_eq!(features_of(&inv), vec![8, 14, 99]);
    // Unknown `2`, `f` version 19, then p, p, h, h, s, s, n, n of wrong lengths.
    let raw: Vec<(char, usize)> = inv
        .raw_fields()
        .map(|r| {
            let c = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l"[usize::from(r.tag)] as char;
            (c, r.data.len())
        })
        .collect();
    assert_eq!(
        raw,
        vec![
            ('2', 3),
            ('f', 33),
            ('p', 51),
            ('p', 53),
            ('h', 51),
            ('h', 53),
            ('s', 51),
            ('s', 53),
            ('n', 52),
            ('n', 54)
        ]
    );
}

#[test]
fn payment_metadata() {
    let inv = decode_and_resign(METADATA);
    check_common(&inv, Some(1_000_000_000), TIMESTAMP);
    assert_eq!(inv.description(), Some("payment metadata inside"));
    assert_eq!(inv.payment_metadata(), Some(&[0x01, 0xfa, 0xfa, 0xf0][..]));
    assert_eq!(features_of(&inv), vec![8, 14, 48]);
    assert!(inv
        .fields()
        .iter()
        .any(|f| matches!(f, TaggedField::PaymentMetadata(_))));
}

#[test]
fn public_key_recovery_with_high_s_signature() {
    let inv = Invoice::decode(HIGH_S).unwrap();
    assert_eq!(inv.payee_node_id(), payee());
    assert_eq!(inv.encode(), HIGH_S);
    assert_eq!(hex::encode(&inv.signature_bytes()[..64]), "8d3ce9e28357337f62da0162d9454df827f83cfe499aeb1c1db349d4d8112742a1bcb35d66d6bf93dc445e51753935cc32a3a411efd8a7c7bd85b25815a01b50");
    // Same content as the donation example, whose low-S signature is what
    // signing produces.
    let donation = Invoice::decode(DONATION).unwrap();
    assert_eq!(inv.fields(), donation.fields());
    assert_eq!(inv.signing_hash(), donation.signing_hash());
}

// BOLT 11 §"Examples of Invalid Invoices".

fn invalid(s: &str) -> InvoiceError {
    let err = Invoice::decode(s).expect_err(s);
    let msg = err.to_string();
    assert!(
        msg.chars().next().is_some_and(|c| !c.is_uppercase()),
        "message starts lowercase: {msg}"
    );
    err
}

#[test]
fn invalid_unknown_even_feature_100() {
    assert_eq!(
        invalid("lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q4psqqqqqqqqqqqqqqqqsgqtqyx5vggfcsll4wu246hz02kp85x4katwsk9639we5n5yngc3yhqkm35jnjw4len8vrnqnf5ejh0mzj9n3vz2px97evektfm2l6wqccp3y7372"),
        InvoiceError::UnknownRequiredFeature { bit: 100 }
    );
}

#[test]
fn invalid_checksum() {
    assert_eq!(
        invalid("lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cusd45tftc9c5fh0nnqpnl2jfll544esqchsrnt"),
        InvoiceError::InvalidChecksum
    );
}

#[test]
fn invalid_no_separator() {
    assert_eq!(
        invalid("pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cusd45tftc9c5fh0nnqpnl2jfll544esqchsrny"),
        InvoiceError::MissingSeparator
    );
}

#[test]
fn invalid_mixed_case() {
    assert_eq!(
        invalid("LNBC2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cusd45tftc9c5fh0nnqpnl2jfll544esqchsrny"),
        InvoiceError::MixedCase
    );
}

#[test]
fn invalid_signature_not_recoverable() {
    assert_eq!(
        invalid("lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpusp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9qrsgqwgt7mcn5yqw3yx0w94pswkpq6j9uh6xfqqqtsk4tnarugeektd4hg5975x9am52rz4qskukxdmjemg92vvqz8nvmsye63r5ykel43pgz7zq0g2"),
        InvoiceError::UnrecoverableSignature
    );
}

#[test]
fn invalid_too_short() {
    assert!(matches!(
        invalid("lnbc1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6na6hlh"),
        InvoiceError::TooShort { .. }
    ));
}

#[test]
fn invalid_multiplier() {
    assert_eq!(
        invalid("lnbc2500x1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpusp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9qrsgqrrzc4cvfue4zp3hggxp47ag7xnrlr8vgcmkjxk3j5jqethnumgkpqp23z9jclu3v0a7e0aruz366e9wqdykw6dxhdzcjjhldxq0w6wgqcnu43j"),
        InvoiceError::UnknownMultiplier('x')
    );
}

#[test]
fn invalid_sub_millisatoshi_precision() {
    assert_eq!(
        invalid("lnbc2500000001p1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpusp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9qrsgq0lzc236j96a95uv0m3umg28gclm5lqxtqqwk32uuk4k6673k6n5kfvx3d2h8s295fad45fdhmusm8sjudfhlf6dcsxmfvkeywmjdkxcp99202x"),
        InvoiceError::SubMillisatoshiAmount
    );
}

#[test]
fn invalid_missing_payment_secret() {
    assert_eq!(
        invalid("lnbc20m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqs9qrsgq7ea976txfraylvgzuxs8kgcw23ezlrszfnh8r6qtfpr6cxga50aj6txm9rxrydzd06dfeawfk6swupvz4erwnyutnjq7x39ymw6j38gp49qdkj"),
        InvoiceError::MissingPaymentSecret
    );
}

#[test]
fn invalid_high_s_with_n_field() {
    assert_eq!(
        invalid("lnbc25m1p70xwfzpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaqnp4q0n326hr8v9zprg8gsvezcch06gfaqqhde2aj730yg0durunfhv66sp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9qrsgqsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygsp5cfzp9ugllvk03rltd6hvndxj26ux6gcxc5azyxk060rj9tzghct5zvjlps76gx8wpq5yuu79688k8gnm2c0al6v608s96l0xzrrlqqwnzxmu"),
        InvoiceError::HighSSignature
    );
}

/// BOLT 11 §"Encoding Overview": the `lightning:` URI prefix, as links and
/// QR codes carry it (upper case too), reads as the invoice itself.
#[test]
fn the_lightning_uri_prefix_is_read() {
    let plain = Invoice::decode(COFFEE).unwrap();
    for uri in [
        format!("lightning:{COFFEE}"),
        format!("LIGHTNING:{}", COFFEE.to_uppercase()),
        format!("Lightning:{COFFEE}"),
    ] {
        let inv = Invoice::decode(&uri).unwrap();
        assert_eq!(inv.payment_hash(), plain.payment_hash(), "{uri}");
        assert_eq!(inv.amount(), plain.amount());
    }
    // Only the scheme: `lightning://` is not it, nor a prefix alone.
    assert!(Invoice::decode(&format!("lightning://{COFFEE}")).is_err());
    assert!(Invoice::decode("lightning:").is_err());
}
