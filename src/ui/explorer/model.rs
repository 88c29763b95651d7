//! The explorer's state and its pure update: the runs of a sweep (or of a
//! directory of runs) as table rows, sorted, filtered and marked, and the
//! screens that compare them.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;

use crate::record::{RunView, Summary};
use crate::report::sweep::{groups, CellRow, GroupRow};
use crate::sweep::{Status, UnitEntry};

/// One run the explorer shows.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub unit: UnitEntry,
    /// Its run directory.
    pub dir: PathBuf,
    pub status: Status,
    #[serde(skip)]
    pub view: RunView,
    #[serde(skip)]
    pub summary: Option<Summary>,
    /// For a Slurm sweep: the cell's state and job, as `iq-tui status` shows them.
    pub scheduler: Option<String>,
}

/// The explorer's screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Screen {
    Table,
    Pareto,
    /// The marked runs' quantization loss and validation perplexity per iteration.
    Compare,
}

impl Screen {
    pub const ALL: [Screen; 3] = [Screen::Table, Screen::Pareto, Screen::Compare];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Table => "Runs",
            Screen::Pareto => "Pareto",
            Screen::Compare => "Marked",
        }
    }
}

/// What a user can ask of the explorer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    Up,
    Down,
    PageUp,
    PageDown,
    Open,
    Mark,
    NextSort,
    ReverseSort,
    StartFilter,
    /// A character typed into the filter.
    Type(char),
    Erase,
    /// Enter while filtering: keep the filter and leave the prompt.
    EndFilter,
    NextScreen,
    PrevScreen,
    ToggleGroups,
    Export,
    /// Esc: leave the prompt, clear the filter, else quit.
    Back,
    Quit,
}

/// What the loop must do after an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Open(usize),
    Export,
    Quit,
}

#[derive(Debug, Clone, Serialize)]
pub struct Explorer {
    /// What is shown: `sweep NAME` or the directory of runs.
    pub title: String,
    /// The varied fields (empty for a directory of runs).
    pub axes: Vec<String>,
    pub entries: Vec<Entry>,
    /// Shared pre-training runs: (finished, all).
    pub pretraining: (usize, usize),
    /// For a sweep: the process running it (its lock's holder), if one is.
    pub sweeper: Option<Option<String>>,
    /// For a sweep submitted to Slurm: its jobs and where their states come from.
    pub slurm: Option<String>,
    pub screen: Screen,
    /// Index into [`Explorer::columns`].
    pub sort: usize,
    pub descending: bool,
    pub filter: String,
    pub editing: bool,
    /// Index into the visible rows.
    pub selected: usize,
    /// Names of marked runs.
    pub marked: BTreeSet<String>,
    /// Groups over seeds instead of cells.
    pub grouped: bool,
    pub notice: Option<String>,
}

/// A sortable column: its header, and its value in a cell row.
pub struct ColumnDef {
    pub header: String,
    pub priority: u8,
    key: Key,
}

enum Key {
    Name,
    Axis(usize),
    Status,
    Scheduler,
    Number(fn(&CellRow) -> Option<f64>),
}

impl Explorer {
    pub fn new(title: String, axes: Vec<String>, entries: Vec<Entry>) -> Self {
        let mut e = Self {
            title,
            axes,
            entries,
            pretraining: (0, 0),
            sweeper: None,
            slurm: None,
            screen: Screen::Table,
            sort: 0,
            descending: false,
            filter: String::new(),
            editing: false,
            selected: 0,
            marked: BTreeSet::new(),
            grouped: false,
            notice: None,
        };
        // Seeds are grouped from the start: that is the comparison a sweep is for.
        e.grouped = e.has_seed_groups();
        e
    }

    /// Whether some cells differ only in seed.
    pub fn has_seed_groups(&self) -> bool {
        self.axes.iter().any(|a| a == "seed")
            && groups(&self.axes, &self.all_rows())
                .iter()
                .any(|g| g.cells.len() > 1)
    }

