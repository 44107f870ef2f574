//! Small-number suppression for published tables, the way the ministry publishes its
//! breakdowns: counts from 1 to `max` are shown as `*` (primary suppression), and other
//! cells are hidden too wherever a total would give a hidden one away (complementary
//! suppression).
//!
//! The rule, applied until nothing changes: in every *line* of the table — a column with
//! its column total, a row with its row total, and the line of totals with the grand total —
//! a hidden entry must never be alone. A line with exactly one hidden entry has its smallest
//! shown cell hidden as well (a total only when the line has no other cell). Published
//! totals are never hidden by the first rule: they are the day's announced counts.

/// A table to publish: `cells[row][col]`, with totals shown per column and/or per row.
#[derive(Debug, Clone)]
pub struct Table {
    pub cells: Vec<Vec<i64>>,
    pub col_totals: bool,
    pub row_totals: bool,
}

/// What to show in each place: `None` = `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub cells: Vec<Vec<Option<i64>>>,
    /// Per column (when `col_totals`).
    pub col_totals: Vec<Option<i64>>,
    /// Per row (when `row_totals`).
    pub row_totals: Vec<Option<i64>>,
    /// The grand total (when both totals are shown; never hidden).
    pub grand: Option<i64>,
}

/// An entry of the table: a cell, a row total, a column total.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum At {
    Cell(usize, usize),
    Row(usize),
    Col(usize),
}

