//! The console's core, sans-IO: keys and model updates in, effects and a dirty
//! flag out. The terminal loop (`term.rs`) owns the clock and the terminal.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use nodus_wire::console::{self as wire, Request, RequestId};

use crate::keymap::{self, Action, KeyContext, NodeAction};
use crate::model::{ActionState, ActionStatus, Connection, Model, Update};

/// The screens, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Screen {
    /// Node summary.
    #[default]
    Overview,
    /// Disks, NICs, sensors.
    Hardware,
    /// Capacity units.
    Capacity,
    /// Power draw.
    Power,
    /// Stake on the chain.
    Stake,
    /// Events and logs.
    Events,
}

impl Screen {
    /// Every screen, in tab order.
    pub const ALL: [Screen; 6] = [
        Screen::Overview,
        Screen::Hardware,
        Screen::Capacity,
        Screen::Power,
        Screen::Stake,
        Screen::Events,
    ];

    /// Tab title.
    pub fn title(self) -> &'static str {
        match self {
            Screen::Overview => "Overview",
            Screen::Hardware => "Hardware",
            Screen::Capacity => "Capacity",
            Screen::Power => "Power",
            Screen::Stake => "Stake",
            Screen::Events => "Events",
        }
    }

    fn index(self) -> usize {
        Screen::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// What the loop must do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effect {
    /// Leave the console.
    Quit,
    /// Ring the terminal bell (a refused key).
    Bell,
    /// Send an action request to the node of tab `tab`.
    Send {
        /// The node tab.
        tab: usize,
        /// The request.
        request: Request,
    },
}

/// An action waiting for its typed confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// What will be asked.
    pub action: wire::Action,
    /// What the prompt says it does (`reboot node1…`).
    pub what: String,
    /// The token to type (the node's short id).
    pub token: String,
    /// What has been typed.
    pub typed: String,
}

/// An owner-signed disk approval loaded with `--approval FILE`
/// (`nodus id approve-disk`), attached when the disk it names is approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedApproval {
    /// The node it is for (`node1…`).
    pub node: String,
    /// The serial of the disk it names.
    pub serial: String,
    /// When it expires, Unix seconds.
    pub expires_at: Option<u64>,
    /// The signed statement, encoded as the request carries it.
    pub bytes: Vec<u8>,
}

/// Where typed keys go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// Keys are commands.
    Normal,
    /// Keys edit the filter.
    Filter,
    /// Keys type the confirmation of an action.
    Confirm,
}

/// Console state: the model plus what the operator is looking at.
#[derive(Debug, Clone)]
pub struct App {
    /// The live model.
    pub model: Model,
    /// The model as it was when the display was frozen (Ctrl-Z).
    pub frozen: Option<Model>,
    /// The screen shown.
    pub screen: Screen,
    /// Help overlay open.
    pub help: bool,
    /// Key input mode.
    pub input: InputMode,
    /// Filter text (case-insensitive substring).
    pub filter: String,
    /// Events: stick to the newest.
    pub follow: bool,
    /// Scroll offset of the current list, lines from the top.
    pub scroll: usize,
    /// On the node's own screen: `q` does not quit.
    pub on_node: bool,
    /// A short message for the status line.
    pub notice: Option<String>,
    /// Something changed since the last draw.
    pub dirty: bool,
    /// Node tabs: the names shown in the tab line.
    pub tab_names: Vec<String>,
    /// The tab shown; its model is [`App::model`].
    pub tab: usize,
    /// The other tabs' models (the shown tab's slot holds an empty placeholder).
    pub others: Vec<Model>,
    /// The action being confirmed.
    pub prompt: Option<Prompt>,
    /// Hardware: the selected disk (index into the inventory's disks).
    pub disk: usize,
    /// Ring the bell at the next chance (a node was asked to identify itself).
    pub bell: bool,
    /// Disk approvals to attach when approving the disk each one names.
    pub approvals: Vec<LoadedApproval>,
}

impl App {
    /// A console over `model`.
    pub fn new(model: Model, on_node: bool) -> Self {
        App {
            model,
            frozen: None,
            screen: Screen::Overview,
            help: false,
            input: InputMode::Normal,
            filter: String::new(),
            follow: true,
            scroll: 0,
            on_node,
            notice: None,
            dirty: true,
            tab_names: Vec::new(),
            tab: 0,
            others: vec![Model::default()],
            prompt: None,
            disk: 0,
            bell: false,
            approvals: Vec::new(),
        }
    }