    pub fn columns(&self) -> Vec<ColumnDef> {
        let mut c = vec![ColumnDef {
            header: "run".into(),
            priority: if self.axes.is_empty() { 0 } else { 6 },
            key: Key::Name,
        }];
        for (i, a) in self.axes.iter().enumerate() {
            c.push(ColumnDef {
                header: crate::sweep::expand::short_path(a).to_string(),
                priority: 0,
                key: Key::Axis(i),
            });
        }
        let n = |h: &str, p: u8, f: fn(&CellRow) -> Option<f64>| ColumnDef {
            header: h.into(),
            priority: p,
            key: Key::Number(f),
        };
        c.push(ColumnDef {
            header: "status".into(),
            priority: 0,
            key: Key::Status,
        });
        if self.slurm.is_some() {
            c.push(ColumnDef {
                header: "slurm".into(),
                priority: 1,
                key: Key::Scheduler,
            });
        }
        let varied_bits = self
            .axes
            .iter()
            .any(|a| crate::sweep::expand::short_path(a) == "bits");
        c.extend([
            n("done", 2, |r| r.progress),
            n("fp test", 2, |r| r.fp_test_ppl),
            n("1-shot test", 4, |r| r.one_shot_test_ppl),
            n("final test", 0, |r| r.final_test_ppl),
            n("vs fp", 1, |r| r.final_vs_fp_pct),
            n("bits", 3, |r| r.bits.map(|b| b as f64)),
            n("sparsity", 3, |r| r.sparsity),
            n("packed", 1, |r| r.packed_bytes.map(|b| b as f64)),
            n("×", 5, |r| r.compression),
        ]);
        // Bits varied by an axis are already a column.
        c.retain(|d| !(varied_bits && matches!(d.key, Key::Number(_)) && d.header == "bits"));
        c
    }

    fn all_rows(&self) -> Vec<CellRow> {
        self.entries
            .iter()
            .map(|e| {
                let mut row = CellRow::of(
                    &self.axes,
                    &e.unit,
                    e.status,
                    e.summary.as_ref(),
                    Some(&e.view),
                );
                row.scheduler = e.scheduler.clone();
                row
            })
            .collect()
    }

    /// The visible rows: (index into `entries`, its row), filtered and sorted.
    pub fn rows(&self) -> Vec<(usize, CellRow)> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<(usize, CellRow)> = self
            .all_rows()
            .into_iter()
            .enumerate()
            .filter(|(_, r)| {
                needle.is_empty()
                    || std::iter::once(&r.cell)
                        .chain(&r.values)
                        .chain([&r.status])
                        .any(|s| s.to_lowercase().contains(&needle))
            })
            .collect();
        let columns = self.columns();
        if let Some(col) = columns.get(self.sort) {
            rows.sort_by(|a, b| {
                let o = compare(&col.key, &a.1, &b.1);
                if self.descending {
                    o.reverse()
                } else {
                    o
                }
            });
        }
        rows
    }

    /// The visible rows as groups over seeds, in the order of their first cell.
    pub fn group_rows(&self) -> Vec<GroupRow> {
        let rows: Vec<CellRow> = self.rows().into_iter().map(|(_, r)| r).collect();
        groups(&self.axes, &rows)
    }

    fn visible(&self) -> usize {
        if self.grouped {
            self.group_rows().len()
        } else {
            self.rows().len()
        }
    }

    /// The entry under the cursor (in groups, the group's first cell).
    pub fn current(&self) -> Option<usize> {
        let rows = self.rows();
        if self.grouped {
            let g = self.group_rows();
            let first = g.get(self.selected)?.cells.first()?.clone();
            rows.iter().find(|(_, r)| r.cell == first).map(|(i, _)| *i)
        } else {
            rows.get(self.selected).map(|(i, _)| *i)
        }
    }

    pub fn update(&mut self, ask: Ask) -> Option<Effect> {
        if self.editing {
            match ask {
                Ask::Type(c) => self.filter.push(c),
                Ask::Erase => {
                    self.filter.pop();
                }
                Ask::EndFilter => self.editing = false,
                Ask::Back => {
                    self.editing = false;
                    self.filter.clear();
                }
                _ => return None,
            }
            self.selected = 0;
            return None;
        }
        let n = self.visible();
        match ask {
            Ask::Up => self.selected = self.selected.saturating_sub(1),
            Ask::Down => self.selected = (self.selected + 1).min(n.saturating_sub(1)),
            Ask::PageUp => self.selected = self.selected.saturating_sub(10),
            Ask::PageDown => self.selected = (self.selected + 10).min(n.saturating_sub(1)),
            Ask::Open => return self.current().map(Effect::Open),
            Ask::Mark => {
                if let Some(i) = self.current() {
                    let name = self.entries[i].unit.name.clone();
                    if !self.marked.remove(&name) {
                        self.marked.insert(name);
                    }
                    self.selected = (self.selected + 1).min(n.saturating_sub(1));
                }
            }
            Ask::NextSort => self.sort = (self.sort + 1) % self.columns().len(),
            Ask::ReverseSort => self.descending = !self.descending,
            Ask::StartFilter => self.editing = true,
            Ask::NextScreen | Ask::PrevScreen => {
                let i = Screen::ALL
                    .iter()
                    .position(|s| *s == self.screen)
                    .unwrap_or(0);
                let k = Screen::ALL.len();
                let j = if ask == Ask::NextScreen {
                    i + 1
                } else {
                    i + k - 1
                };
                self.screen = Screen::ALL[j % k];
            }
            Ask::ToggleGroups => {
                self.grouped = !self.grouped;
                self.selected = 0;
            }
            Ask::Export => return Some(Effect::Export),
            Ask::Back if !self.filter.is_empty() => {
                self.filter.clear();
                self.selected = 0;
            }
            Ask::Back | Ask::Quit => return Some(Effect::Quit),
            Ask::Type(_) | Ask::Erase | Ask::EndFilter => {}
        }
        None
    }
}