/// Suppresses `t` with counts `1..=max` hidden (`max` = 0: nothing hidden).
pub fn suppress(t: &Table, max: i64) -> Shown {
    let rows = t.cells.len();
    let cols = t.cells.first().map_or(0, Vec::len);
    let value = |a: At| -> i64 {
        match a {
            At::Cell(i, j) => t.cells[i][j],
            At::Row(i) => t.cells[i].iter().sum(),
            At::Col(j) => t.cells.iter().map(|r| r[j]).sum(),
        }
    };
    let mut hidden = vec![vec![false; cols]; rows];
    let mut row_hidden = vec![false; rows];
    let mut col_hidden = vec![false; cols];
    if max > 0 {
        for (i, r) in t.cells.iter().enumerate() {
            for (j, v) in r.iter().enumerate() {
                hidden[i][j] = (1..=max).contains(v);
            }
        }
    }
    // The lines: entries that add up to a shown or hidden total.
    let mut lines: Vec<Vec<At>> = Vec::new();
    if t.col_totals {
        for j in 0..cols {
            let mut l: Vec<At> = (0..rows).map(|i| At::Cell(i, j)).collect();
            l.push(At::Col(j));
            lines.push(l);
        }
    }
    if t.row_totals {
        for i in 0..rows {
            let mut l: Vec<At> = (0..cols).map(|j| At::Cell(i, j)).collect();
            l.push(At::Row(i));
            lines.push(l);
        }
    }
    if t.col_totals && t.row_totals {
        // Σ column totals = grand total = Σ row totals; the grand total is always shown.
        lines.push((0..cols).map(At::Col).collect());
        lines.push((0..rows).map(At::Row).collect());
    }
    loop {
        let mut changed = false;
        for l in &lines {
            let is_hidden = |a: &At, h: &Vec<Vec<bool>>, rh: &Vec<bool>, ch: &Vec<bool>| match *a {
                At::Cell(i, j) => h[i][j],
                At::Row(i) => rh[i],
                At::Col(j) => ch[j],
            };
            let n = l
                .iter()
                .filter(|a| is_hidden(a, &hidden, &row_hidden, &col_hidden))
                .count();
            if n != 1 {
                continue;
            }
            // The smallest shown cell of the line; a total only if there is none.
            let pick = l
                .iter()
                .filter(|a| !is_hidden(a, &hidden, &row_hidden, &col_hidden))
                .filter(|a| matches!(a, At::Cell(..)))
                .min_by_key(|a| value(**a))
                .or_else(|| {
                    l.iter()
                        .find(|a| !is_hidden(a, &hidden, &row_hidden, &col_hidden))
                })
                .copied();
            if let Some(a) = pick {
                match a {
                    At::Cell(i, j) => hidden[i][j] = true,
                    At::Row(i) => row_hidden[i] = true,
                    At::Col(j) => col_hidden[j] = true,
                }
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let show = |v: i64, h: bool| (!h).then_some(v);
    Shown {
        cells: (0..rows)
            .map(|i| {
                (0..cols)
                    .map(|j| show(t.cells[i][j], hidden[i][j]))
                    .collect()
            })
            .collect(),
        col_totals: if t.col_totals {
            (0..cols)
                .map(|j| show(value(At::Col(j)), col_hidden[j]))
                .collect()
        } else {
            Vec::new()
        },
        row_totals: if t.row_totals {
            (0..rows)
                .map(|i| show(value(At::Row(i)), row_hidden[i]))
                .collect()
        } else {
            Vec::new()
        },
        grand: (t.col_totals && t.row_totals).then(|| t.cells.iter().flatten().sum()),
    }
}

/// `*` for a hidden count.
pub fn text(v: Option<i64>) -> String {
    v.map_or_else(|| "*".to_string(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line with a hidden entry has at least two, and no count 1..=max is shown.
    fn safe(t: &Table, s: &Shown, max: i64) {
        for (i, r) in s.cells.iter().enumerate() {
            for (j, c) in r.iter().enumerate() {
                if let Some(v) = c {
                    assert!(!(1..=max).contains(v), "{i},{j} shows {v}");
                }
            }
        }
        if t.col_totals {
            for j in 0..s.cells[0].len() {
                let n = s.cells.iter().filter(|r| r[j].is_none()).count()
                    + usize::from(s.col_totals[j].is_none());
                assert!(n != 1, "column {j} has one hidden entry: {s:?}");
            }
        }
        if t.row_totals {
            for (i, r) in s.cells.iter().enumerate() {
                let n = r.iter().filter(|c| c.is_none()).count()
                    + usize::from(s.row_totals[i].is_none());
                assert!(n != 1, "row {i} has one hidden entry: {s:?}");
            }
        }
    }

    #[test]
    fn a_single_small_cell_is_hidden_with_its_smallest_neighbour() {
        // One column with its total: 3 would be total − the others.
        let t = Table {
            cells: vec![vec![10], vec![3], vec![7], vec![0]],
            col_totals: true,
            row_totals: false,
        };
        let s = suppress(&t, 4);
        assert_eq!(
            s.cells,
            vec![vec![Some(10)], vec![None], vec![Some(7)], vec![None]]
        );
        assert_eq!(s.col_totals, vec![Some(20)]);
        safe(&t, &s, 4);
    }

    #[test]
    fn nothing_small_nothing_hidden_and_zero_max_hides_nothing() {
        let t = Table {
            cells: vec![vec![10, 0], vec![5, 12]],
            col_totals: true,
            row_totals: true,
        };
        let s = suppress(&t, 4);
        assert!(s.cells.iter().flatten().all(Option::is_some));
        let small = Table {
            cells: vec![vec![1, 2]],
            col_totals: true,
            row_totals: true,
        };
        assert!(
            suppress(&small, 0)
                .cells
                .iter()
                .flatten()
                .all(Option::is_some)
        );
    }

    #[test]
    fn row_and_column_complements_in_a_cross_table() {
        // age band × sex with both totals: the 2 must not be found from its row or column.
        let t = Table {
            cells: vec![vec![12, 9], vec![2, 15], vec![8, 11]],
            col_totals: true,
            row_totals: true,
        };
        let s = suppress(&t, 4);
        safe(&t, &s, 4);
        assert_eq!(s.cells[1][0], None);
        // Its row partner, its column partner (the smallest: 8) and the corner that closes
        // the rectangle.
        assert_eq!(s.cells[1][1], None);
        assert_eq!(s.cells[2][0], None);
        assert_eq!(s.cells[2][1], None);
        assert_eq!(s.cells[0][0], Some(12));
        assert_eq!(s.grand, Some(57));
        assert_eq!(s.row_totals, vec![Some(21), Some(17), Some(19)]);
    }

    #[test]
    fn a_row_with_only_one_cell_hides_its_total_and_the_totals_line_follows() {
        let t = Table {
            cells: vec![vec![3], vec![20], vec![30]],
            col_totals: true,
            row_totals: true,
        };
        let s = suppress(&t, 4);
        safe(&t, &s, 4);
        assert_eq!(s.cells[0][0], None);
        assert_eq!(s.row_totals[0], None);
    }

    #[test]
    fn many_random_tables_are_safe() {
        let mut x: u64 = 42;
        for _ in 0..300 {
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let rows = 1 + (next() % 6) as usize;
            let cols = 1 + (next() % 4) as usize;
            let cells = (0..rows)
                .map(|_| (0..cols).map(|_| (next() % 12) as i64).collect())
                .collect();
            let t = Table {
                cells,
                col_totals: true,
                row_totals: next() % 2 == 0,
            };
            let s = suppress(&t, 4);
            safe(&t, &s, 4);
        }
    }
}