    /// A console with one tab per node, named `names`, each starting from an
    /// empty model.
    pub fn with_tabs(names: Vec<String>, on_node: bool) -> Self {
        let mut app = App::new(Model::default(), on_node);
        app.others = names.iter().map(|_| Model::default()).collect();
        app.tab_names = names;
        app
    }

    /// How many node tabs.
    pub fn tab_count(&self) -> usize {
        self.others.len().max(1)
    }

    /// The model of tab `i` (the shown one is [`App::model`]).
    pub fn tab_model(&self, i: usize) -> Option<&Model> {
        if i == self.tab {
            Some(&self.model)
        } else {
            self.others.get(i)
        }
    }

    /// The loaded approval for the disk with `serial` on the shown tab's node.
    pub fn approval_for(&self, serial: &str) -> Option<&LoadedApproval> {
        let node = &self.model.facts.node_id;
        self.approvals
            .iter()
            .find(|a| a.serial == serial && a.node == *node)
    }

    /// What decides which keys are active now.
    pub fn key_context(&self) -> KeyContext {
        KeyContext {
            screen: self.screen,
            on_node: self.on_node,
            multi_node: self.tab_count() > 1,
        }
    }

    /// Whether this console may run node actions on the shown tab.
    pub fn may_act(&self) -> bool {
        self.model.session.as_ref().is_some_and(|s| s.may_act())
    }

    /// Applies a data-source update to tab `tab`.
    pub fn handle_tab_update(&mut self, tab: usize, update: Update) {
        if matches!(&update, Update::Event(e) if e.source == "identify") {
            self.bell = true;
        }
        if tab == self.tab {
            self.handle_update(update);
        } else if let Some(m) = self.others.get_mut(tab) {
            m.apply(update);
            // The tab line shows every tab's link state.
            self.dirty |= self.frozen.is_none();
        }
    }

    fn switch_tab(&mut self, to: usize) {
        let n = self.tab_count();
        if n < 2 || to == self.tab || to >= n {
            return;
        }
        std::mem::swap(&mut self.model, &mut self.others[self.tab]);
        std::mem::swap(&mut self.model, &mut self.others[to]);
        self.tab = to;
        self.frozen = None;
        self.prompt = None;
        self.scroll = 0;
        self.disk = 0;
    }

    /// The model to draw: the frozen copy while frozen.
    pub fn view(&self) -> &Model {
        self.frozen.as_ref().unwrap_or(&self.model)
    }

    /// Applies a data-source update. A frozen display stays as it is.
    pub fn handle_update(&mut self, update: Update) {
        self.model.apply(update);
        if self.frozen.is_none() {
            self.dirty = true;
        }
    }

    /// Handles one key.
    pub fn handle_key(&mut self, ev: KeyEvent) -> Vec<Effect> {
        if ev.kind == KeyEventKind::Release {
            return Vec::new();
        }
        self.dirty = true;
        if self.input == InputMode::Filter {
            self.filter_key(ev);
            return Vec::new();
        }
        if self.input == InputMode::Confirm {
            return self.confirm_key(ev);
        }
        if matches!(ev.code, KeyCode::Esc) && !self.help {
            if self.model.identify.is_some() {
                self.model.identify = None;
                return Vec::new();
            }
            if self.model.action.is_some() {
                self.model.action = None;
                return Vec::new();
            }
        }
        if self.help && matches!(ev.code, KeyCode::Esc) {
            self.help = false;
            return Vec::new();
        }
        let Some(action) = keymap::lookup(&ev, self.key_context()) else {
            if ev.code == KeyCode::Char('q') && self.on_node {
                self.notice = Some("this console runs on the node's screen and cannot quit".into());
                return vec![Effect::Bell];
            }
            if ev.code == KeyCode::Esc && !self.filter.is_empty() {
                self.filter.clear();
                self.scroll = 0;
            }
            return Vec::new();
        };
        self.notice = None;
        match action {
            Action::Goto(s) => self.goto(s),
            Action::NextScreen => {
                self.goto(Screen::ALL[(self.screen.index() + 1) % Screen::ALL.len()])
            }
            Action::PrevScreen => self.goto(
                Screen::ALL[(self.screen.index() + Screen::ALL.len() - 1) % Screen::ALL.len()],
            ),
            Action::Up => {
                self.scroll = self.scroll.saturating_sub(1);
                if self.screen == Screen::Events {
                    self.follow = false;
                }
            }
            Action::Down => self.scroll = self.scroll.saturating_add(1),
            Action::Filter => self.input = InputMode::Filter,
            Action::ToggleFollow => self.follow = !self.follow,
            Action::Freeze => {
                self.frozen = match self.frozen.take() {
                    Some(_) => None,
                    None => Some(self.model.clone()),
                }
            }
            Action::Help => self.help = !self.help,
            Action::Quit => return vec![Effect::Quit],
            Action::NextTab => self.switch_tab((self.tab + 1) % self.tab_count()),
            Action::PrevTab => {
                self.switch_tab((self.tab + self.tab_count() - 1) % self.tab_count())
            }
            Action::NextDisk => {
                let n = self.model.inventory.disks.len();
                self.disk = if n == 0 { 0 } else { (self.disk + 1) % n };
            }
            Action::Node(a) => return self.start_action(a),
        }
        Vec::new()
    }

