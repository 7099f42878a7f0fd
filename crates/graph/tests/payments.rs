//! The scorer's liquidity bounds, and what they, the payer's first hops,
//! the invoice's route hints, multi-part payments, the fee cap and the
//! shadow route do to the routes found.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use beongae_graph::route::{FirstHop, InFlight, RouteError, RouteParams, Router};
use beongae_graph::{find_route, Graph, Scorer, ScorerParams};
use beongae_invoice::{RouteHint, RouteHintHop};
use beongae_wire::{ChainHash, ShortChannelId};
use common::{check, link, node, policy, random_graph, Rng};

const SAT: u64 = 1_000;
const HALF_LIFE: u64 = 6 * 3_600;

fn scid(n: u32) -> ShortChannelId {
    ShortChannelId::new(n, 0, 0).unwrap()
}

/// Direction of the channel `from`-`to` that `from` sends over.
fn dir(from: u8, to: u8) -> usize {
    usize::from(node(from).serialize() > node(to).serialize())
}

/// 1-2-4 (free) and 1-3-4 (3 charges 1,000 msat), 1,000,000 sat each.
fn diamond() -> Graph {
    let mut g = Graph::new(ChainHash::BITCOIN);
    let free = policy(0, 0, 40, 1_000_000 * SAT);
    link(&mut g, 1, 1, 2, 1_000_000, free);
    link(&mut g, 2, 2, 4, 1_000_000, free);
    link(&mut g, 3, 1, 3, 1_000_000, free);
    link(
        &mut g,
        4,
        3,
        4,
        1_000_000,
        policy(1_000, 0, 40, 1_000_000 * SAT),
    );
    g
}

fn via(r: &beongae_graph::Route) -> Vec<ShortChannelId> {
    r.hops.iter().map(|h| h.short_channel_id).collect()
}

#[test]
fn failures_and_successes_narrow_the_bounds_which_relax_with_time() {
    let g = diamond();
    let mut s = Scorer::new(ScorerParams::default());
    let cap = 1_000_000 * SAT;
    assert_eq!(
        s.liquidity_bounds(&g, scid(1), dir(1, 2), 0),
        Some((0, cap))
    );
    let params = RouteParams::default();
    let r = Router::new(&g, &s, 1_000)
        .route(&node(1), &node(4), 400_000 * SAT, &params)
        .unwrap();
    assert_eq!(via(&r), vec![scid(1), scid(2)]);

    // Fails at the second hop: the first carried 400,000 sat, the second
    // had less; the other directions learn nothing.
    s.path_failed(&g, &node(1), &r, 1, 1_000);
    assert_eq!(
        s.liquidity_bounds(&g, scid(1), dir(1, 2), 1_000),
        Some((400_000 * SAT, cap))
    );
    assert_eq!(
        s.liquidity_bounds(&g, scid(2), dir(2, 4), 1_000),
        Some((0, 400_000 * SAT - 1))
    );
    assert_eq!(
        s.liquidity_bounds(&g, scid(2), dir(4, 2), 1_000),
        Some((0, cap))
    );
    // One half-life later both bounds are halfway back.
    let later = 1_000 + HALF_LIFE;
    assert_eq!(
        s.liquidity_bounds(&g, scid(1), dir(1, 2), later),
        Some((200_000 * SAT, cap))
    );
    assert_eq!(
        s.liquidity_bounds(&g, scid(2), dir(2, 4), later),
        Some((0, cap - 300_000_000))
    );

    // While it is known short, 2-4 is avoided for 400,000 sat; once the
    // bound has relaxed, the free route is back.
    let r2 = Router::new(&g, &s, 1_000)
        .route(&node(1), &node(4), 400_000 * SAT, &params)
        .unwrap();
    assert_eq!(via(&r2), vec![scid(3), scid(4)]);
    let r3 = Router::new(&g, &s, 1_000 + 10 * HALF_LIFE)
        .route(&node(1), &node(4), 400_000 * SAT, &params)
        .unwrap();
    assert_eq!(via(&r3), vec![scid(1), scid(2)]);
    // A small amount is still likely enough over 2-4 (39/40) to beat the
    // 1,000 msat fee of 3 (at 99/100 for each of its two hops).
    let r4 = Router::new(&g, &s, 1_000)
        .route(&node(1), &node(4), 10_000 * SAT, &params)
        .unwrap();
    assert_eq!(via(&r4), vec![scid(1), scid(2)]);

    // A success: each hop carried its amount, which then moved across.
    let (a3, a4) = (r2.hops[0].amount_msat, r2.hops[1].amount_msat);
    assert_eq!((a3, a4), (400_000 * SAT + 1_000, 400_000 * SAT));
    s.path_succeeded(&g, &node(1), &r2, 2_000);
    assert_eq!(
        s.liquidity_bounds(&g, scid(3), dir(1, 3), 2_000),
        Some((0, cap - a3))
    );
    assert_eq!(
        s.liquidity_bounds(&g, scid(4), dir(3, 4), 2_000),
        Some((0, cap - a4))
    );
}

