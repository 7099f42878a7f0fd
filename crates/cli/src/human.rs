//! Output for people: tables, amounts in sat, times as dates, a QR code
//! for invoices, a spinner while waiting. Every renderer takes the API's
//! JSON, so `--json` and the human output show the same data.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::time::Duration;

use serde_json::Value;

/// How to print results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Tables and sentences.
    Human,
    /// The API's JSON.
    Json,
}

impl Output {
    /// `--json` wins, then `--output`, else human on a terminal and JSON
    /// when piped.
    pub fn choose(json: bool, output: Option<Output>) -> Output {
        match (json, output) {
            (true, _) => Output::Json,
            (false, Some(o)) => o,
            (false, None) if std::io::stdout().is_terminal() => Output::Human,
            (false, None) => Output::Json,
        }
    }
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Millisatoshi as sat: `2,500 sat`, or `1.500 sat` when not whole.
pub fn sat_of_msat(msat: u64) -> String {
    match msat % 1000 {
        0 => format!("{} sat", thousands(msat / 1000)),
        r => format!("{}.{r:03} sat", thousands(msat / 1000)),
    }
}

/// `1,234 sat`.
pub fn sat(sat: u64) -> String {
    format!("{} sat", thousands(sat))
}

fn msat_field(v: &Value, k: &str) -> String {
    v[k].as_u64().map_or_else(|| "any".into(), sat_of_msat)
}

fn sat_field(v: &Value, k: &str) -> String {
    v[k].as_u64().map_or_else(|| "-".into(), sat)
}

/// The first and last characters of a long id: `03bc62af62…7e36a2`.
pub fn short(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 20 {
        return id.to_owned();
    }
    let head: String = chars[..10].iter().collect();
    let tail: String = chars[chars.len() - 6..].iter().collect();
    format!("{head}…{tail}")
}

/// The first `n` characters (a channel id's start names it in tables).
pub fn prefix(id: &str, n: usize) -> String {
    id.chars().take(n).collect()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

/// Seconds since 1970 as `2026-12-06 16:03 UTC`.
pub fn date(secs: u64) -> String {
    let full = crate::devnet::format_time(u32::try_from(secs).unwrap_or(u32::MAX));
    // Drop the seconds: `YYYY-MM-DD HH:MM:SS UTC` -> `YYYY-MM-DD HH:MM UTC`.
    format!("{} UTC", &full[..16])
}

/// A table: a header row and rows, columns padded; numbers (cells
/// starting with a digit and ending in `sat`) aligned right.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let n = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let right = |c: &str| c.ends_with(" sat") && c.starts_with(|ch: char| ch.is_ascii_digit());
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i].saturating_sub(c.chars().count());
            if right(c) {
                l.push_str(&" ".repeat(pad));
                l.push_str(c);
            } else {
                l.push_str(c);
                if i + 1 < n {
                    l.push_str(&" ".repeat(pad));
                }
            }
            if i + 1 < n {
                l.push_str("  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

/// `info`.
pub fn info(v: &Value) -> String {
    let c = &v["channels"];
    let mut out = String::new();
    let _ = writeln!(out, "node      {}", s(v, "node_id"));
    if let Some(l) = v["listen"].as_str() {
        let _ = writeln!(out, "peers at  {}@{l}", s(v, "node_id"));
    }
    let sync = if v["synced"] == true {
        "synced".to_owned()
    } else {
        format!("catching up: block {} processed", v["synced_height"])
    };
    let _ = writeln!(
        out,
        "network   {}, block {} ({sync})",
        s(v, "network"),
        v["block_height"]
    );
    let build = v["build"]
        .as_str()
        .map_or_else(String::new, |b| format!(" (build {b})"));
    let _ = writeln!(out, "version   {}{build}", s(v, "version"));
    let _ = writeln!(out, "peers     {}", v["peers"]);
    let _ = writeln!(
        out,
        "channels  {} active, {} inactive, {} pending, {} closing, {} closed",
        c["active"], c["inactive"], c["pending"], c["closing"], c["closed"]
    );
    out
}

/// `balance`.
pub fn balance(v: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "on chain  {} confirmed, {} unconfirmed, {} immature (block {})",
        sat_field(v, "confirmed_sat"),
        sat_field(v, "unconfirmed_sat"),
        sat_field(v, "immature_sat"),
        v["height"]
    );
    let _ = writeln!(
        out,
        "channels  {} ours; can send {}, can receive {} now",
        msat_field(v, "channels_local_msat"),
        msat_field(v, "channels_spendable_msat"),
        msat_field(v, "channels_receivable_msat"),
    );
    if v["closing_channels_sat"].as_u64().unwrap_or(0) > 0 {
        let _ = writeln!(
            out,
            "closing   {} on the way back from force-closed channels",
            sat_field(v, "closing_channels_sat")
        );
    }
    if v["fee_reserve_sat"].as_u64().unwrap_or(0) > 0 {
        let _ = writeln!(
            out,
            "reserve   {} of the wallet kept for the fees of force closes",
            sat_field(v, "fee_reserve_sat")
        );
    }
    if let Some(w) = v["warning"].as_str() {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

/// `channels`.
pub fn channels(v: &Value) -> String {
    let list = v.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return "no channels: open one with `beongae openchannel NODE_ID AMOUNT`\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            let state = match (s(c, "state"), c["active"].as_bool()) {
                ("normal", Some(false)) => "normal (peer away)".to_owned(),
                ("awaiting_confirmation", _) => match (
                    c["confirmations"].as_u64(),
                    c["confirmations_required"].as_u64(),
                ) {
                    (Some(got), Some(need)) => format!("confirming {got}/{need}"),
                    _ => "awaiting confirmation".to_owned(),
                },
                (st, _) => st.replace('_', " "),
            };
            vec![
                prefix(s(c, "channel_id"), 16),
                short(s(c, "peer")),
                state,
                sat_field(c, "capacity_sat"),
                msat_field(c, "local_msat"),
                msat_field(c, "remote_msat"),
                msat_field(c, "spendable_msat"),
                msat_field(c, "receivable_msat"),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "CHANNEL",
            "PEER",
            "STATE",
            "CAPACITY",
            "OURS",
            "THEIRS",
            "CAN SEND",
            "CAN RECEIVE",
        ],
        &rows,
    );
    for c in &list {
        if let Some(r) = c["reason"].as_str() {
            let _ = writeln!(out, "{}: {r}", prefix(s(c, "channel_id"), 16));
        }
    }
    out
}

/// `peers`.
pub fn peers(v: &Value) -> String {
    let list = v.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return "no peers: connect with `beongae connect NODE_ID@HOST:PORT`\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|p| {
            vec![
                s(p, "node_id").to_owned(),
                s(p, "direction").to_owned(),
                s(p, "address").to_owned(),
            ]
        })
        .collect();
    table(&["NODE", "DIRECTION", "ADDRESS"], &rows)
}

