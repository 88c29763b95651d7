//! Keys → actions (the keymap) and the pure `update` that applies an action
//! to the state and says what the engine or the app must do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::state::{RunStatus, State, View};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    TogglePause,
    Stop,
    Export,
    Help,
    Quit,
    Confirm,
    Cancel,
    NextView,
    PrevView,
    NextMatrix,
    PrevMatrix,
    ToggleLogScale,
    ToggleBlocks,
}

/// What `update` asks of the outside world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Pause,
    Resume,
    Stop,
    Export,
    Exit,
}

/// The default keys (terminal habits).
pub fn action_for(key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    Some(match key.code {
        KeyCode::Char('p') | KeyCode::Char(' ') => Action::TogglePause,
        KeyCode::Char('s') => Action::Stop,
        KeyCode::Char('e') => Action::Export,
        KeyCode::Char('?') | KeyCode::F(1) => Action::Help,
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('y') | KeyCode::Enter => Action::Confirm,
        KeyCode::Char('n') | KeyCode::Esc => Action::Cancel,
        KeyCode::Tab | KeyCode::Right | KeyCode::Char('l') => Action::NextView,
        KeyCode::BackTab | KeyCode::Left | KeyCode::Char('h') => Action::PrevView,
        KeyCode::Down | KeyCode::Char('j') => Action::NextMatrix,
        KeyCode::Up | KeyCode::Char('k') => Action::PrevMatrix,
        KeyCode::Char('g') => Action::ToggleLogScale,
        KeyCode::Char('b') => Action::ToggleBlocks,
        _ => return None,
    })
}

/// Every binding, for the help overlay and the README.
pub const BINDINGS: &[(&str, &str)] = &[
    ("p, space", "pause / resume training (between steps)"),
    ("s", "stop the run (records stay consistent)"),
    ("e", "export a snapshot (JSON and CSV)"),
    ("Tab, →, l / Shift-Tab, ←, h", "next / previous view"),
    ("j, ↓ / k, ↑", "next / previous matrix"),
    ("g", "quantization loss on a log scale"),
    ("b", "plain block characters in charts"),
    ("?", "this help"),
    ("q, Ctrl-C", "quit (asks first while a run is going)"),
];

pub fn update(state: &mut State, action: Action) -> Option<Command> {
    if state.confirm_quit {
        state.confirm_quit = false;
        return (action == Action::Confirm).then_some(Command::Exit);
    }
    if state.help && action != Action::Quit {
        state.help = false;
        return None;
    }
    let matrices = state.run.matrices.len();
    match action {
        Action::TogglePause if !state.read_only => match state.run.status() {
            RunStatus::Running => return Some(Command::Pause),
            RunStatus::Paused => return Some(Command::Resume),
            _ => {}
        },
        Action::Stop if !state.read_only && state.is_running() => {
            state.notice = Some("stopping after the current step…".into());
            return Some(Command::Stop);
        }
        Action::Export => return Some(Command::Export),
        Action::Help => state.help = true,
        Action::Quit => {
            if state.is_running() && !state.read_only {
                state.confirm_quit = true;
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
        _ => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Event, Record};

    fn running() -> State {
        let mut s = State::new(false);
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
        let mut ro = State::new(true);
        assert_eq!(update(&mut ro, Action::TogglePause), None);
    }

    #[test]
    fn quit_asks_while_running_and_only_yes_exits() {
        let mut s = running();
        assert_eq!(update(&mut s, Action::Quit), None);
        assert!(s.confirm_quit);
        assert_eq!(update(&mut s, Action::Cancel), None);
        assert!(!s.confirm_quit);
        update(&mut s, Action::Quit);
        assert_eq!(update(&mut s, Action::Confirm), Some(Command::Exit));
        let mut done = State::new(false);
        done.run.status = Some(RunStatus::Finished);
        assert_eq!(update(&mut done, Action::Quit), Some(Command::Exit));
    }

    #[test]
    fn stop_export_views_matrices_toggles_and_help() {
        let mut s = running();
        assert_eq!(update(&mut s, Action::Stop), Some(Command::Stop));
        assert_eq!(update(&mut s, Action::Export), Some(Command::Export));
        update(&mut s, Action::NextView);
        assert_eq!(s.view, View::Weights);
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
    fn default_keys_map_to_actions() {
        let k = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        assert_eq!(action_for(k('p')), Some(Action::TogglePause));
        assert_eq!(action_for(k(' ')), Some(Action::TogglePause));
        assert_eq!(action_for(k('q')), Some(Action::Quit));
        assert_eq!(
            action_for(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            action_for(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)),
            Some(Action::NextView)
        );
        assert_eq!(action_for(k('x')), None);
    }
}