#[test]
fn probability_of_the_route_follows_the_bounds() {
    let g = diamond();
    let s = Scorer::default();
    let params = RouteParams::default();
    let p = Router::new(&g, &s, 0)
        .pay(&node(1), &node(4), 100_000 * SAT, &params)
        .unwrap();
    assert_eq!(p.parts.len(), 1);
    // Two hops, each (cap + 1 - amount) / (cap + 1) under the uniform prior.
    let hop = 900_000_001f64 / 1_000_000_001f64;
    assert!((p.success_probability - hop * hop).abs() < 1e-12);
}

#[test]
fn first_hops_replace_the_payers_channels_with_their_balances() {
    let g = diamond();
    let s = Scorer::default();
    let mut params = RouteParams {
        first_hops: Some(vec![
            FirstHop {
                short_channel_id: scid(1),
                node_id: node(2),
                outbound_msat: 50_000 * SAT,
                htlc_minimum_msat: 1,
            },
            FirstHop {
                short_channel_id: scid(3),
                node_id: node(3),
                outbound_msat: 500_000 * SAT,
                htlc_minimum_msat: 1,
            },
        ]),
        ..RouteParams::default()
    };
    let router = Router::new(&g, &s, 0);
    // 2 cannot take 100,000 sat from us, however free it is onwards.
    let r = router
        .route(&node(1), &node(4), 100_000 * SAT, &params)
        .unwrap();
    assert_eq!(via(&r), vec![scid(3), scid(4)]);
    let r = router
        .route(&node(1), &node(4), 40_000 * SAT, &params)
        .unwrap();
    assert_eq!(via(&r), vec![scid(1), scid(2)]);
    // A known balance is certain: the first hop costs no failure price.
    let p = router
        .pay(&node(1), &node(4), 40_000 * SAT, &params)
        .unwrap();
    let second = (1_000_000_001f64 - 40_000_000f64) / 1_000_000_001f64;
    assert!((p.success_probability - second).abs() < 1e-12);
    assert_eq!(
        router.route(&node(1), &node(4), 600_000 * SAT, &params),
        Err(RouteError::NoRoute(600_000 * SAT))
    );

    // A private payer (node 9, unknown to the graph) with one channel to 2.
    params.first_hops = Some(vec![FirstHop {
        short_channel_id: scid(99),
        node_id: node(2),
        outbound_msat: 1_000_000 * SAT,
        htlc_minimum_msat: 1,
    }]);
    let r = router
        .route(&node(9), &node(4), 1_000 * SAT, &params)
        .unwrap();
    assert_eq!(via(&r), vec![scid(99), scid(2)]);
    assert_eq!(r.hops[0].node_id, node(2));
    assert_eq!(r.fee_msat(), 0);
    assert_eq!(
        find_route(&g, &node(9), &node(4), 1_000, &RouteParams::default()),
        Err(RouteError::UnknownNode(node(9)))
    );
}