/// `text` as a QR code for a terminal: two modules per character cell,
/// dark modules drawn as black blocks on a white background (set with ANSI
/// colours on every line), so that a phone reads it whatever the
/// terminal's own colours, with the quiet zone the standard asks for.
fn qr_code(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let art = code
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build();
    let mut out = String::new();
    for line in art.lines() {
        // Black on bright white, then back to the terminal's colours.
        let _ = writeln!(out, "\x1b[30;107m{line}\x1b[0m");
    }
    Some(out)
}

/// `invoice` (the QR code only on a terminal).
pub fn invoice(v: &Value, qr: bool) -> String {
    let mut out = format!("{}\n", s(v, "invoice"));
    if qr {
        if let Some(code) = qr_code(&s(v, "invoice").to_uppercase()) {
            out.push_str(&code);
        }
    }
    let description = v["description"]
        .as_str()
        .filter(|d| !d.is_empty())
        .map_or_else(String::new, |d| format!(" for \"{d}\""));
    let _ = writeln!(
        out,
        "{}{description}, {}; expires {}",
        msat_field(v, "amount_msat"),
        s(v, "status"),
        date(v["expires"].as_u64().unwrap_or(0))
    );
    let _ = writeln!(out, "payment hash {}", s(v, "payment_hash"));
    out
}

