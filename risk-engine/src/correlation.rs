//! Correlation groups: credit across underlyings whose prices move together.
//!
//! Without a group, an account's requirement is the sum of its underlyings' requirements: each
//! underlying is stressed at its own worst move, as if every pair of underlyings could move
//! against the account at once (long SOL against short ETH is charged as two naked positions).
//! Underlyings that join a correlation group with correlation `rho` are stressed jointly
//! instead, on moves normalised to each underlying's own core range (`x = move / price_range`,
//! so `x = ±1` is each grid's edge and the same quantile of each underlying's distribution):
//!
//! - **Joint moves**: a common move `c` with `|c| <= beta` plus an independent move of up to
//!   `±gamma` per underlying, capped at the grid's edge: `x_u in [c - gamma, c + gamma] ∩
//!   [-1, 1]`, where `beta = sqrt(rho)` and `gamma = sqrt(1 - rho)`. This box contains the
//!   correlation ellipsoid `{x : x' Σ⁻¹ x <= 1}` of the one-factor model
//!   `x_u = beta f + gamma e_u`, `f² + Σ e_u² <= 1` (so `|f|, |e_u| <= 1`), whose projection on
//!   each axis is the core range `[-1, 1]`: a linear book is never credited more than the
//!   configured correlation supports (a long/short pair of equal risk `a` per range pays
//!   `2 gamma a` here against `sqrt(2 - 2 rho) a` for the ellipsoid itself).
//! - **Jumps alone**: each underlying's tail scenarios (its extended moves, weighted as in its
//!   own grid) with every other member at no price move (its worst vol state): correlation that
//!   breaks in a crash takes the credit back (for linear books the tail equals the core range,
//!   so a pair keeps at most half of its requirement as credit).
//! - **Jumps together**: every member at its worst falling tail at once, and every member at
//!   its worst rising tail at once: a crash that hits every member (short puts on each of them
//!   get no credit), while a long/short pair nets out there. Two members jumping in opposite
//!   directions at once is not a scenario (the stated assumption: at most one idiosyncratic
//!   jump a day); a group whose correlation is 0 therefore gives no credit at all.
//!
//! Between grid nodes a member's loss is bounded by the larger of the two nodes around it,
//! each node taking the worst of its vol states (vol states of different underlyings move
//! independently), or, for a member holding long options near expiry, by its own bound over
//! that interval (`crate::margin`, interpolation bound). No shape is assumed between nodes:
//! interpolating was tighter but neither sound for long options near expiry nor premium-safe
//! (review findings). Over the common move the windows' intervals only change where an edge
//! crosses a node (`c = x_k ± gamma`), and at such a move a window touches the intervals of
//! both sides: evaluating those moves and `c = ±beta` covers every common move. Members must
//! share their number of price moves.

//! The group's maintenance is `max(group scenario loss, Σ minimum delta) + Σ contingency`; the
//! credit is what that saves against the sum of the members' maintenance requirements (never
//! negative), and the initial requirement is credited `credit x min(im_factor)` (rounded down),
//! so the initial requirement keeps at least `min(im_factor)` times the maintenance. Each
//! member's concentration add-on is kept whole, and the liquidation target takes no credit
//! (`crate::margin::derivatives_risk_scaled`): a credited pair whose jumps bind could otherwise
//! not be liquidated one leg at a time.

use crate::risk_array::RiskError;
use crate::risk_array::MAX_GAP_INTERVALS;
use crate::scenario::MAX_PRICE_STEPS;
use crate::wide::Rounding;
use fixed::types::{I32F32, I80F48};

/// Number of correlation groups (ids `1..=MAX_CORRELATION_GROUPS`; 0 is "no group").
pub const MAX_CORRELATION_GROUPS: usize = 8;
/// Most grouped underlyings one evaluation credits; members beyond it are margined alone
/// (never less than without a group). Four keeps a grouped health evaluation, which a
/// liquidation step repeats, within compute limits.
pub const MAX_GROUPED_UNDERLYINGS: usize = 4;
/// Node losses beyond this size (quote native units) give their group no credit: keeps every
/// sum within 128 bits.
const MAX_NODE_LOSS: i64 = 1 << 61;
/// Windows are widened by this many Q32 units beyond the breakpoints: node positions are
/// rounded by at most one unit, so an edge placed on a node still reaches it.
const EDGE_SLACK: i64 = 4;
const ONE: i64 = 1 << 32;

