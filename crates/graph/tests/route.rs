//! Route constraints: a returned route never breaks a policy, and carries
//! exactly the amounts and CLTVs each hop must receive.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use beongae_graph::route::{find_route, RouteError, RouteParams};
use beongae_graph::Graph;
use beongae_wire::{ChainHash, ShortChannelId};
use common::{check, link, node, policy, random_graph, Rng};

#[test]
fn cheapest_route_with_exact_amounts_and_cltvs() {
    // 1 - 2 - 3 - 4 (cheap, three hops) and 1 - 5 - 4 (expensive, two hops).
    let mut g = Graph::new(ChainHash::BITCOIN);
    link(
        &mut g,
        1,
        1,
        2,
        1_000_000,
        policy(1_000, 100, 40, 900_000_000),
    );
    link(&mut g, 2, 2, 3, 1_000_000, policy(500, 10, 30, 900_000_000));
    link(&mut g, 3, 3, 4, 1_000_000, policy(0, 1, 20, 900_000_000));
    link(&mut g, 4, 1, 5, 1_000_000, policy(0, 0, 10, 900_000_000));
    link(
        &mut g,
        5,
        5,
        4,
        1_000_000,
        policy(50_000, 5_000, 10, 900_000_000),
    );
    let params = RouteParams::default();
    let r = find_route(&g, &node(1), &node(4), 10_000_000, &params).unwrap();
    check(&g, 1, &r, 10_000_000, &params);
    assert_eq!(
        r.hops.iter().map(|h| h.node_id).collect::<Vec<_>>(),
        vec![node(2), node(3), node(4)]
    );
    // 3 charges 0 + 10_000_000 * 1 / 1e6 = 10; 2 charges 500 + 10_000_010 * 10 / 1e6 = 600.
    assert_eq!(r.hops[2].amount_msat, 10_000_000);
    assert_eq!(r.hops[1].amount_msat, 10_000_010);
    assert_eq!(r.hops[0].amount_msat, 10_000_610);
    assert_eq!(r.fee_msat(), 610);
    assert_eq!(
        r.hops
            .iter()
            .map(|h| h.cltv_expiry_delta)
            .collect::<Vec<_>>(),
        vec![18 + 20 + 30, 18 + 20, 18]
    );
}

#[test]
fn limits_are_honoured() {
    let mut g = Graph::new(ChainHash::BITCOIN);
    link(&mut g, 1, 1, 2, 1_000_000, policy(0, 0, 40, 900_000_000));
    link(&mut g, 2, 2, 3, 1_000_000, policy(0, 0, 40, 5_000_000));
    link(&mut g, 3, 1, 4, 1_000_000, policy(0, 0, 40, 900_000_000));
    link(
        &mut g,
        4,
        4,
        3,
        1_000_000,
        policy(10_000, 0, 40, 900_000_000),
    );
    let mut params = RouteParams::default();
    // 2-3 carries at most 5_000 sat: a larger payment takes 4.
    let r = find_route(&g, &node(1), &node(3), 6_000_000, &params).unwrap();
    assert_eq!(r.hops[0].node_id, node(4));
    let r = find_route(&g, &node(1), &node(3), 4_000_000, &params).unwrap();
    assert_eq!(r.hops[0].node_id, node(2));
    // Excluding 2 forces 4; excluding the 4-3 channel too leaves nothing.
    params.excluded_nodes.insert(node(2));
    assert_eq!(
        find_route(&g, &node(1), &node(3), 4_000_000, &params)
            .unwrap()
            .hops[0]
            .node_id,
        node(4)
    );
    params
        .excluded_channels
        .insert(ShortChannelId::new(4, 0, 0).unwrap());
    assert_eq!(
        find_route(&g, &node(1), &node(3), 4_000_000, &params),
        Err(RouteError::NoRoute(4_000_000))
    );
    // Hop and CLTV caps.
    let mut params = RouteParams {
        max_hops: 1,
        ..RouteParams::default()
    };
    assert_eq!(
        find_route(&g, &node(1), &node(3), 1_000, &params),
        Err(RouteError::NoRoute(1_000))
    );
    params.max_hops = 20;
    params.max_total_cltv_expiry_delta = 18 + 39;
    assert_eq!(
        find_route(&g, &node(1), &node(3), 1_000, &params),
        Err(RouteError::NoRoute(1_000))
    );
    // More than any capacity.
    let params = RouteParams::default();
    assert_eq!(
        find_route(&g, &node(1), &node(3), 1_000_000_001, &params),
        Err(RouteError::NoRoute(1_000_000_001))
    );
    assert_eq!(
        find_route(&g, &node(1), &node(1), 1, &params),
        Err(RouteError::SelfPayment)
    );
    assert_eq!(
        find_route(&g, &node(1), &node(9), 1, &params),
        Err(RouteError::UnknownNode(node(9)))
    );
}

#[test]
fn random_graphs_give_valid_routes() {
    // A deterministic pseudo-random graph: 60 nodes, 240 channels, random
    // policies; every route found must pass `check`.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let g = random_graph(&mut rng);
    let mut rnd = |m: u64| rng.below(m);
    let params = RouteParams::default();
    let mut found = 0;
    for _ in 0..300 {
        let (a, b) = (1 + rnd(60) as u8, 1 + rnd(60) as u8);
        let amount = 1_000 + rnd(500_000_000);
        match find_route(&g, &node(a), &node(b), amount, &params) {
            Ok(r) => {
                check(&g, a, &r, amount, &params);
                found += 1;
            }
            Err(RouteError::NoRoute(_) | RouteError::SelfPayment | RouteError::UnknownNode(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(found > 100, "only {found} routes found");
}
