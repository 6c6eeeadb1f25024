//! One keymap table drives key dispatch, the footer and the `?` help, so the three
//! can never disagree.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::Screen;

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Show a screen.
    Goto(Screen),
    /// Next screen.
    NextScreen,
    /// Previous screen.
    PrevScreen,
    /// Scroll the current list up one line.
    Up,
    /// Scroll the current list down one line.
    Down,
    /// Start typing a filter.
    Filter,
    /// Events: follow the newest or pause.
    ToggleFollow,
    /// Freeze or thaw the display.
    Freeze,
    /// Open or close help.
    Help,
    /// Quit (not on the node's own screen).
    Quit,
    /// Next node tab.
    NextTab,
    /// Previous node tab.
    PrevTab,
    /// Hardware: select the next disk.
    NextDisk,
    /// Run an operator action on the node (asks for the confirmation token).
    Node(NodeAction),
}

/// The operator actions the console can ask a node for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeAction {
    /// Banner and beep on the node's screen.
    Identify,
    /// Reboot.
    Reboot,
    /// Power off.
    PowerOff,
    /// Approve the selected disk for pool use (wipes it).
    ApproveDisk,
}

impl NodeAction {
    /// The action's name, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            NodeAction::Identify => "identify",
            NodeAction::Reboot => "reboot",
            NodeAction::PowerOff => "poweroff",
            NodeAction::ApproveDisk => "approve-disk",
        }
    }
}

/// A key a binding answers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The key.
    pub code: KeyCode,
    /// Exactly these modifiers (Shift is ignored for characters).
    pub ctrl: bool,
}

const fn k(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

const fn c(ch: char) -> Key {
    Key {
        code: KeyCode::Char(ch),
        ctrl: false,
    }
}

/// Where a binding is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everywhere.
    Global,
    /// Only on this screen.
    On(Screen),
    /// Everywhere except on the node's own screen console.
    OffNode,
    /// Only with more than one node tab.
    MultiNode,
}

/// One row of the keymap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The keys, first one is the main one.
    pub keys: &'static [Key],
    /// How the footer and help name the keys.
    pub label: &'static str,
    /// Short description for the footer; empty where the tab bar already names it.
    pub short: &'static str,
    /// Description for help.
    pub help: &'static str,
    /// What it does.
    pub action: Action,
    /// Where it works.
    pub scope: Scope,
}

