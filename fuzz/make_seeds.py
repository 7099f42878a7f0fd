#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target to seeds/<target>/ from the
BOLT test vectors (../../shared/vectors, the spec's JSON) and the vectors
the crates' tests transcribe from the spec's Markdown. Run from fuzz/;
the output is committed, so CI needs neither this script nor the vectors.
"""
import json
import os
import re
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VECTORS = os.path.join(os.path.dirname(ROOT), "shared", "vectors")


def put(target, name, data):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def vec(path):
    with open(os.path.join(VECTORS, path)) as f:
        return json.load(f)


def src(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


# BOLT 4 onion-test.json: the onion and its associated data; its hop
# payloads; and a route built from them.
onion = vec("bolt04/onion-test.json")
packet = bytes.fromhex(onion["onion"])
assoc = bytes.fromhex(onion["generate"]["associated_data"])
put("onion_peel", "bolt04-onion-test", packet + assoc)
payloads = []
for i, hop in enumerate(onion["generate"]["hops"]):
    raw = bytes.fromhex(hop["payload"])
    # The vector's payload starts with its bigsize length.
    n = raw[0]
    body = raw[1 : 1 + n] if n < 0xFD else raw[3:]
    payloads.append(body)
    put("hop_payload", f"bolt04-hop-{i}", body)
    put("message_decode", f"bolt04-hop-{i}-as-tlv", body)
route = bytes([len(payloads) - 1, 0, 7]) + bytes(min(len(p), 255) for p in payloads)
put("onion_peel", "bolt04-route", route + b"".join(payloads))

# BOLT 4 onion-error-test.json: the failure message and the return packet.
err = vec("bolt04/onion-error-test.json")
failure = bytes.fromhex(err["generate"]["failure_message"])
put("failure_decode", "bolt04-failure", failure)
put("failure_decode", "bolt04-errorpacket", bytes.fromhex(err["errorpacket"]))
# A failure of each shape BOLT 4 lists (code, then its data).
put("failure_decode", "temporary_channel_failure",
    struct.pack(">HH", 0x1007, 0))
put("failure_decode", "incorrect_or_unknown_payment_details",
    struct.pack(">HQI", 0x400F, 1000, 800000))
put("failure_decode", "invalid_onion_hmac", struct.pack(">H", 0xC005) + bytes(32))
put("failure_decode", "fee_insufficient", struct.pack(">HQH", 0x100C, 5000, 0))

# BOLT 11 examples (the spec's, as the invoice crate's tests hold them).
for i, inv in enumerate(
    re.findall(r'"(ln(?:bc|tb|bcrt|sb|tbs)[0-9a-z]+)"', src("crates/invoice/tests/bolt11_examples.rs"))
):
    put("invoice_decode", f"bolt11-example-{i:02}", inv.encode())
put("invoice_decode", "signed-fields",
    struct.pack(">QIHHB", 250_000_000, 1_496_314_658, 3600, 18, 9) + b"coffee \xe2\x98\x95" + b"\x01\x02")

# BOLT 7 extended-queries.json: each message, alone and as a gossip record.
for i, q in enumerate(vec("bolt07/extended-queries.json")):
    m = bytes.fromhex(q["hex"])
    put("message_decode", f"bolt07-query-{i}", m)
    put("gossip", f"bolt07-query-{i}", bytes([0]) + struct.pack(">H", len(m)) + m)

# A channel_announcement and an update of it (signatures taken as valid,
# funding output present), on the mainnet chain the target's graph uses.
mainnet = bytes.fromhex("6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000")
k1 = bytes.fromhex("02" + "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
k2 = bytes.fromhex("02" + "c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5")
sig = bytes(31) + b"\x01" + bytes(31) + b"\x01"
scid = struct.pack(">Q", (700_000 << 40) | (1 << 16) | 0)
ann = struct.pack(">H", 256) + sig * 4 + struct.pack(">H", 0) + mainnet + scid + k1 + k2 + k1 + k2
upd = (struct.pack(">H", 258) + sig + mainnet + scid + struct.pack(">IBBHQIIQ", 1_700_000_000, 1, 0, 80, 1000, 1000, 100, 990_000_000))
rec = lambda flags, m: bytes([flags]) + struct.pack(">H", len(m)) + m
put("gossip", "announcement-and-update", rec(3, ann) + rec(1, upd) + rec(3, ann))
put("message_decode", "channel_announcement", ann)
put("message_decode", "channel_update", upd)

# BOLT 8 Appendix A: act one of the responder test, and a framed stream.
act_one = re.search(r'ACT_ONE: &str = "([0-9a-f]+)"', src("crates/noise/tests/bolt08_appendix_a.rs"))
if act_one:
    put("noise_responder", "bolt08-act-one", bytes.fromhex(act_one.group(1)))
put("noise_responder", "framed-two-messages", bytes([0, 0, 0, 0, 0, 3]) + b"\x00\x10" + b"\x05" + b"\x00\x12\x00\x00\x00")

# BOLT 9: the features this node advertises (bits 1, 7, 9, 13, 15, 23,
# 27, 45, 47, 61 optional), and one with a required unknown bit.
bits = [1, 7, 9, 13, 15, 23, 27, 45, 47, 61]
n = max(bits) // 8 + 1
put("init_features", "ours", sum(1 << b for b in bits).to_bytes(n, "big"))
put("init_features", "unknown-even", bytes.fromhex("0100000000"))

# channel_pair: operation sequences (see the target): an HTLC each way,
# signed and settled; one fulfilled across a reconnection; a fee update
# and a restart in the middle of a commitment round.
put("channel_pair", "add-sign-deliver", bytes([0, 0, 50, 2, 5, 5, 4, 4, 16]))
put("channel_pair", "fulfil-across-reconnect", bytes([0, 0, 50, 2, 16, 3, 16, 7, 12, 16, 2, 16]))
put("channel_pair", "fee-and-restart", bytes([10, 40, 2, 5, 14, 1, 0, 20, 3, 16, 15, 16, 6, 2, 16]))
put("channel_pair", "fail-both-ways", bytes([0, 0, 9, 1, 0, 9, 2, 3, 16, 16, 9, 8, 16, 2, 3, 16]))

# record_decode: (position, xor) triples over a fresh channel's record;
# empty is the record itself.
put("record_decode", "unchanged", b"")
put("record_decode", "one-byte-in-the-middle", bytes([0, 200, 1]))
put("record_decode", "version-1", bytes([1]) + bytes(64))