    /// Opens the confirmation prompt for `a`, or says why it cannot run.
    fn start_action(&mut self, a: NodeAction) -> Vec<Effect> {
        let refuse = |app: &mut App, why: String| {
            app.notice = Some(why);
            vec![Effect::Bell]
        };
        let Some(session) = self.model.session.clone() else {
            return refuse(self, format!("{}: not connected to an agent", a.name()));
        };
        if !session.may_act() {
            return refuse(
                self,
                format!(
                    "{}: unavailable, needs the operator role (this console is {})",
                    a.name(),
                    session.role
                ),
            );
        }
        if self.model.connection != Connection::Connected {
            return refuse(self, format!("{}: the link is down", a.name()));
        }
        let node = &self.model.facts.node_id;
        let (action, what) = match a {
            NodeAction::Identify => (wire::Action::Identify, format!("identify {node}")),
            NodeAction::Reboot => (wire::Action::Reboot, format!("reboot {node}")),
            NodeAction::PowerOff => (wire::Action::PowerOff, format!("power off {node}")),
            NodeAction::ApproveDisk => {
                let Some(d) = self.model.inventory.disks.get(self.disk) else {
                    return refuse(self, "approve-disk: no disk selected".to_owned());
                };
                let approval = d.serial.as_deref().and_then(|s| self.approval_for(s));
                (
                    wire::Action::ApproveDisk {
                        disk: d.name.clone(),
                        approval: approval.map(|a| nodus_wire::Blob(a.bytes.clone())),
                    },
                    format!(
                        "approve disk {} for pool use, WIPING it{}",
                        d.name,
                        if approval.is_some() {
                            " (with the owner's approval)"
                        } else {
                            ""
                        }
                    ),
                )
            }
        };
        self.prompt = Some(Prompt {
            action,
            what,
            token: session.confirm_token,
            typed: String::new(),
        });
        self.input = InputMode::Confirm;
        self.help = false;
        Vec::new()
    }

    fn confirm_key(&mut self, ev: KeyEvent) -> Vec<Effect> {
        let Some(prompt) = &mut self.prompt else {
            self.input = InputMode::Normal;
            return Vec::new();
        };
        match ev.code {
            // Terminals send Alt+x as ESC x, so a quick Esc then a letter arrives
            // as Alt+letter: that Esc meant cancel, and the letter is not typed.
            KeyCode::Esc => {
                self.prompt = None;
                self.input = InputMode::Normal;
                self.notice = Some("cancelled".to_owned());
            }
            KeyCode::Char(_) if ev.modifiers.contains(KeyModifiers::ALT) => {
                self.prompt = None;
                self.input = InputMode::Normal;
                self.notice = Some("cancelled".to_owned());
            }
            KeyCode::Backspace => {
                prompt.typed.pop();
            }
            KeyCode::Char(ch)
                if !ev.modifiers.contains(KeyModifiers::CONTROL)
                    && prompt.typed.chars().count() < wire::MAX_TEXT =>
            {
                prompt.typed.push(ch);
            }
            KeyCode::Enter => {
                if prompt.typed != prompt.token {
                    self.notice = Some(format!(
                        "confirmation does not match: type {} or Esc",
                        prompt.token
                    ));
                    prompt.typed.clear();
                    return vec![Effect::Bell];
                }
                let Some(prompt) = self.prompt.take() else {
                    return Vec::new();
                };
                self.input = InputMode::Normal;
                self.notice = None;
                let request = Request {
                    id: RequestId::random(),
                    action: prompt.action,
                    confirm: prompt.typed,
                };
                self.model.apply(Update::Action(ActionStatus {
                    id: request.id.to_string(),
                    what: prompt.what,
                    state: ActionState::Pending,
                }));
                return vec![Effect::Send {
                    tab: self.tab,
                    request,
                }];
            }
            _ => {}
        }
        Vec::new()
    }

