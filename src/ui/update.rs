//! Actions and the pure `update` that applies one to the state and says what
//! the engine or the app must do. Keys reach actions through `keymap`.

pub use super::action::Action;
use super::state::{Confirm, State, View};
use crate::record::RunStatus;

/// What `update` asks of the outside world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Pause,
    Resume,
    Stop,
    Export,
    Exit,
}

pub fn update(state: &mut State, action: Action) -> Option<Command> {
    if let Some(question) = state.confirm.take() {
        if action != Action::Confirm {
            return None;
        }
        return match question {
            Confirm::Quit => Some(Command::Exit),
            Confirm::Stop if state.controllable() => Some(Command::Stop),
            Confirm::Stop => None,
        };
    }
    if state.help && action != Action::Quit {
        state.help = false;
        return None;
    }
    let matrices = state.run.matrix_names().len();
    match action {
        Action::TogglePause if state.controllable() => match state.run.status() {
            RunStatus::Running => return Some(Command::Pause),
            RunStatus::Paused => return Some(Command::Resume),
            _ => {}
        },
        Action::Stop if state.controllable() => state.confirm = Some(Confirm::Stop),
        Action::Export => return Some(Command::Export),
        Action::Help => state.help = true,
        Action::Quit => {
            // Only quitting a run of this process stops it.
            if state.controllable() && !state.watching {
                state.confirm = Some(Confirm::Quit);
            } else {
                return Some(Command::Exit);
            }
        }
        Action::NextView | Action::PrevView => {
            let i = View::ALL.iter().position(|v| *v == state.view).unwrap_or(0);
            let n = View::ALL.len();
            let j = if action == Action::NextView {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            };
            state.view = View::ALL[j];
        }
        Action::NextMatrix if matrices > 0 => state.selected = (state.selected + 1) % matrices,
        Action::PrevMatrix if matrices > 0 => {
            state.selected = (state.selected + matrices - 1) % matrices
        }
        Action::ToggleLogScale => state.log_scale = !state.log_scale,
        Action::ToggleBlocks => state.blocks = !state.blocks,
        Action::ToggleDistribution => state.distribution = !state.distribution,
        Action::LogUp => {
            state.log_scroll = (state.log_scroll + 5).min(state.run.log.len().saturating_sub(1))
        }
        Action::LogDown => state.log_scroll = state.log_scroll.saturating_sub(5),
        // Esc with no question open goes back to the explorer it came from.
        Action::Cancel if state.back => return Some(Command::Exit),
        _ => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Event, Record};

    fn running() -> State {
        let mut s = State::new(false, Vec::new());
        s.run.status = Some(RunStatus::Running);
        s
    }

    #[test]
    fn pause_and_resume_follow_the_run_status() {
        let mut s = running();
        assert_eq!(update(&mut s, Action::TogglePause), Some(Command::Pause));
        s.run.apply(&Record {
            t: 1.0,
            event: Event::Paused,
        });
        assert_eq!(update(&mut s, Action::TogglePause), Some(Command::Resume));
        let mut ro = State::new(true, Vec::new());
        assert_eq!(update(&mut ro, Action::TogglePause), None);
    }

    #[test]
    fn quit_asks_while_running_and_only_yes_exits() {
        let mut s = running();
        assert_eq!(update(&mut s, Action::Quit), None);
        assert_eq!(s.confirm, Some(Confirm::Quit));
        assert_eq!(update(&mut s, Action::Cancel), None);
        assert_eq!(s.confirm, None);
        update(&mut s, Action::Quit);
        assert_eq!(update(&mut s, Action::Confirm), Some(Command::Exit));
        let mut done = State::new(false, Vec::new());
        done.run.status = Some(RunStatus::Finished);
        assert_eq!(update(&mut done, Action::Quit), Some(Command::Exit));
    }

    #[test]
    fn stop_export_views_matrices_toggles_and_help() {
        let mut s = running();
        assert_eq!(update(&mut s, Action::Stop), None, "stop asks first");
        assert_eq!(s.confirm, Some(Confirm::Stop));
        assert_eq!(update(&mut s, Action::Confirm), Some(Command::Stop));
        assert_eq!(update(&mut s, Action::Stop), None);
        assert_eq!(update(&mut s, Action::Cancel), None, "no: nothing happens");
        assert_eq!(update(&mut s, Action::Export), Some(Command::Export));
        update(&mut s, Action::NextView);
        assert_eq!(s.view, View::Training);
        update(&mut s, Action::PrevView);
        update(&mut s, Action::PrevView);
        assert_eq!(s.view, View::Log);
        update(&mut s, Action::NextMatrix); // no matrices yet: nothing happens
        assert_eq!(s.selected, 0);
        let (log, blocks) = (s.log_scale, s.blocks);
        update(&mut s, Action::ToggleLogScale);
        update(&mut s, Action::ToggleBlocks);
        assert_eq!((s.log_scale, s.blocks), (!log, !blocks));
        update(&mut s, Action::Help);
        assert!(s.help);
        update(&mut s, Action::NextView); // any key closes help
        assert!(!s.help);
        assert_eq!(s.view, View::Log);
    }

    #[test]
    fn matrix_selection_wraps_both_ways() {
        let mut s = running();
        let report = |name: &str| crate::record::MatrixReport {
            name: name.into(),
            rows: 1,
            cols: 1,
            bits: Some(1),
            method: None,
            quant_loss: 0.0,
            squared_error: 0.0,
            squared_norm: 0.0,
            sparsity: 0.0,
            packed_bytes: 0,
            fp32_bytes: 4,
            histogram: crate::compress::stats::histogram(&[1.0], 2),
            levels: vec![],
            density: vec![],
            grid: (1, 1),
        };
        s.run.matrices = vec![report("a"), report("b"), report("c")];
        update(&mut s, Action::PrevMatrix);
        assert_eq!(s.selected, 2);
        update(&mut s, Action::NextMatrix);
        update(&mut s, Action::NextMatrix);
        assert_eq!(s.selected, 1);
    }

    #[test]
    fn a_followed_run_goes_on_when_its_watcher_quits() {
        let mut s = running();
        s.watching = true;
        assert_eq!(
            update(&mut s, Action::Quit),
            Some(Command::Exit),
            "no question: nothing stops"
        );
        assert_eq!(update(&mut s, Action::TogglePause), Some(Command::Pause));
        s.read_only = true; // its process is gone
        assert_eq!(update(&mut s, Action::TogglePause), None);
        assert_eq!(update(&mut s, Action::Stop), None);
        assert_eq!(s.confirm, None);
    }

    #[test]
    fn the_log_scrolls_back_and_forward_within_its_lines() {
        let mut s = running();
        s.run.log = (0..12).map(|i| i.to_string()).collect();
        update(&mut s, Action::LogUp);
        update(&mut s, Action::LogUp);
        update(&mut s, Action::LogUp);
        assert_eq!(s.log_scroll, 11);
        update(&mut s, Action::LogDown);
        assert_eq!(s.log_scroll, 6);
        update(&mut s, Action::LogDown);
        update(&mut s, Action::LogDown);
        assert_eq!(s.log_scroll, 0);
    }

    #[test]
    fn stop_and_pause_do_nothing_once_the_run_is_over() {
        let mut s = State::new(false, Vec::new());
        s.run.status = Some(RunStatus::Finished);
        assert_eq!(update(&mut s, Action::Stop), None);
        assert_eq!(update(&mut s, Action::TogglePause), None);
        assert_eq!(update(&mut s, Action::Confirm), None);
        assert_eq!(update(&mut s, Action::Cancel), None);
    }
}
