//! The explorer's keys: one table that both reads key presses and writes
//! the footer's hints, so the two cannot disagree.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::model::Ask;

/// Keys that ask one thing, and how the footer names them (`None`: named
/// by the binding before, as ↓ is by "↑↓ move").
pub struct Binding {
    pub keys: &'static [KeyCode],
    pub hint: Option<(&'static str, &'static str)>,
    pub ask: Ask,
}

const fn bind(
    keys: &'static [KeyCode],
    hint: Option<(&'static str, &'static str)>,
    ask: Ask,
) -> Binding {
    Binding { keys, hint, ask }
}

/// In the footer's order.
pub const KEYS: &[Binding] = &[
    bind(
        &[KeyCode::Up, KeyCode::Char('k')],
        Some(("↑↓", "move")),
        Ask::Up,
    ),
    bind(&[KeyCode::Down, KeyCode::Char('j')], None, Ask::Down),
    bind(&[KeyCode::Enter], Some(("Enter", "open")), Ask::Open),
    bind(
        &[KeyCode::Char(' '), KeyCode::Char('m')],
        Some(("space", "mark")),
        Ask::Mark,
    ),
    bind(
        &[KeyCode::Char('s')],
        Some(("s/S", "sort/reverse")),
        Ask::NextSort,
    ),
    bind(&[KeyCode::Char('S')], None, Ask::ReverseSort),
    bind(
        &[KeyCode::Char('/')],
        Some(("/", "filter")),
        Ask::StartFilter,
    ),
    bind(
        &[KeyCode::Char('g')],
        Some(("g", "groups")),
        Ask::ToggleGroups,
    ),
    bind(&[KeyCode::Tab], Some(("Tab", "screen")), Ask::NextScreen),
    bind(&[KeyCode::BackTab], None, Ask::PrevScreen),
    bind(&[KeyCode::Char('e')], Some(("e", "export")), Ask::Export),
    bind(&[KeyCode::PageUp], Some(("PgUp/PgDn", "page")), Ask::PageUp),
    bind(&[KeyCode::PageDown], None, Ask::PageDown),
    bind(&[KeyCode::Esc], Some(("Esc", "back")), Ask::Back),
    bind(&[KeyCode::Char('q')], Some(("q", "quit")), Ask::Quit),
];

/// What a key press asks; while the filter prompt is open, characters are text.
pub fn ask(key: KeyEvent, editing: bool) -> Option<Ask> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
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
    KEYS.iter()
        .find(|b| b.keys.contains(&key.code))
        .map(|b| b.ask.clone())
}