#[test]
fn route_hints_reach_private_payees_with_their_fees_and_deltas() {
    let g = diamond();
    let s = Scorer::default();
    let hop = |src: u8, n: u32, base: u32, ppm: u32, delta: u16| RouteHintHop {
        src_node_id: node(src),
        short_channel_id: scid(n),
        fee_base_msat: base,
        fee_proportional_millionths: ppm,
        cltv_expiry_delta: delta,
    };
    // Payee 8 is private; without hints it cannot be found.
    assert_eq!(
        find_route(&g, &node(1), &node(8), 1_000, &RouteParams::default()),
        Err(RouteError::UnknownNode(node(8)))
    );
    // One hint: 4 -> 8 over channel 77 (1,000 msat + 100 ppm, 40 blocks).
    let params = RouteParams {
        route_hints: vec![RouteHint(vec![hop(4, 77, 1_000, 100, 40)])],
        ..RouteParams::default()
    };
    let amount = 50_000 * SAT;
    let r = find_route(&g, &node(1), &node(8), amount, &params).unwrap();
    assert_eq!(via(&r), vec![scid(1), scid(2), scid(77)]);
    let fee_4 = 1_000 + amount * 100 / 1_000_000;
    assert_eq!(
        r.hops
            .iter()
            .map(|h| (h.amount_msat, h.cltv_expiry_delta))
            .collect::<Vec<_>>(),
        vec![
            (amount + fee_4, 18 + 40 + 40),
            (amount + fee_4, 18 + 40),
            (amount, 18)
        ]
    );

    // Two hints hops: 4 -> 7 (private too) over 77, then 7 -> 8 over 78.
    let params = RouteParams {
        route_hints: vec![RouteHint(vec![
            hop(4, 77, 1_000, 100, 40),
            hop(7, 78, 2_000, 0, 10),
        ])],
        ..RouteParams::default()
    };
    let r = find_route(&g, &node(1), &node(8), amount, &params).unwrap();
    assert_eq!(via(&r), vec![scid(1), scid(2), scid(77), scid(78)]);
    assert_eq!(r.hops[2].node_id, node(7));
    assert_eq!(r.hops[3].node_id, node(8));
    let at_7 = amount + 2_000;
    let at_4 = at_7 + 1_000 + at_7 * 100 / 1_000_000;
    assert_eq!(
        r.hops
            .iter()
            .map(|h| (h.amount_msat, h.cltv_expiry_delta))
            .collect::<Vec<_>>(),
        vec![
            (at_4, 18 + 10 + 40 + 40),
            (at_4, 18 + 10 + 40),
            (at_7, 18 + 10),
            (amount, 18)
        ]
    );
    // A hint channel that failed is avoided like any other.
    let mut s2 = Scorer::default();
    s2.path_failed(&g, &node(1), &r, 3, 0);
    assert_eq!(s2.hint_liquidity_bounds(scid(78), 0), (0, amount - 1));
    assert_eq!(
        Router::new(&g, &s2, 0).route(&node(1), &node(8), amount, &params),
        Err(RouteError::NoRoute(amount))
    );
    drop(s);
}

#[test]
fn multi_part_payments_split_what_no_single_route_carries() {
    let g = diamond();
    let s = Scorer::default();
    let amount = 1_500_000 * SAT;
    let mut params = RouteParams::default();
    let router = Router::new(&g, &s, 0);
    assert_eq!(
        router.pay(&node(1), &node(4), amount, &params).unwrap_err(),
        RouteError::NoRoute(amount)
    );
    params.allow_mpp = true;
    let p = router.pay(&node(1), &node(4), amount, &params).unwrap();
    assert!(p.parts.len() >= 2);
    assert_eq!(
        p.parts.iter().map(|r| r.final_amount_msat()).sum::<u64>(),
        amount
    );
    // Together the parts fit every channel's capacity.
    let mut load = std::collections::HashMap::new();
    for r in &p.parts {
        check(&g, 1, r, r.final_amount_msat(), &params);
        for h in &r.hops {
            *load.entry(h.short_channel_id).or_insert(0u64) += h.amount_msat;
        }
    }
    for (scid, total) in load {
        assert!(total <= 1_000_000 * SAT, "{scid} carries {total}");
    }
    assert!(p.success_probability > 0.0 && p.success_probability < 0.5);

    // 900,000 sat fits one route but rarely arrives: split, it is likelier.
    let single = router
        .route(&node(1), &node(4), 900_000 * SAT, &params)
        .unwrap();
    assert_eq!(single.hops.len(), 2);
    let p = router
        .pay(&node(1), &node(4), 900_000 * SAT, &params)
        .unwrap();
    assert!(p.parts.len() >= 2, "{} parts", p.parts.len());
    let one = (100_000_001f64 / 1_000_000_001f64).powi(2);
    assert!(
        p.success_probability > 5.0 * one,
        "{}",
        p.success_probability
    );
    // A small amount stays in one part.
    let p = router
        .pay(&node(1), &node(4), 1_000 * SAT, &params)
        .unwrap();
    assert_eq!(p.parts.len(), 1);

    // What is already in flight counts: with 600,000 sat pending over 1-2-4,
    // 500,000 more must go over 3.
    let mut in_flight = InFlight::new();
    let pending = router
        .route(&node(1), &node(4), 600_000 * SAT, &params)
        .unwrap();
    assert_eq!(via(&pending), vec![scid(1), scid(2)]);
    let more = |in_flight: &InFlight| {
        via(&Router::new(&g, &s, 0)
            .with_in_flight(in_flight)
            .route(&node(1), &node(4), 500_000 * SAT, &params)
            .unwrap())
    };
    in_flight.add_route(&g, &node(1), &pending);
    assert_eq!(more(&in_flight), vec![scid(3), scid(4)]);
    in_flight.remove_route(&g, &node(1), &pending);
    assert_eq!(more(&in_flight), vec![scid(1), scid(2)]);
}

