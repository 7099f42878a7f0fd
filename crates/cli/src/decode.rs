//! `beongae decode INVOICE`: a BOLT 11 invoice as JSON, checked offline (no
//! daemon needed): checksum, signature, required fields and features.

use anyhow::Context;
use beongae_invoice::{Currency, Fallback, Invoice};
use serde_json::{json, Value};

/// The network an invoice's addresses are for (simnet has none in
/// rust-bitcoin; its fallbacks are shown as scripts only).
fn network(c: Currency) -> Option<bitcoin::Network> {
    match c {
        Currency::Bitcoin => Some(bitcoin::Network::Bitcoin),
        Currency::BitcoinTestnet => Some(bitcoin::Network::Testnet),
        Currency::Signet => Some(bitcoin::Network::Signet),
        Currency::Regtest => Some(bitcoin::Network::Regtest),
        _ => None,
    }
}

fn fallback(f: &Fallback, network: Option<bitcoin::Network>) -> Value {
    let script = f.script_pubkey();
    let address = network
        .and_then(|n| bitcoin::Address::from_script(&script, n).ok())
        .map(|a| a.to_string());
    json!({ "address": address, "script_pubkey": hex::encode(script.as_bytes()) })
}

/// The invoice as the JSON `beongae decode` prints.
pub fn describe(inv: &Invoice) -> Value {
    let network = network(inv.currency());
    let route_hints: Vec<Value> = inv
        .route_hints()
        .map(|hint| {
            hint.0
                .iter()
                .map(|hop| {
                    json!({
                        "node_id": hop.src_node_id.to_string(),
                        "short_channel_id": hop.short_channel_id.to_string(),
                        "fee_base_msat": hop.fee_base_msat,
                        "fee_proportional_millionths": hop.fee_proportional_millionths,
                        "cltv_expiry_delta": hop.cltv_expiry_delta,
                    })
                })
                .collect()
        })
        .collect();
    json!({
        "currency": inv.currency().to_string(),
        "amount_msat": inv.amount().map(|a| a.to_msat()),
        "payee": inv.payee_node_id().to_string(),
        "payment_hash": hex::encode(inv.payment_hash().0),
        "payment_secret": hex::encode(inv.payment_secret().0),
        "description": inv.description(),
        "description_hash": inv.description_hash().map(|h| hex::encode(h.0)),
        "timestamp": inv.timestamp(),
        "expiry": inv.expiry(),
        "expires_at": inv.expires_at(),
        "min_final_cltv_expiry_delta": inv.min_final_cltv_expiry_delta(),
        "features": inv.features().to_string(),
        "fallbacks": inv.fallbacks().map(|f| fallback(f, network)).collect::<Vec<_>>(),
        "route_hints": route_hints,
        "payment_metadata": inv.payment_metadata().map(hex::encode),
    })
}

/// Decodes and prints; the error says what is wrong with the string.
pub fn run(invoice: &str) -> anyhow::Result<()> {
    let inv = Invoice::decode(invoice.trim()).context("not a valid BOLT 11 invoice")?;
    println!("{}", serde_json::to_string_pretty(&describe(&inv))?);
    Ok(())
}