/// An underlying's membership of a correlation group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Correlation {
    /// Group id, `1..=MAX_CORRELATION_GROUPS`; 0 = no group.
    pub group: u8,
    /// The group's correlation, in `[0, 1)`.
    pub correlation: I32F32,
}

/// One underlying's losses per core price move (the worst of its vol states at each move) and
/// in its tail, quote native units rounded up (negative = gain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoveLosses {
    /// Loss at each core move, from the largest fall to the largest rise (first `steps`).
    pub core: [i64; MAX_PRICE_STEPS],
    /// Number of core moves (odd).
    pub steps: u8,
    /// Largest loss over the falling tail scenarios; `None` without one.
    pub tail_down: Option<i64>,
    /// Largest loss over the rising tail scenarios; `None` without one.
    pub tail_up: Option<i64>,
    /// For a member holding long options with interpolation gaps (near expiry,
    /// `crate::margin`), its loss bound over each price interval (between nodes `j` and
    /// `j + 1`, quote native units rounded up), used instead of the larger node loss: a long
    /// option's loss between nodes can exceed both. Each bound rises by at most a long
    /// option's premium.
    pub interval_bounds: Option<[i64; MAX_GAP_INTERVALS]>,
}

impl MoveLosses {
    /// No losses anywhere (a book with no positions), on `steps` core moves.
    pub const fn flat(steps: u8) -> MoveLosses {
        MoveLosses { core: [0; MAX_PRICE_STEPS], steps, tail_down: None, tail_up: None, interval_bounds: None }
    }

    fn half(&self) -> i64 {
        (self.steps.saturating_sub(1) >> 1) as i64
    }

    /// Loss with no price move.
    pub fn zero_move(&self) -> i64 {
        self.core[self.half() as usize]
    }

    fn in_range(&self) -> bool {
        self.steps >= 3
            && (self.steps as usize) <= MAX_PRICE_STEPS
            && self.steps % 2 == 1
            && self.core[..self.steps as usize].iter().all(|w| w.unsigned_abs() <= MAX_NODE_LOSS as u64)
            && [self.tail_down, self.tail_up].iter().flatten().all(|t| t.unsigned_abs() <= MAX_NODE_LOSS as u64)
            && self.interval_bounds.iter().flatten().all(|b| b.unsigned_abs() <= MAX_NODE_LOSS as u64)
    }

    /// Position of normalised move `x` (Q32 bits, in [-1, 1]) on the node axis, Q32 bits in
    /// `[0, (steps - 1) << 32]`.
    fn position(&self, x: i64) -> i64 {
        (x.clamp(-ONE, ONE) + ONE) * self.half()
    }

    /// Largest loss over normalised moves `[lo, hi]` (Q32 bits): the largest bound of the
    /// price intervals the window touches (an edge on a node touches both intervals around
    /// it), an interval's bound being the larger of its two node losses, or for a member
    /// holding long options with gaps, its own interval bound.
    fn window_max(&self, lo: i64, hi: i64) -> i64 {
        let (p_lo, p_hi) = (self.position(lo), self.position(hi));
        let intervals = self.steps as usize - 1;
        let first = (((p_lo + (ONE - 1)) >> 32) as usize).saturating_sub(1).min(intervals - 1);
        let last = ((p_hi >> 32) as usize).min(intervals - 1);
        (first..=last.max(first))
            .map(|j| match &self.interval_bounds {
                Some(bounds) => bounds[j],
                None => self.core[j].max(self.core[j + 1]),
            })
            .max()
            .unwrap_or(0)
    }

    /// The larger tail loss, if any.
    fn tail(&self) -> Option<i64> {
        match (self.tail_down, self.tail_up) {
            (Some(d), Some(u)) => Some(d.max(u)),
            (d, u) => d.or(u),
        }
    }

    /// Normalised move of node `k` (Q32 bits), rounded toward zero.
    fn node_move(&self, k: usize) -> i64 {
        // Unsigned division (SBF has no signed one), then the sign.
        let (offset, half) = (k as i64 - self.half(), self.half() as u64);
        let size = ((offset.unsigned_abs() << 32) / half) as i64;
        if offset < 0 {
            -size
        } else {
            size
        }
    }
}