fn compare(key: &Key, a: &CellRow, b: &CellRow) -> std::cmp::Ordering {
    match key {
        Key::Name => a.cell.cmp(&b.cell),
        // Values are RON text; numbers compare as numbers.
        Key::Axis(i) => match (a.values[*i].parse::<f64>(), b.values[*i].parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            _ => a.values[*i].cmp(&b.values[*i]),
        },
        Key::Status => a.status.cmp(&b.status),
        Key::Scheduler => a.scheduler.cmp(&b.scheduler),
        // Missing values go last either way up.
        Key::Number(f) => match (f(a), f(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, bits: &str, seed: &str, status: Status) -> Entry {
        Entry {
            unit: UnitEntry {
                name: name.into(),
                dir: PathBuf::from(name),
                experiment: PathBuf::new(),
                values: vec![("q.bits".into(), bits.into()), ("seed".into(), seed.into())],
                after: None,
                status,
                error: None,
            },
            dir: PathBuf::from(name),
            status,
            view: RunView::default(),
            summary: None,
            scheduler: None,
        }
    }

    fn explorer() -> Explorer {
        Explorer::new(
            "sweep t".into(),
            vec!["q.bits".into(), "seed".into()],
            vec![
                entry("a", "2", "1", Status::Finished),
                entry("b", "10", "1", Status::Running),
                entry("c", "2", "2", Status::Pending),
            ],
        )
    }

    #[test]
    fn seeds_are_grouped_sorting_filtering_and_marking_work_on_cells() {
        let mut e = explorer();
        assert!(e.grouped, "two cells differ only in seed");
        assert_eq!(e.group_rows().len(), 2);
        e.update(Ask::ToggleGroups);
        e.update(Ask::NextSort); // by bits, numerically
        let names = |e: &Explorer| {
            e.rows()
                .iter()
                .map(|r| r.1.cell.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&e), ["a", "c", "b"]);
        e.update(Ask::ReverseSort);
        assert_eq!(names(&e), ["b", "a", "c"]);
        e.update(Ask::StartFilter);
        for c in "run".chars() {
            e.update(Ask::Type(c));
        }
        assert_eq!(names(&e), ["b"], "filters on the status too");
        e.update(Ask::EndFilter);
        assert_eq!(e.update(Ask::Open), Some(Effect::Open(1)));
        e.update(Ask::Mark);
        assert!(e.marked.contains("b"));
        assert_eq!(e.update(Ask::Back), None, "Esc clears the filter first");
        assert_eq!(names(&e).len(), 3);
        assert_eq!(e.update(Ask::Back), Some(Effect::Quit));
    }
}