/// `pay` and `keysend`: the outcome in words.
pub fn paid(v: &Value) -> String {
    let route: Vec<&str> = v["route"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let to = route
        .last()
        .map_or_else(String::new, |n| format!(" to {}", short(n)));
    let hops = match route.len() {
        0 | 1 => "directly".to_owned(),
        n => format!(
            "over {n} hops (via {})",
            route[..n - 1]
                .iter()
                .map(|n| short(n))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let ms = v["duration_ms"]
        .as_u64()
        .map_or_else(String::new, |ms| format!(" in {ms} ms"));
    format!(
        "paid {}{to} {hops}{ms}, fee {}\npreimage {}\n",
        msat_field(v, "amount_msat"),
        v["fee_msat"]
            .as_u64()
            .map_or_else(|| "0 sat".into(), sat_of_msat),
        s(v, "preimage")
    )
}

/// `payments`: invoices and payments.
pub fn payments(v: &Value) -> String {
    let invoices = v["invoices"].as_array().cloned().unwrap_or_default();
    let payments = v["payments"].as_array().cloned().unwrap_or_default();
    let mut out = String::new();
    if invoices.is_empty() {
        out.push_str("no invoices\n");
    } else {
        let rows: Vec<Vec<String>> = invoices
            .iter()
            .map(|i| {
                vec![
                    date(i["created"].as_u64().unwrap_or(0)),
                    msat_field(i, "amount_msat"),
                    s(i, "status").to_owned(),
                    if i["keysend"] == true {
                        "(keysend)".to_owned()
                    } else {
                        s(i, "description").to_owned()
                    },
                    short(s(i, "payment_hash")),
                ]
            })
            .collect();
        out.push_str("Invoices\n");
        out.push_str(&table(
            &["CREATED", "AMOUNT", "STATUS", "DESCRIPTION", "HASH"],
            &rows,
        ));
    }
    out.push('\n');
    if payments.is_empty() {
        out.push_str("no payments\n");
    } else {
        let rows: Vec<Vec<String>> = payments
            .iter()
            .map(|p| {
                let status = match p["failure"].as_str() {
                    Some(f) => format!("failed: {f}"),
                    None => s(p, "status").to_owned(),
                };
                vec![
                    p["created"].as_u64().map_or_else(|| "-".into(), date),
                    short(s(p, "payment_hash")),
                    msat_field(p, "amount_msat"),
                    p["fee_msat"]
                        .as_u64()
                        .map_or_else(|| "-".into(), sat_of_msat),
                    p["route"].as_array().map_or(0, Vec::len).to_string(),
                    status,
                ]
            })
            .collect();
        out.push_str("Payments\n");
        out.push_str(&table(
            &["SENT", "HASH", "AMOUNT", "FEE", "HOPS", "STATUS"],
            &rows,
        ));
    }
    out
}

/// `forwards`.
pub fn forwards(v: &Value) -> String {
    let list = v["forwards"].as_array().cloned().unwrap_or_default();
    let mut out = String::new();
    if !list.is_empty() {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|f| {
                vec![
                    date(f["created"].as_u64().unwrap_or(0)),
                    prefix(s(f, "in_channel"), 16),
                    prefix(s(f, "out_channel"), 16),
                    msat_field(f, "out_msat"),
                    msat_field(f, "fee_msat"),
                    s(f, "status").to_owned(),
                ]
            })
            .collect();
        out = table(&["WHEN", "IN", "OUT", "AMOUNT", "FEE", "STATUS"], &rows);
    }
    let _ = writeln!(
        out,
        "{} forwarded, {} earned",
        list.len(),
        msat_field(v, "fees_earned_msat")
    );
    out
}

/// `graph`.
pub fn graph(v: &Value) -> String {
    let channels = v["channels"].as_array().cloned().unwrap_or_default();
    let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
    let mut out = format!(
        "{} public channels, {} nodes announced\n",
        channels.len(),
        nodes.len()
    );
    if !channels.is_empty() {
        let rows: Vec<Vec<String>> = channels
            .iter()
            .map(|c| {
                vec![
                    s(c, "short_channel_id").to_owned(),
                    short(s(c, "node_1")),
                    short(s(c, "node_2")),
                    sat_field(c, "capacity_sat"),
                ]
            })
            .collect();
        out.push_str(&table(&["CHANNEL", "NODE 1", "NODE 2", "CAPACITY"], &rows));
    }
    out
}

/// `token list`.
pub fn tokens(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| {
            vec![
                s(t, "id").to_owned(),
                s(t, "scope").to_owned(),
                date(t["created"].as_u64().unwrap_or(0)),
                s(t, "name").to_owned(),
            ]
        })
        .collect();
    table(&["ID", "SCOPE", "CREATED", "NAME"], &rows)
}

/// One event as a line.
pub fn event(e: &Value) -> String {
    let hash = || short(s(e, "payment_hash"));
    match s(e, "type") {
        "invoice_paid" => format!(
            "invoice paid: {} ({})",
            msat_field(e, "amount_msat"),
            hash()
        ),
        "payment_succeeded" => format!(
            "payment sent: {} ({})",
            msat_field(e, "amount_msat"),
            hash()
        ),
        "payment_failed" => format!("payment failed ({}): {}", hash(), s(e, "reason")),
        "channel_pending" => format!(
            "channel {} with {} awaits confirmation",
            short(s(e, "channel_id")),
            short(s(e, "peer"))
        ),
        "channel_ready" => format!(
            "channel {} with {} is open",
            short(s(e, "channel_id")),
            short(s(e, "peer"))
        ),
        "channel_closed" => format!("channel {} closed", short(s(e, "channel_id"))),
        "peer_connected" => format!("peer {} connected", short(s(e, "node_id"))),
        "peer_disconnected" => format!("peer {} disconnected", short(s(e, "node_id"))),
        "peer_message" => format!(
            "{} from {}: {}",
            s(e, "kind"),
            short(s(e, "node_id")),
            s(e, "text")
        ),
        "lagged" => format!("(missed {} events)", e["missed"]),
        other => format!("{other}: {e}"),
    }
}

/// Runs `f` with a spinner and `label` on stderr when it is a terminal.
pub async fn spinner<T>(label: &str, f: impl std::future::Future<Output = T>) -> T {
    spinner_with(&Label::new(label), f).await
}

/// What a spinner says; the work it spins for may change it (a count of
/// confirmations, say).
#[derive(Clone, Debug, Default)]
pub struct Label(std::sync::Arc<std::sync::Mutex<String>>);

impl Label {
    /// A label saying `text`.
    pub fn new(text: &str) -> Label {
        Label(std::sync::Arc::new(std::sync::Mutex::new(text.to_owned())))
    }

    /// Says `text` from now on.
    pub fn set(&self, text: String) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = text;
    }

    fn get(&self) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// [`spinner`] with a label that can change while it spins.
pub async fn spinner_with<T>(label: &Label, f: impl std::future::Future<Output = T>) -> T {
    if !std::io::stderr().is_terminal() {
        return f.await;
    }
    let label = label.clone();
    let spin = tokio::spawn(async move {
        use std::io::Write as _;
        let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
        let started = std::time::Instant::now();
        for i in 0.. {
            {
                let mut err = std::io::stderr().lock();
                // Cleared first: a new label may be shorter.
                let _ = write!(
                    err,
                    "\r\x1b[2K{} {} {}s ",
                    frames[i % frames.len()],
                    label.get(),
                    started.elapsed().as_secs()
                );
                let _ = err.flush();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let out = f.await;
    spin.abort();
    eprint!("\r\x1b[2K");
    out
}

/// Renders the result of command `kind` (its clap name).
pub fn render(kind: &str, v: &Value, qr: bool) -> String {
    match kind {
        "info" => info(v),
        "balance" => balance(v),
        "channels" => channels(v),
        "peers" => peers(v),
        "invoice" => invoice(v, qr),
        "pay" | "keysend" => paid(v),
        "payments" => payments(v),
        "forwards" => forwards(v),
        "graph" => graph(v),
        "token list" => tokens(v),
        "token create" => format!(
            "{}\n(shown this once) scope {}, id {}\n",
            s(v, "token"),
            s(&v["info"], "scope"),
            s(&v["info"], "id")
        ),
        "token revoke" => "revoked\n".into(),
        "newaddress" => format!("{}\n", s(v, "address")),
        "send" => format!(
            "sent {} (fee {}): transaction {}\n",
            sat_field(v, "amount_sat"),
            sat_field(v, "fee_sat"),
            s(v, "txid")
        ),
        "connect" => format!(
            "connected to {} at {} ({})\n",
            s(v, "node_id"),
            s(v, "address"),
            s(v, "direction")
        ),
        "disconnect" => if v["was_connected"] == true {
            "disconnected\n".into()
        } else {
            "was not connected\n".into()
        },
        "ping" => format!(
            "pong: {} bytes in {:.1} ms\n",
            v["pong_bytes"],
            v["round_trip_ms"].as_f64().unwrap_or(0.0)
        ),
        "openchannel" => format!(
            "opening channel {} of {}\nfunding transaction {} (the channel is usable once it confirms; `beongae channels` shows it)\n",
            s(v, "channel_id"),
            sat_field(v, "capacity_sat"),
            s(v, "funding_txid")
        ),
        "closechannel" => format!("closing: transaction {}\n", s(v, "closing_txid")),
        "setpolicy" => format!(
            "policy set on {} channel(s)\n",
            v["channels"].as_array().map_or(0, Vec::len)
        ),
        "stop" => "the daemon is stopping\n".into(),
        "store migrate" => format!(
            "copied {} keys ({} bytes) in {} namespaces, and read them back: the copy is identical\nstart the daemon with --store set to the target\n",
            thousands(v["keys"].as_u64().unwrap_or(0)),
            thousands(v["bytes"].as_u64().unwrap_or(0)),
            v["namespaces"].as_u64().unwrap_or(0)
        ),
        "devnet mine" => format!(
            "mined {} block(s); height {}\n",
            v["blocks"].as_array().map_or(0, Vec::len),
            v["height"]
        ),
        "devnet fund" => format!(
            "paid {} to {} in block {} (transaction {})\n",
            sat_field(v, "amount_sat"),
            s(v, "address"),
            v["height"],
            s(v, "txid")
        ),
        "devnet feerate" => format!(
            "fee estimate and block floor: {} sat/vB ({} sat/kW)\n",
            v["sat_per_vb"], v["sat_per_kw"]
        ),
        "devnet info" => format!(
            "devnet    {} (RPC {}, cookie {})\nheight    {} ({})\nmempool   {} transaction(s)\nfaucet    {} spendable\nfeerate   {} sat/kW\n",
            s(v, "directory"),
            s(v, "rpc_url"),
            s(v, "cookie_file"),
            v["height"],
            s(v, "bestblockhash"),
            v["mempool"],
            sat_field(v, "faucet_sat"),
            v["feerate_sat_per_kw"]
        ),
        _ => format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_qr_code_is_black_on_white_whatever_the_terminal() {
        let code = qr_code("LNBCRT1TEST").unwrap();
        let lines: Vec<&str> = code.lines().collect();
        // Version 1 (21 modules) and a quiet zone of 4 on each side: 29
        // modules, two rows per line.
        assert_eq!(lines.len(), 15);
        for line in &lines {
            let inner = line
                .strip_prefix("\x1b[30;107m")
                .and_then(|l| l.strip_suffix("\x1b[0m"))
                .unwrap();
            assert_eq!(inner.chars().count(), 29);
        }
        // The quiet zone is light: spaces (the white background).
        assert!(lines[0].contains(&" ".repeat(29)));
        // The top-left finder pattern's first row of 7 dark modules, after 4
        // light ones: the upper half of its cells is dark.
        let row: Vec<char> = lines[2].chars().skip("\x1b[30;107m".len()).collect();
        assert_eq!(row[..4], [' '; 4]);
        assert!(row[4..11]
            .iter()
            .all(|c| *c == '\u{2580}' || *c == '\u{2588}'));
    }

    use super::*;

    #[test]
    fn amounts_read_as_people_write_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(sat_of_msat(2_500_000), "2,500 sat");
        assert_eq!(sat_of_msat(1_500), "1.500 sat");
        assert_eq!(sat_of_msat(1_000_001), "1,000.001 sat");
        assert_eq!(date(1_796_573_152), "2026-12-06 16:05 UTC");
        // Whatever a server sends, nothing is cut inside a character.
        assert_eq!(short("ééééééééééééééééééééé"), "éééééééééé…éééééé");
        assert_eq!(prefix("ab", 16), "ab");
        assert_eq!(
            short("03bc62af621de7f831ad47999d040a4993121e86d64062c1b82526dc94f77e36a2"),
            "03bc62af62…7e36a2"
        );
    }

    #[test]
    fn tables_pad_and_align_amounts_right() {
        let t = table(
            &["ID", "AMOUNT", "NOTE"],
            &[
                vec!["a".into(), "2,500 sat".into(), "x".into()],
                vec!["bbb".into(), "1 sat".into(), "".into()],
            ],
        );
        assert_eq!(
            t,
            "ID   AMOUNT     NOTE\na    2,500 sat  x\nbbb      1 sat\n"
        );
    }
}