#[test]
fn the_fee_cap_is_honoured() {
    let g = diamond();
    let mut params = RouteParams {
        excluded_channels: [scid(2)].into(),
        max_fee_msat: Some(999),
        ..RouteParams::default()
    };
    assert_eq!(
        find_route(&g, &node(1), &node(4), 5_000, &params),
        Err(RouteError::NoRoute(5_000))
    );
    params.max_fee_msat = Some(1_000);
    let r = find_route(&g, &node(1), &node(4), 5_000, &params).unwrap();
    assert_eq!(r.fee_msat(), 1_000);
}

#[test]
fn the_shadow_route_is_a_seeded_walk_within_the_cltv_cap() {
    // 4 also has channels onwards (5, 6) with their own deltas.
    let mut g = diamond();
    link(
        &mut g,
        5,
        4,
        5,
        1_000_000,
        policy(0, 0, 72, 1_000_000 * SAT),
    );
    link(
        &mut g,
        6,
        4,
        6,
        1_000_000,
        policy(0, 0, 144, 1_000_000 * SAT),
    );
    let mut params = RouteParams {
        shadow_max_hops: 1,
        ..RouteParams::default()
    };
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..16 {
        params.random_seed = seed;
        let a = find_route(&g, &node(1), &node(4), 10 * SAT, &params).unwrap();
        let b = find_route(&g, &node(1), &node(4), 10 * SAT, &params).unwrap();
        assert_eq!(a, b, "deterministic for seed {seed}");
        check(&g, 1, &a, 10 * SAT, &params);
        // One step from 4: to 2 or 3 (40 blocks), 5 (72) or 6 (144).
        assert!([40, 72, 144].contains(&a.shadow_cltv_delta));
        seen.insert(a.shadow_cltv_delta);
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    // Within the cap: the route itself needs 18 + 40 blocks.
    params.max_total_cltv_expiry_delta = 18 + 40 + 30;
    params.shadow_max_hops = 3;
    for seed in 0..16 {
        params.random_seed = seed;
        let r = find_route(&g, &node(1), &node(4), 10 * SAT, &params).unwrap();
        assert!(r.shadow_cltv_delta <= 30);
        assert!(r.hops[0].cltv_expiry_delta <= params.max_total_cltv_expiry_delta);
    }
}

#[test]
fn random_graphs_give_valid_multi_part_payments() {
    // Random graphs, a scorer that learns from simulated failures, random
    // fee caps: every part of every payment passes `check`, the parts add
    // up to the amount, no channel carries more than its capacity, and the
    // fees stay under the cap.
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    let g = random_graph(&mut rng);
    let mut scorer = Scorer::default();
    let (mut paid, mut split) = (0, 0);
    for q in 0..300u64 {
        let (a, b) = (1 + rng.below(60) as u8, 1 + rng.below(60) as u8);
        let amount = 1_000 + rng.below(8_000_000_000);
        let params = RouteParams {
            allow_mpp: true,
            min_part_msat: 1_000_000,
            max_fee_msat: (rng.below(2) == 0).then(|| rng.below(5_000_000)),
            shadow_max_hops: rng.below(3) as usize,
            random_seed: q,
            ..RouteParams::default()
        };
        let router = Router::new(&g, &scorer, q * 600);
        let p = match router.pay(&node(a), &node(b), amount, &params) {
            Ok(p) => p,
            Err(RouteError::NoRoute(_) | RouteError::SelfPayment | RouteError::UnknownNode(_)) => {
                continue
            }
            Err(e) => panic!("{e}"),
        };
        paid += 1;
        split += usize::from(p.parts.len() > 1);
        assert!(p.parts.len() <= params.max_parts);
        assert!(p.success_probability > 0.0 && p.success_probability <= 1.0);
        assert_eq!(
            p.parts.iter().map(|r| r.final_amount_msat()).sum::<u64>(),
            amount
        );
        if let Some(max) = params.max_fee_msat {
            assert!(p.fee_msat() <= max, "fees {} over {max}", p.fee_msat());
        }
        let mut load = std::collections::HashMap::new();
        for r in &p.parts {
            check(&g, a, r, r.final_amount_msat(), &params);
            for h in &r.hops {
                *load.entry(h.short_channel_id).or_insert(0u64) += h.amount_msat;
            }
        }
        for (id, total) in load {
            let cap = g.channel_by_scid(id).unwrap().capacity.to_sat() * 1_000;
            assert!(total <= cap, "{id} carries {total} of {cap}");
        }
        // Fail the first part somewhere, so later payments see bounds.
        let r = &p.parts[0];
        let at = rng.below(r.hops.len() as u64) as usize;
        scorer.path_failed(&g, &node(a), r, at, q * 600);
    }
    assert!(paid > 100 && split > 10, "{paid} paid, {split} split");
}

#[test]
fn the_payers_own_channels_follow_its_balances_and_its_disable_bit() {
    let g = diamond();
    let s = Scorer::default();
    let router = Router::new(&g, &s, 0);
    // A hint from the payer itself (its private channel 50 to payee 8) is
    // bounded by that first hop's balance, not taken as unlimited.
    let mut params = RouteParams {
        first_hops: Some(vec![FirstHop {
            short_channel_id: scid(50),
            node_id: node(8),
            outbound_msat: 100_000 * SAT,
            htlc_minimum_msat: 1,
        }]),
        route_hints: vec![RouteHint(vec![RouteHintHop {
            src_node_id: node(1),
            short_channel_id: scid(50),
            fee_base_msat: 1_000,
            fee_proportional_millionths: 0,
            cltv_expiry_delta: 40,
        }])],
        ..RouteParams::default()
    };
    assert_eq!(
        router.route(&node(1), &node(8), 500_000 * SAT, &params),
        Err(RouteError::NoRoute(500_000 * SAT))
    );
    let r = router
        .route(&node(1), &node(8), 50_000 * SAT, &params)
        .unwrap();
    assert_eq!(via(&r), vec![scid(50)]);
    assert_eq!((r.fee_msat(), r.hops[0].cltv_expiry_delta), (0, 18));

    // A private first hop's balance already leaves out what is pending:
    // in-flight amounts over it are not taken off again.
    let pending = r.clone();
    let mut in_flight = InFlight::new();
    in_flight.add_route(&g, &node(1), &pending);
    params.first_hops.as_mut().unwrap()[0].outbound_msat = 40_000 * SAT;
    let r = Router::new(&g, &s, 0)
        .with_in_flight(&in_flight)
        .route(&node(1), &node(8), 40_000 * SAT, &params)
        .unwrap();
    assert_eq!(r.final_amount_msat(), 40_000 * SAT);

    // Without first hops, a payer's direction it disabled is not used.
    let mut g2 = Graph::new(ChainHash::BITCOIN);
    let mut off = policy(0, 0, 40, 1_000_000 * SAT);
    off.disabled = true;
    let idx = {
        link(
            &mut g2,
            1,
            1,
            2,
            1_000_000,
            policy(0, 0, 40, 1_000_000 * SAT),
        );
        g2.channel_index(scid(1)).unwrap()
    };
    g2.set_policy_unchecked(idx, dir(1, 2), Some(off));
    assert_eq!(
        find_route(&g2, &node(1), &node(2), 1_000, &RouteParams::default()),
        Err(RouteError::NoRoute(1_000))
    );
    assert!(find_route(&g2, &node(2), &node(1), 1_000, &RouteParams::default()).is_ok());
}

#[test]
fn a_channel_of_any_capacity_is_priced_without_overflow() {
    let mut g = Graph::new(ChainHash::BITCOIN);
    // u64::MAX msat once multiplied: the probability arithmetic must hold.
    link(&mut g, 1, 1, 2, u64::MAX / 10, policy(0, 0, 40, u64::MAX));
    let p = Router::new(&g, &Scorer::default(), 0)
        .pay(&node(1), &node(2), 1_000 * SAT, &RouteParams::default())
        .unwrap();
    assert_eq!(p.parts.len(), 1);
    assert!(p.success_probability > 0.999_999 && p.success_probability <= 1.0);
}