/// The scenario loss of a correlation group with correlation `rho` (see the module notes),
/// quote native units, >= 0. `None` when the members cannot be credited (fewer than two or
/// more than [`MAX_GROUPED_UNDERLYINGS`], a malformed member, `rho` outside `[0, 1)` or losses
/// beyond the credited range): the caller then keeps the members' own requirements. Members
/// come as an iterator so that callers need not copy them together (SBF stack).
pub fn group_scenario_loss<'a, I>(members: I, rho: I32F32) -> Option<i64>
where
    I: Iterator<Item = &'a MoveLosses> + Clone,
{
    let count = members.clone().count();
    let mut all = members.clone();
    let steps = all.next()?.steps;
    // Members on different node axes are not credited (each axis adds its own breakpoints).
    if !(2..=MAX_GROUPED_UNDERLYINGS).contains(&count)
        || rho < 0
        || rho >= 1
        || !members.clone().all(MoveLosses::in_range)
        || !all.all(|m| m.steps == steps)
    {
        return None;
    }
    // Rounded up: a wider common range and wider independent windows only add scenarios.
    let beta = crate::math::sqrt(rho, Rounding::Up)?.to_bits().min(ONE);
    let gamma = crate::math::sqrt(I32F32::ONE - rho, Rounding::Up)?.to_bits().min(ONE);
    // Windows are widened by a few units beyond the breakpoints below (taken at the unwidened
    // gamma), so an edge meant to sit on a node, whose position is rounded, reaches it (review
    // finding: on 7-, 11- and 13-move grids the rounded node positions made breakpoint windows
    // miss the node, and credit was given that the box does not support).
    let reach = gamma + EDGE_SLACK;
    let joint = |c: i64| -> i128 { members.clone().map(|m| m.window_max(c - reach, c + reach) as i128).sum() };
    // The windows' intervals change only where an edge crosses a node, and at that move a
    // window touches both sides' intervals: those moves and the ends cover every common move.
    let mut worst = joint(-beta).max(joint(beta));
    let first = members.clone().next()?;
    for k in 0..steps as usize {
        let x = first.node_move(k);
        for c in [x - gamma, x + gamma] {
            if (-beta..=beta).contains(&c) {
                worst = worst.max(joint(c));
            }
        }
    }
    // One member jumps alone (its tail) while the others stay at no price move.
    let zero_total: i128 = members.clone().map(|m| m.zero_move() as i128).sum();
    for member in members.clone() {
        if let Some(tail) = member.tail() {
            worst = worst.max(zero_total - member.zero_move() as i128 + tail as i128);
        }
    }
    // Every member jumps together, down or up (a member with no tail that way at its edge).
    let last = steps as usize - 1;
    let down: i128 = members.clone().map(|m| m.tail_down.unwrap_or(m.core[0]) as i128).sum();
    let up: i128 = members.map(|m| m.tail_up.unwrap_or(m.core[last]) as i128).sum();
    worst = worst.max(down).max(up);
    i64::try_from(worst.max(0)).ok()
}

/// One grouped underlying's requirement pieces, as the group credit needs them.
#[derive(Clone, Copy, Debug)]
pub struct GroupMember {
    /// Group id (1..=MAX_CORRELATION_GROUPS).
    pub group: u8,
    /// The group's correlation as this member sees it (members that disagree: the lowest).
    pub correlation: I32F32,
    /// Losses per core move and in the tail.
    pub losses: MoveLosses,
    /// Its maintenance requirement alone.
    pub maintenance: I80F48,
    /// Its minimum-delta requirement.
    pub min_delta: I80F48,
    /// Its contingencies (short-option and vega-offset): charged whole in the group too.
    pub contingency: I80F48,
    /// Its grid's initial factor.
    pub im_factor: I32F32,
}

impl GroupMember {
    /// A placeholder (no group, no losses).
    pub const NONE: GroupMember = GroupMember {
        group: 0,
        correlation: I32F32::ZERO,
        losses: MoveLosses::flat(3),
        maintenance: I80F48::ZERO,
        min_delta: I80F48::ZERO,
        contingency: I80F48::ZERO,
        im_factor: I32F32::ONE,
    };
}

