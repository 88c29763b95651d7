//! Keys → actions. Defaults follow terminal habits; a RON file in the user
//! config directory (`keymap.ron`) can rebind any action:
//!
//! ```ron
//! {
//!     TogglePause: ["p", "space"],
//!     Quit: ["q", "ctrl-c", "f10"],
//!     NextMatrix: ["n"],
//! }
//! ```
//!
//! An action listed in the file gets exactly the keys listed; the others keep
//! their defaults. Key names: a single character, `space`, `tab`,
//! `backtab`, `enter`, `esc`, `left`, `right`, `up`, `down`, `pageup`,
//! `pagedown`, `f1`…`f12`, and
//! `ctrl-<char>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

use super::action::{Action, KeyHelp};

/// A key as written in a keymap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

impl Key {
    pub fn parse(name: &str) -> Option<Key> {
        let lower = name.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("ctrl-") {
            let mut chars = rest.chars();
            return match (chars.next(), chars.next()) {
                (Some(c), None) => Some(Key {
                    code: KeyCode::Char(c),
                    ctrl: true,
                }),
                _ => None,
            };
        }
        let code = match lower.as_str() {
            "space" => KeyCode::Char(' '),
            "tab" => KeyCode::Tab,
            "backtab" | "shift-tab" => KeyCode::BackTab,
            "enter" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            f if f.starts_with('f') && f.len() > 1 => {
                KeyCode::F(f[1..].parse().ok().filter(|n| (1..=12).contains(n))?)
            }
            _ => {
                let mut chars = name.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => KeyCode::Char(c),
                    _ => return None,
                }
            }
        };
        Some(Key { code, ctrl: false })
    }

    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        if self.ctrl {
            format!("Ctrl-{base}")
        } else {
            base
        }
    }
}

/// The bindings in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    bindings: Vec<(Key, Action)>,
}

fn k(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: false,
    }
}