/// The keymap.
pub const KEYMAP: &[Binding] = &[
    Binding {
        keys: &[c('1'), k(KeyCode::F(1))],
        label: "1",
        short: "",
        help: "Overview (also F1)",
        action: Action::Goto(Screen::Overview),
        scope: Scope::Global,
    },
    Binding {
        keys: &[c('2'), k(KeyCode::F(2))],
        label: "2",
        short: "",
        help: "Hardware: disks, NICs, sensors (also F2)",
        action: Action::Goto(Screen::Hardware),
        scope: Scope::Global,
    },
    Binding {
        keys: &[c('3'), k(KeyCode::F(3))],
        label: "3",
        short: "",
        help: "Capacity: CRU, MRU, SRU, HRU (also F3)",
        action: Action::Goto(Screen::Capacity),
        scope: Scope::Global,
    },
    Binding {
        keys: &[c('4'), k(KeyCode::F(4))],
        label: "4",
        short: "",
        help: "Power: watts, last hour, energy today (also F4)",
        action: Action::Goto(Screen::Power),
        scope: Scope::Global,
    },
    Binding {
        keys: &[c('5'), k(KeyCode::F(5))],
        label: "5",
        short: "",
        help: "Stake: balance, bonded, rewards (also F5)",
        action: Action::Goto(Screen::Stake),
        scope: Scope::Global,
    },
    Binding {
        keys: &[c('6'), k(KeyCode::F(6))],
        label: "6",
        short: "",
        help: "Events and logs (also F6)",
        action: Action::Goto(Screen::Events),
        scope: Scope::Global,
    },
    Binding {
        keys: &[k(KeyCode::Left), c('h'), k(KeyCode::BackTab)],
        label: "←h",
        short: "prev",
        help: "Previous screen (←, h, Shift-Tab)",
        action: Action::PrevScreen,
        scope: Scope::Global,
    },
    Binding {
        keys: &[k(KeyCode::Right), c('l'), k(KeyCode::Tab)],
        label: "→l",
        short: "next",
        help: "Next screen (→, l, Tab)",
        action: Action::NextScreen,
        scope: Scope::Global,
    },
    Binding {
        keys: &[k(KeyCode::Up), c('k')],
        label: "↑k",
        short: "up",
        help: "Scroll up (↑, k)",
        action: Action::Up,
        scope: Scope::Global,
    },
    Binding {
        keys: &[k(KeyCode::Down), c('j')],
        label: "↓j",
        short: "down",
        help: "Scroll down (↓, j)",
        action: Action::Down,
        scope: Scope::Global,
    },
    Binding {
        keys: &[c('/')],
        label: "/",
        short: "filter",
        help: "Filter the lists on this screen",
        action: Action::Filter,
        scope: Scope::Global,
    },
    Binding {
        keys: &[c('f'), c(' ')],
        label: "f",
        short: "follow",
        help: "Follow new events, or pause (f, Space)",
        action: Action::ToggleFollow,
        scope: Scope::On(Screen::Events),
    },
    Binding {
        keys: &[Key {
            code: KeyCode::Char('z'),
            ctrl: true,
        }],
        label: "^Z",
        short: "freeze",
        help: "Freeze the display (Ctrl-Z again to thaw)",
        action: Action::Freeze,
        scope: Scope::Global,
    },
    Binding {
        keys: &[c('?')],
        label: "?",
        short: "help",
        help: "This help (Esc or ? closes it)",
        action: Action::Help,
        scope: Scope::Global,
    },
    Binding {
        keys: &[c(']')],
        label: "]",
        short: "node",
        help: "Next node tab",
        action: Action::NextTab,
        scope: Scope::MultiNode,
    },
    Binding {
        keys: &[c('[')],
        label: "[",
        short: "",
        help: "Previous node tab",
        action: Action::PrevTab,
        scope: Scope::MultiNode,
    },
    Binding {
        keys: &[c('i')],
        label: "i",
        short: "identify",
        help: "Identify: banner and beep on the node (confirm)",
        action: Action::Node(NodeAction::Identify),
        scope: Scope::Global,
    },
    Binding {
        keys: &[c('R')],
        label: "R",
        short: "reboot",
        help: "Reboot the node (confirm)",
        action: Action::Node(NodeAction::Reboot),
        scope: Scope::Global,
    },
    Binding {
        keys: &[c('P')],
        label: "P",
        short: "poweroff",
        help: "Power the node off (confirm)",
        action: Action::Node(NodeAction::PowerOff),
        scope: Scope::Global,
    },
    Binding {
        keys: &[c('d')],
        label: "d",
        short: "disk",
        help: "Select the next disk",
        action: Action::NextDisk,
        scope: Scope::On(Screen::Hardware),
    },
    Binding {
        keys: &[c('a')],
        label: "a",
        short: "approve",
        help: "Approve the selected disk for a pool, wiping it (confirm)",
        action: Action::Node(NodeAction::ApproveDisk),
        scope: Scope::On(Screen::Hardware),
    },
    Binding {
        keys: &[c('q')],
        label: "q",
        short: "quit",
        help: "Quit the console",
        action: Action::Quit,
        scope: Scope::OffNode,
    },
];

/// What decides which bindings are active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyContext {
    /// The screen shown.
    pub screen: Screen,
    /// The console runs on the node's own screen.
    pub on_node: bool,
    /// More than one node tab.
    pub multi_node: bool,
}

impl Binding {
    /// Whether the binding is active in `cx`.
    pub fn active(&self, cx: KeyContext) -> bool {
        match self.scope {
            Scope::Global => true,
            Scope::On(s) => s == cx.screen,
            Scope::OffNode => !cx.on_node,
            Scope::MultiNode => cx.multi_node,
        }
    }

    /// Whether the binding asks the node for an action (needs the operator role).
    pub fn is_node_action(&self) -> bool {
        matches!(self.action, Action::Node(_))
    }

    fn matches(&self, ev: &KeyEvent) -> bool {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        self.keys
            .iter()
            .any(|key| key.code == ev.code && key.ctrl == ctrl)
    }
}

/// The bindings active in `cx`, in table order: the footer and help both list
/// exactly these.
pub fn active(cx: KeyContext) -> impl Iterator<Item = &'static Binding> {
    KEYMAP.iter().filter(move |b| b.active(cx))
}

/// The action of a key in `cx`, if any.
pub fn lookup(ev: &KeyEvent, cx: KeyContext) -> Option<Action> {
    active(cx).find(|b| b.matches(ev)).map(|b| b.action)
}

/// Footer and help of filter input, where keys type text.
pub const FILTER_KEYS: &[(&str, &str)] = &[("Enter", "apply"), ("Esc", "clear"), ("⌫", "delete")];

/// Footer and help of the confirmation prompt.
pub const CONFIRM_KEYS: &[(&str, &str)] = &[("Enter", "send"), ("Esc", "cancel"), ("⌫", "delete")];