/// The credit of group `group` among `members` (the others are skipped): `(maintenance
/// credit, initial credit)`, both >= 0, quote units. Zero when the group cannot be credited
/// (see [`group_scenario_loss`]).
#[inline(never)]
pub fn group_credit(members: &[GroupMember], group: u8) -> Result<(I80F48, I80F48), RiskError> {
    let in_group = || members.iter().filter(move |m| m.group == group);
    let mut rho = I32F32::MAX;
    let (mut sum_mm, mut sum_delta, mut sum_contingency, mut im_factor) =
        (I80F48::ZERO, I80F48::ZERO, I80F48::ZERO, I32F32::MAX);
    let add = |a: I80F48, b: I80F48| a.checked_add(b).ok_or(RiskError::Overflow);
    for member in in_group() {
        rho = rho.min(member.correlation);
        sum_mm = add(sum_mm, member.maintenance)?;
        sum_delta = add(sum_delta, member.min_delta)?;
        sum_contingency = add(sum_contingency, member.contingency)?;
        im_factor = im_factor.min(member.im_factor);
    }
    // An uncorrelated group (correlation never set, or 0) supports no credit: its only credit
    // would come from tails the group never combines in opposite directions.
    if rho <= 0 {
        return Ok((I80F48::ZERO, I80F48::ZERO));
    }
    let Some(loss) = group_scenario_loss(in_group().map(|m| &m.losses), rho) else {
        return Ok((I80F48::ZERO, I80F48::ZERO));
    };
    let maintenance = add(I80F48::from_num(loss).max(sum_delta), sum_contingency)?;
    let credit = sum_mm.saturating_sub(maintenance).max(I80F48::ZERO);
    let initial_credit = crate::wide::mul_i80f48_by_q32(credit, im_factor.max(I32F32::ONE), Rounding::Down)
        .ok_or(RiskError::Overflow)?;
    Ok((credit, initial_credit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(x: f64) -> I32F32 {
        I32F32::from_num(x)
    }

    /// A linear position losing `a` per full range (negative `a`: short), on a 9-move grid
    /// whose tail is the Deribit table weighted as in the default grid.
    fn linear(a: f64) -> MoveLosses {
        let mut m = MoveLosses::flat(9);
        for k in 0..9 {
            m.core[k] = (-(k as f64 - 4.0) / 4.0 * a).ceil() as i64;
        }
        // weight 0.16/|move| x move x notional = ±0.16 x notional: a long loses a when prices
        // fall and gains it when they rise.
        m.tail_down = Some(a.ceil() as i64);
        m.tail_up = Some((-a).ceil() as i64);
        m
    }

    /// Interpolated loss at normalised move `x`, in f64.
    fn value(m: &MoveLosses, x: f64) -> f64 {
        let p = (x.clamp(-1.0, 1.0) + 1.0) * m.half() as f64;
        let node = (p.floor() as usize).min(m.steps as usize - 2);
        let t = p - node as f64;
        m.core[node] as f64 * (1.0 - t) + m.core[node + 1] as f64 * t
    }

    /// The module's box evaluated independently in f64: a fine sweep of the common move, each
    /// window's maximum over the nodes of every interval it overlaps.
    fn brute_box(members: &[MoveLosses], rho: f64, sweep: usize) -> f64 {
        let (beta, gamma) = (rho.sqrt(), (1.0 - rho).sqrt());
        let window = |m: &MoveLosses, lo: f64, hi: f64| {
            let h = m.half() as f64;
            let (first, last) = (((lo.max(-1.0) + 1.0) * h).floor() as usize, (((hi.min(1.0) + 1.0) * h).ceil() as usize).min(m.steps as usize - 1));
            (first..=last).map(|k| m.core[k] as f64).fold(f64::MIN, f64::max)
        };
        (0..=sweep)
            .map(|i| {
                let c = -beta + 2.0 * beta * i as f64 / sweep as f64;
                members.iter().map(|m| window(m, c - gamma, c + gamma)).sum::<f64>()
            })
            .fold(f64::MIN, f64::max)
    }

    /// The ellipsoid itself for two members: x_A = beta f + gamma e_A, x_B = beta f + gamma e_B
    /// with f² + e_A² + e_B² <= 1, sampled on its surface and inside.
    fn brute_ellipse(a: &MoveLosses, b: &MoveLosses, rho: f64) -> f64 {
        let (beta, gamma) = (rho.sqrt(), (1.0 - rho).sqrt());
        let mut worst = f64::MIN;
        let n = 120;
        for i in 0..=n {
            let theta = std::f64::consts::PI * i as f64 / n as f64;
            for j in 0..=2 * n {
                let phi = std::f64::consts::PI * j as f64 / n as f64;
                let (f, ea, eb) = (theta.cos(), theta.sin() * phi.cos(), theta.sin() * phi.sin());
                worst = worst.max(value(a, beta * f + gamma * ea) + value(b, beta * f + gamma * eb));
            }
        }
        worst
    }

    #[test]
    fn a_linear_pair_keeps_the_larger_of_its_box_and_its_jump() {
        let a = 1_000_000.0;
        // Windows take whole node intervals: at 0.5 a window of width 1.41 can touch intervals
        // spanning 1.75 (the box alone would be 1.41); from about 0.9 the jump alone binds.
        for (rho, expected) in [(0.0, 2.0 * a), (0.5, 1.75 * a), (0.8, 1.25 * a), (0.95, a)] {
            let loss = group_scenario_loss([linear(a), linear(-a)].iter(), q(rho)).unwrap() as f64;
            assert!((loss - expected).abs() <= 4.0 + 1e-6 * a, "rho {rho}: {loss} vs {expected}");
        }
    }

    /// Review finding, kept as a regression: on a 7-move grid (and 11, 13) node positions are
    /// rounded, and a breakpoint window meant to reach a node stopped one unit short, so the
    /// common move at which one member's loss and the other's are both in the window was never
    /// evaluated: a group of L and L was charged L.
    #[test]
    fn every_breakpoint_is_reached_on_grids_whose_nodes_are_rounded() {
        let l = 1_000_000;
        for (steps, rho) in [(7u8, 0.8), (7, 0.76), (7, 0.88), (13, 0.95), (11, 0.9)] {
            let h = (steps as usize - 1) / 2;
            // A loses L on the second interval below the middle only, B on the second above
            // (as long straddles near expiry struck there would): a common move of 0 puts both
            // in their windows.
            let (mut a, mut b) = (MoveLosses::flat(steps), MoveLosses::flat(steps));
            let (mut bounds_a, mut bounds_b) = ([0i64; MAX_GAP_INTERVALS], [0i64; MAX_GAP_INTERVALS]);
            bounds_a[h - 2] = l;
            bounds_b[h + 1] = l;
            (a.interval_bounds, b.interval_bounds) = (Some(bounds_a), Some(bounds_b));
            let loss = group_scenario_loss([a, b].iter(), q(rho)).unwrap();
            assert!(loss >= 2 * l, "{steps} moves, rho {rho}: {loss}");
        }
    }

    #[test]
    fn positions_in_the_same_direction_get_no_credit() {
        let a = 1_000_000.0;
        for rho in [0.0, 0.5, 0.9] {
            let loss = group_scenario_loss([linear(a), linear(a * 0.5)].iter(), q(rho)).unwrap();
            assert!(loss as f64 >= 1.5 * a, "rho {rho}: {loss}");
        }
    }

    #[test]
    fn malformed_members_or_correlation_give_no_credit() {
        assert_eq!(group_scenario_loss([linear(1.0)].iter(), q(0.5)), None);
        assert_eq!(group_scenario_loss([linear(1.0), linear(-1.0)].iter(), q(1.0)), None);
        assert_eq!(group_scenario_loss([linear(1.0), linear(-1.0)].iter(), q(-0.1)), None);
        let mut huge = linear(1.0);
        huge.core[0] = MAX_NODE_LOSS + 1;
        assert_eq!(group_scenario_loss([huge, linear(-1.0)].iter(), q(0.5)), None);
        let mut even = linear(1.0);
        even.steps = 8;
        assert_eq!(group_scenario_loss([even, linear(-1.0)].iter(), q(0.5)), None);
        let mut five = linear(1.0);
        five.steps = 5;
        assert_eq!(group_scenario_loss([five, linear(-1.0)].iter(), q(0.5)), None, "different node axes");
        let five_members = [linear(1.0), linear(-1.0), linear(1.0), linear(-1.0), linear(1.0)];
        assert_eq!(group_scenario_loss(five_members.iter(), q(0.5)), None, "beyond the capacity");
    }

    fn member_losses() -> impl Strategy<Value = MoveLosses> {
        member_losses_on(9)
    }

    fn member_losses_on(steps: u8) -> impl Strategy<Value = MoveLosses> {
        (prop::array::uniform13(-1_000_000i64..1_000_000), prop::option::of(-1_000_000i64..2_000_000), prop::option::of(-1_000_000i64..2_000_000))
            .prop_map(move |(core, tail_down, tail_up)| {
                let mut m = MoveLosses { core, steps, tail_down, tail_up, interval_bounds: None };
                for w in &mut m.core[steps as usize..] {
                    *w = 0;
                }
                m
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Against an independent sweep of the same box: never below it (the breakpoints are
        /// all found), and never above every member's own worst loss summed.
        #[test]
        fn the_group_loss_is_the_exact_maximum_over_the_box(
            (members, rho) in prop_oneof![Just(3u8), Just(5u8), Just(7u8), Just(9u8), Just(11u8), Just(13u8)]
                .prop_flat_map(|steps| (prop::collection::vec(member_losses_on(steps), 2..4), 0.0f64..0.99)),
        ) {
            let loss = group_scenario_loss(members.iter(), q(rho)).unwrap() as f64;
            let zero: f64 = members.iter().map(|o| o.zero_move() as f64).sum();
            let alone = members.iter().filter_map(|m| m.tail().map(|t| zero - m.zero_move() as f64 + t as f64)).fold(0.0, f64::max);
            let down: f64 = members.iter().map(|m| m.tail_down.unwrap_or(m.core[0]) as f64).sum();
            let up: f64 = members.iter().map(|m| m.tail_up.unwrap_or(m.core[m.steps as usize - 1]) as f64).sum();
            let expected = brute_box(&members, rho, 4000).max(alone).max(down).max(up).max(0.0);
            prop_assert!(loss >= expected - 1.0, "{loss} below the swept box {expected}");
            let most: f64 = members.iter().map(|m| m.core.iter().copied().chain(m.tail_down).chain(m.tail_up).max().unwrap().max(0) as f64).sum();
            prop_assert!(loss <= most, "{loss} above every member's own worst {most}");
        }

        /// Never more credit than the correlation supports: the group loss covers the
        /// ellipsoid, and never exceeds the members' own worst losses summed.
        #[test]
        fn credit_is_bounded_by_the_ellipsoid_and_by_no_credit(
            a in member_losses(),
            b in member_losses(),
            rho in 0.0f64..0.99,
        ) {
            let loss = group_scenario_loss([a, b].iter(), q(rho)).unwrap() as f64;
            prop_assert!(loss >= brute_ellipse(&a, &b, rho) - 1.0);
            let alone = |m: &MoveLosses| m.core[..m.steps as usize].iter().copied().chain(m.tail_down).chain(m.tail_up).max().unwrap().max(0) as f64;
            prop_assert!(loss <= alone(&a) + alone(&b));
        }
    }

    #[test]
    fn the_initial_credit_keeps_the_smallest_initial_factor() {
        let member = |losses: MoveLosses, mm: f64| GroupMember {
            group: 1,
            correlation: q(0.9),
            losses,
            maintenance: I80F48::from_num(mm),
            min_delta: I80F48::from_num(20_000),
            contingency: I80F48::ZERO,
            im_factor: q(1.25),
        };
        let a = 1_000_000.0;
        let (credit, initial) = group_credit(&[member(linear(a), a), member(linear(-a), a)], 1).unwrap();
        // Group loss a (the jump), minimum delta 40,000 summed: credit a.
        assert_eq!(credit, I80F48::from_num(a));
        assert_eq!(initial, I80F48::from_num(a * 1.25));
        let (none, _) = group_credit(&[member(linear(a), a)], 1).unwrap();
        assert_eq!(none, 0);
        // Another group's members are not this group's.
        let (other, _) = group_credit(&[member(linear(a), a), member(linear(-a), a)], 2).unwrap();
        assert_eq!(other, 0);
        let five: Vec<_> = (0..5).map(|i| member(linear(if i % 2 == 0 { a } else { -a }), a)).collect();
        assert_eq!(group_credit(&five, 1).unwrap().0, 0, "beyond the capacity no member is credited");
    }
}
