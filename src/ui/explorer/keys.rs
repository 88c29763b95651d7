//! The explorer's keys: one table that both reads key presses and writes
//! the footer's hints, so the two cannot disagree.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::model::Ask;

/// (keys as shown, hint, what they ask).
pub const KEYS: [(&str, &str, Ask); 11] = [
    ("↑↓", "move", Ask::Down),
    ("Enter", "open", Ask::Open),
    ("space", "mark", Ask::Mark),
    ("s/S", "sort/reverse", Ask::NextSort),
    ("/", "filter", Ask::StartFilter),
    ("g", "groups", Ask::ToggleGroups),
    ("Tab", "screen", Ask::NextScreen),
    ("e", "export", Ask::Export),
    ("PgUp/PgDn", "page", Ask::PageDown),
    ("Esc", "back", Ask::Back),
    ("q", "quit", Ask::Quit),
];

/// What a key press asks; while the filter prompt is open, characters are text.
pub fn ask(key: KeyEvent, editing: bool) -> Option<Ask> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return Some(Ask::Quit);
    }
    if editing {
        return match key.code {
            KeyCode::Char(c) => Some(Ask::Type(c)),
            KeyCode::Backspace => Some(Ask::Erase),
            KeyCode::Enter => Some(Ask::EndFilter),
            KeyCode::Esc => Some(Ask::Back),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Up | KeyCode::Char('k') => Ask::Up,
        KeyCode::Down | KeyCode::Char('j') => Ask::Down,
        KeyCode::PageUp => Ask::PageUp,
        KeyCode::PageDown => Ask::PageDown,
        KeyCode::Enter => Ask::Open,
        KeyCode::Char(' ') | KeyCode::Char('m') => Ask::Mark,
        KeyCode::Char('s') => Ask::NextSort,
        KeyCode::Char('S') => Ask::ReverseSort,
        KeyCode::Char('/') => Ask::StartFilter,
        KeyCode::Char('g') => Ask::ToggleGroups,
        KeyCode::Tab => Ask::NextScreen,
        KeyCode::BackTab => Ask::PrevScreen,
        KeyCode::Char('e') => Ask::Export,
        KeyCode::Esc => Ask::Back,
        KeyCode::Char('q') => Ask::Quit,
        _ => return None,
    })
}