fn code(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

impl Default for Keymap {
    fn default() -> Self {
        use Action::*;
        let bindings = vec![
            (k('p'), TogglePause),
            (k(' '), TogglePause),
            (k('s'), Stop),
            (k('e'), Export),
            (k('?'), Help),
            (code(KeyCode::F(1)), Help),
            (k('q'), Quit),
            (
                Key {
                    code: KeyCode::Char('c'),
                    ctrl: true,
                },
                Quit,
            ),
            (k('y'), Confirm),
            (code(KeyCode::Enter), Confirm),
            (k('n'), Cancel),
            (code(KeyCode::Esc), Cancel),
            (code(KeyCode::Tab), NextView),
            (code(KeyCode::Right), NextView),
            (k('l'), NextView),
            (code(KeyCode::BackTab), PrevView),
            (code(KeyCode::Left), PrevView),
            (k('h'), PrevView),
            (k('j'), NextMatrix),
            (code(KeyCode::Down), NextMatrix),
            (k('k'), PrevMatrix),
            (code(KeyCode::Up), PrevMatrix),
            (k('g'), ToggleLogScale),
            (k('b'), ToggleBlocks),
            (k('d'), ToggleDistribution),
            (code(KeyCode::PageUp), LogUp),
            (k('['), LogUp),
            (code(KeyCode::PageDown), LogDown),
            (k(']'), LogDown),
        ];
        Self { bindings }
    }
}

/// A keymap file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
#[error("{path}{}: {message}", position.map_or(String::new(), |(l, c)| format!(":{l}:{c}")))]
pub struct KeymapError {
    pub path: PathBuf,
    pub position: Option<(usize, usize)>,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(transparent)]
struct KeymapFile(BTreeMap<Action, Vec<String>>);

impl Keymap {
    pub fn action_for(&self, key: KeyEvent) -> Option<Action> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        // Shift is part of the character itself ('?', 'G'); ignore it otherwise.
        self.bindings
            .iter()
            .find(|(k, _)| k.code == key.code && k.ctrl == ctrl)
            .map(|(_, a)| *a)
    }

    /// Keys of each action, in the order of [`Action::ALL`], for help.
    pub fn describe(&self) -> Vec<KeyHelp> {
        Action::ALL
            .iter()
            .map(|&action| KeyHelp {
                action,
                keys: self
                    .bindings
                    .iter()
                    .filter(|(_, b)| *b == action)
                    .map(|(k, _)| k.label())
                    .collect(),
            })
            .collect()
    }

    /// Defaults overridden by `text` (the contents of `path`).
    pub fn parse(path: &Path, text: &str) -> Result<Self, KeymapError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let file: KeymapFile = ron::Options::default()
            .from_str(text)
            .map_err(|e| KeymapError {
                path: path.to_path_buf(),
                position: Some((e.position.line, e.position.col)),
                message: format!(
                    "{}; actions are {}",
                    e.code,
                    Action::ALL.map(|a| format!("{a:?}")).join(", ")
                ),
            })?;
        let mut map = Keymap::default();
        for (action, names) in file.0 {
            let mut keys = Vec::new();
            for name in &names {
                keys.push(Key::parse(name).ok_or_else(|| KeymapError {
                    path: path.to_path_buf(),
                    position: None,
                    message: format!("{action:?}: unknown key {name:?} (a character, space, tab, backtab, enter, esc, arrows, f1-f12, ctrl-<char>)"),
                })?);
            }
            map.bindings
                .retain(|(k, a)| *a != action && !keys.contains(k));
            map.bindings.extend(keys.into_iter().map(|k| (k, action)));
        }
        // The dashboard must always be possible to leave and to answer.
        for needed in [Action::Quit, Action::Confirm] {
            if !map.bindings.iter().any(|(_, a)| *a == needed) {
                return Err(KeymapError {
                    path: path.to_path_buf(),
                    position: None,
                    message: format!(
                        "no key is left for {needed:?}: the dashboard could not be {}; bind at least one",
                        if needed == Action::Quit { "left" } else { "answered" }
                    ),
                });
            }
        }
        Ok(map)
    }

    /// `keymap.ron` in the config directory (`IQ_TUI_CONFIG_DIR` overrides),
    /// or the defaults when there is none.
    pub fn load() -> Result<Self, KeymapError> {
        let dir = std::env::var_os("IQ_TUI_CONFIG_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                directories::ProjectDirs::from("", "", "iq-tui")
                    .map(|d| d.config_dir().to_path_buf())
            });
        let Some(path) = dir.map(|d| d.join("keymap.ron")) else {
            return Ok(Self::default());
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(KeymapError {
                path,
                position: None,
                message: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn defaults_follow_terminal_habits() {
        let m = Keymap::default();
        assert_eq!(m.action_for(press('p')), Some(Action::TogglePause));
        assert_eq!(m.action_for(press(' ')), Some(Action::TogglePause));
        assert_eq!(m.action_for(press('q')), Some(Action::Quit));
        assert_eq!(
            m.action_for(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            m.action_for(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::SHIFT)),
            Some(Action::Help)
        );
        assert_eq!(
            m.action_for(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)),
            Some(Action::NextView)
        );
        assert_eq!(m.action_for(press('x')), None);
        assert!(m.describe().iter().all(|k| !k.keys.is_empty()));
    }

    #[test]
    fn a_keymap_that_leaves_no_way_out_is_refused_and_a_byte_order_mark_is_not() {
        let err = Keymap::parse(Path::new("k.ron"), r#"{ Quit: [] }"#).unwrap_err();
        assert!(err.message.contains("Quit"), "{}", err.message);
        // stealing every Quit key leaves none either
        let err = Keymap::parse(Path::new("k.ron"), r#"{ Help: ["q", "ctrl-c"] }"#).unwrap_err();
        assert!(err.message.contains("Quit"), "{}", err.message);
        Keymap::parse(Path::new("k.ron"), "\u{feff}{ Help: [\"x\"] }").unwrap();
    }

    #[test]
    fn a_keymap_file_rebinds_actions_and_steals_keys() {
        let m = Keymap::parse(
            Path::new("k.ron"),
            r#"{ TogglePause: ["x"], NextMatrix: ["p", "f5"] }"#,
        )
        .unwrap();
        assert_eq!(m.action_for(press('x')), Some(Action::TogglePause));
        assert_eq!(
            m.action_for(press(' ')),
            None,
            "TogglePause has exactly the listed keys"
        );
        assert_eq!(m.action_for(press('p')), Some(Action::NextMatrix));
        assert_eq!(
            m.action_for(KeyEvent::new(KeyCode::F(5), KeyModifiers::NONE)),
            Some(Action::NextMatrix)
        );
        assert_eq!(
            m.action_for(press('q')),
            Some(Action::Quit),
            "others keep their defaults"
        );
    }

    #[test]
    fn bad_keymap_files_say_where_and_what() {
        let e = Keymap::parse(Path::new("k.ron"), r#"{ Jump: ["x"] }"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("k.ron:1:") && e.contains("Jump") && e.contains("TogglePause"),
            "{e}"
        );
        let e = Keymap::parse(Path::new("k.ron"), r#"{ Quit: ["hyper-x"] }"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key \"hyper-x\""), "{e}");
    }
}