    fn goto(&mut self, s: Screen) {
        if s != self.screen {
            self.screen = s;
            self.scroll = 0;
        }
        self.help = false;
    }

    fn filter_key(&mut self, ev: KeyEvent) {
        match ev.code {
            KeyCode::Enter => self.input = InputMode::Normal,
            // Alt+letter is a quick Esc then the letter (see `confirm_key`).
            KeyCode::Esc => {
                self.filter.clear();
                self.input = InputMode::Normal;
            }
            KeyCode::Char(_) if ev.modifiers.contains(KeyModifiers::ALT) => {
                self.filter.clear();
                self.input = InputMode::Normal;
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(ch) if !ev.modifiers.contains(KeyModifiers::CONTROL) => {
                self.filter.push(ch)
            }
            _ => {}
        }
        self.scroll = 0;
    }

    /// Whether `text` passes the filter.
    pub fn matches_filter(&self, text: &str) -> bool {
        self.filter.is_empty() || text.to_lowercase().contains(&self.filter.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn every_digit_and_f_key_reaches_its_screen() {
        for (i, s) in Screen::ALL.iter().enumerate() {
            let n = u8::try_from(i + 1).unwrap();
            let mut app = App::new(Model::default(), false);
            app.screen = Screen::Stake;
            app.handle_key(key(KeyCode::Char(char::from(b'0' + n))));
            assert_eq!(app.screen, *s);
            app.screen = Screen::Stake;
            app.handle_key(key(KeyCode::F(n)));
            assert_eq!(app.screen, *s);
        }
    }

    #[test]
    fn vim_and_arrow_keys_agree() {
        let mut a = App::new(Model::default(), false);
        let mut b = App::new(Model::default(), false);
        a.handle_key(key(KeyCode::Right));
        b.handle_key(key(KeyCode::Char('l')));
        assert_eq!((a.screen, b.screen), (Screen::Hardware, Screen::Hardware));
        a.handle_key(key(KeyCode::Down));
        b.handle_key(key(KeyCode::Char('j')));
        assert_eq!((a.scroll, b.scroll), (1, 1));
        a.handle_key(key(KeyCode::Left));
        b.handle_key(key(KeyCode::Char('h')));
        assert_eq!((a.screen, b.screen), (Screen::Overview, Screen::Overview));
    }

    #[test]
    fn q_quits_except_on_node() {
        let mut app = App::new(Model::default(), false);
        assert_eq!(app.handle_key(key(KeyCode::Char('q'))), vec![Effect::Quit]);
        let mut app = App::new(Model::default(), true);
        assert_eq!(app.handle_key(key(KeyCode::Char('q'))), vec![Effect::Bell]);
        assert!(app.notice.is_some());
    }

    #[test]
    fn filter_input_takes_every_character() {
        let mut app = App::new(Model::default(), false);
        app.handle_key(key(KeyCode::Char('6')));
        app.handle_key(key(KeyCode::Char('/')));
        for ch in "sdq1".chars() {
            app.handle_key(key(KeyCode::Char(ch)));
        }
        // `q` and `1` went into the filter: no quit, no screen change.
        assert_eq!(app.filter, "sdq1");
        assert_eq!(app.screen, Screen::Events);
        app.handle_key(key(KeyCode::Backspace));
        app.handle_key(key(KeyCode::Enter));
        assert_eq!(app.filter, "sdq");
        assert_eq!(app.input, InputMode::Normal);
        assert!(app.matches_filter("disk SDQ failing"));
        assert!(!app.matches_filter("nic eth0"));
        app.handle_key(key(KeyCode::Char('/')));
        app.handle_key(key(KeyCode::Esc));
        assert!(app.filter.is_empty());
    }

    #[test]
    fn ctrl_z_freezes_the_display() {
        let mut app = App::new(Model::default(), false);
        app.handle_key(KeyEvent::new(KeyCode::Char('z'), KeyModifiers::CONTROL));
        app.dirty = false;
        app.handle_update(Update::Clock(1_000));
        assert!(!app.dirty);
        assert_eq!(app.view().now_unix_s, 0);
        assert_eq!(app.model.now_unix_s, 1_000);
        app.handle_key(KeyEvent::new(KeyCode::Char('z'), KeyModifiers::CONTROL));
        assert_eq!(app.view().now_unix_s, 1_000);
    }

    /// A console connected to node `node1this` as an operator (actions allowed,
    /// confirmed with the node id).
    fn operator_on_node1this() -> App {
        let mut app = App::new(Model::default(), false);
        app.model.facts.node_id = "node1this".into();
        app.model.connection = Connection::Connected;
        app.model.session = Some(crate::model::Session {
            role: nodus_wire::Role::Operator,
            confirm_token: "node1this".into(),
            actions: true,
        });
        app
    }

    #[test]
    fn approve_disk_attaches_the_approval_for_that_serial_on_that_node() {
        use crate::model::Disk;
        let mut app = operator_on_node1this();
        let disk = |name: &str, serial: Option<&str>| Disk {
            name: name.into(),
            serial: serial.map(str::to_owned),
            ..Disk::default()
        };
        app.model.inventory.disks = vec![
            disk("sda", Some("SER-A")),
            disk("sdb", Some("SER-B")),
            disk("sdc", None),
        ];
        let approval = |node: &str, serial: &str, byte: u8| LoadedApproval {
            node: node.into(),
            serial: serial.into(),
            expires_at: None,
            bytes: vec![byte],
        };
        app.approvals = vec![
            // The same serial on another node must not be used here.
            approval("node1other", "SER-A", 1),
            approval("node1this", "SER-B", 2),
            approval("node1this", "SER-A", 3),
        ];
        let attached = |app: &mut App, index: usize| {
            app.disk = index;
            app.handle_key(key(KeyCode::F(2)));
            assert!(app.handle_key(key(KeyCode::Char('a'))).is_empty());
            let prompt = app.prompt.take().expect("a confirmation prompt");
            app.input = InputMode::Normal;
            let wire::Action::ApproveDisk { disk, approval } = prompt.action else {
                panic!("not approve-disk: {:?}", prompt.action);
            };
            (disk, approval.map(|b| b.0), prompt.what)
        };
        let (name, bytes, what) = attached(&mut app, 0);
        assert_eq!((name.as_str(), bytes), ("sda", Some(vec![3])));
        assert!(what.contains("with the owner's approval"), "{what}");
        assert_eq!(attached(&mut app, 1).1, Some(vec![2]));
        // No serial, or no approval for it: sent without one, as before.
        let (_, bytes, what) = attached(&mut app, 2);
        assert_eq!(bytes, None);
        assert!(!what.contains("approval"), "{what}");
        app.approvals.retain(|a| a.node != "node1this");
        assert_eq!(attached(&mut app, 0).1, None);
    }

    #[test]
    fn a_quick_esc_then_a_letter_cancels_the_prompt_and_types_nothing() {
        use crate::model::Disk;
        let mut app = operator_on_node1this();
        app.model.inventory.disks = vec![Disk {
            name: "sda".into(),
            ..Disk::default()
        }];
        app.handle_key(key(KeyCode::F(2)));
        app.handle_key(key(KeyCode::Char('a')));
        app.handle_key(key(KeyCode::Char('n')));
        assert_eq!(app.prompt.as_ref().map(|p| p.typed.as_str()), Some("n"));
        // The terminal's encoding of Esc then `o`.
        let effects = app.handle_key(KeyEvent::new(KeyCode::Char('o'), KeyModifiers::ALT));
        assert!(effects.is_empty(), "{effects:?}");
        assert!(app.prompt.is_none(), "still prompting");
        assert_eq!(app.input, InputMode::Normal);
        assert_eq!(app.notice.as_deref(), Some("cancelled"));

        // The same in the filter: it ends, and the letter is not filtered on.
        app.handle_key(key(KeyCode::Char('/')));
        app.handle_key(key(KeyCode::Char('x')));
        app.handle_key(KeyEvent::new(KeyCode::Char('y'), KeyModifiers::ALT));
        assert_eq!(app.input, InputMode::Normal);
        assert!(app.filter.is_empty(), "{:?}", app.filter);
    }

    #[test]
    fn follow_toggles_only_on_events() {
        let mut app = App::new(Model::default(), false);
        app.handle_key(key(KeyCode::Char('f')));
        assert!(app.follow);
        app.handle_key(key(KeyCode::F(6)));
        app.handle_key(key(KeyCode::Char('f')));
        assert!(!app.follow);
    }
}
