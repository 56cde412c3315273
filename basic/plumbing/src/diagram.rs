//! A session as a picture: the socket calls that `--trace` prints, drawn as a
//! sequence diagram (a standalone SVG file any browser opens).
//!
//! ```text
//! cargo run -p basic -- server --diagram server.svg          one side, drawn at exit
//! cargo run -p basic -- server --trace-to server.events      or record the events...
//! cargo run -p basic -- client --trace-to client.events
//! cargo run -p basic -- diagram server.events client.events -o session.svg   ...and draw both
//! ```
//!
//! Each process is a lifeline: the server, and each client named by its
//! address (a client learns its own address from `connect`, so both sides of
//! one connection meet on the same pair of lifelines). A call is a box on its
//! lifeline, in the order the calls happened. What goes over the wire is an
//! arrow: bytes written, the handshake of `connect`, a `FIN` from
//! `shutdown(Write)` or `close`, an `RST` from a close with `SO_LINGER` 0.
//! When only one side was recorded, what it *received* is drawn as a dashed
//! arrow from the unrecorded peer, so a one-sided diagram still shows both
//! directions.
//!
//! The events come from the free-text trace lines, so any lesson's trace can
//! be drawn: a call the diagram does not know is a box without an arrow.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// One traced call: when (microseconds since the Unix epoch, so that two
/// processes on one machine sort together), which side, and the trace text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at_us: u128,
    pub side: String,
    pub text: String,
}

impl Event {
    /// An event that happens now.
    pub fn now(side: &str, text: String) -> Self {
        let at_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_micros());
        Self {
            at_us,
            side: side.to_string(),
            text,
        }
    }

    /// The line an events file holds: `MICROS SIDE TEXT`.
    pub fn to_line(&self) -> String {
        format!("{} {} {}", self.at_us, self.side, self.text)
    }

    /// Reads a line written by [`Event::to_line`]; `None` for anything else.
    pub fn from_line(line: &str) -> Option<Self> {
        let mut parts = line.splitn(3, ' ');
        let at_us = parts.next()?.parse().ok()?;
        let side = parts.next()?.to_string();
        let text = parts.next()?.to_string();
        Some(Self { at_us, side, text })
    }
}

/// What a traced call puts on the wire, as the diagram draws it.
#[derive(Debug, PartialEq, Eq)]
enum Wire {
    /// Nothing crosses the wire (socket, bind, listen, setsockopt...).
    Nothing,
    /// This side sends `label` to `peer` (`None`: this side's only peer).
    Sends { peer: Option<String>, label: String },
    /// This side received `label` from `peer`.
    Receives { peer: Option<String>, label: String },
}

/// The name of the call (`read` in `read(127.0.0.1:5000) -> 6 bytes`).
fn call_name(text: &str) -> &str {
    text.split(['(', ' ']).next().unwrap_or(text)
}

/// The first `IP:PORT` in a trace line, if any (the peer a server-side call
/// is about; for `connect`, the client's own address after `local`).
fn address_in(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || "(),".contains(c))
        .find(|word| word.parse::<std::net::SocketAddr>().is_ok())
        .map(str::to_string)
}

/// The byte count of a call: the number after `->` (`read(up to 16384
/// bytes) -> 133`), else the one before `bytes` (`write(6 bytes)`).
fn bytes_in(text: &str) -> Option<u64> {
    if let Some((_, result)) = text.split_once("->") {
        let digits: String = result
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if !digits.is_empty() {
            return digits.parse().ok();
        }
    }
    let words: Vec<&str> = text.split([' ', '(', ',']).collect();
    words
        .windows(2)
        .find(|pair| pair[1].starts_with("bytes"))
        .and_then(|pair| pair[0].parse().ok())
}

fn wire_of(text: &str) -> Wire {
    let peer = address_in(text);
    match call_name(text) {
        "connect" if text.contains("failed") => Wire::Nothing,
        "connect" => Wire::Sends {
            peer: None,
            label: "SYN, SYN-ACK, ACK (handshake)".into(),
        },
        "accept" => Wire::Receives {
            peer: peer.clone(),
            label: "handshake".into(),
        },
        "write" | "send" | "write_all" => Wire::Sends {
            peer: peer.clone(),
            label: bytes_label(text),
        },
        "read" | "recv" => match bytes_in(text) {
            Some(0) => Wire::Receives {
                peer: peer.clone(),
                label: "FIN (read returns 0)".into(),
            },
            Some(_) => Wire::Receives {
                peer: peer.clone(),
                label: bytes_label(text),
            },
            None => Wire::Nothing,
        },
        "shutdown" if text.contains("Write") || text.contains("Both") => Wire::Sends {
            peer: peer.clone(),
            label: "FIN".into(),
        },
        "close" if text.contains("reset") || text.contains("LINGER") => Wire::Sends {
            peer: peer.clone(),
            label: "RST".into(),
        },
        "close" if text.contains("listener") => Wire::Nothing,
        "close" => Wire::Sends {
            peer: peer.clone(),
            label: "FIN".into(),
        },
        _ => Wire::Nothing,
    }
}

fn bytes_label(text: &str) -> String {
    match bytes_in(text) {
        Some(1) => "1 byte".into(),
        Some(n) => format!("{n} bytes"),
        None => "data".into(),
    }
}

/// One row of the diagram: a box on a lifeline, maybe an arrow.
struct Row {
    lifeline: usize,
    text: String,
    arrow: Option<Arrow>,
}

struct Arrow {
    from: usize,
    to: usize,
    label: String,
    dashed: bool,
}

/// The lifelines and rows of a set of events.
struct Layout {
    lifelines: Vec<String>,
    rows: Vec<Row>,
    /// The client the server's last call named: a server call that names
    /// none (`write(140 bytes)`) is taken to be about it.
    last_peer: Option<String>,
    /// The (from, to) lifelines a FIN already went along: TCP sends one FIN
    /// per direction, so a `close` after `shutdown(Write)` sends no other.
    fins: Vec<(usize, usize)>,
}

const SERVER: &str = "server";

impl Layout {
    fn of(events: &[Event]) -> Self {
        let mut events = events.to_vec();
        events.sort_by_key(|event| event.at_us);
        let mut layout = Layout {
            lifelines: vec![SERVER.to_string()],
            rows: Vec::new(),
            last_peer: None,
            fins: Vec::new(),
        };
        let recorded = Recorded {
            server: events.iter().any(|event| event.side == SERVER),
            clients: client_addresses(&events),
        };
        for event in &events {
            layout.add(event, &recorded);
        }
        layout
    }

    fn lifeline(&mut self, name: &str) -> usize {
        match self.lifelines.iter().position(|line| line == name) {
            Some(index) => index,
            None => {
                self.lifelines.push(name.to_string());
                self.lifelines.len() - 1
            }
        }
    }

    fn add(&mut self, event: &Event, recorded: &Recorded) {
        let own = if event.side == SERVER {
            SERVER.to_string()
        } else {
            client_name(&event.side, &recorded.clients)
        };
        let own = self.lifeline(&own);
        let arrow = match wire_of(&event.text) {
            Wire::Nothing => None,
            Wire::Sends { peer, label } => match self.peer_of(event, peer, recorded) {
                Some((peer, _)) if label == "FIN" && self.fins.contains(&(own, peer)) => None,
                Some((peer, _)) => {
                    if label == "FIN" {
                        self.fins.push((own, peer));
                    }
                    Some(Arrow {
                        from: own,
                        to: peer,
                        label,
                        dashed: false,
                    })
                }
                None => None,
            },
            // What arrived from a recorded peer is drawn at its send; from
            // an unrecorded one, here, dashed.
            Wire::Receives { peer, label } => match self.peer_of(event, peer, recorded) {
                Some((peer, false)) => Some(Arrow {
                    from: peer,
                    to: own,
                    label,
                    dashed: true,
                }),
                _ => None,
            },
        };
        self.rows.push(Row {
            lifeline: own,
            text: event.text.clone(),
            arrow,
        });
    }

    /// The lifeline at the other end of a call, and whether that side was
    /// recorded. A client's only peer is the server; a server names its peer.
    fn peer_of(
        &mut self,
        event: &Event,
        peer: Option<String>,
        recorded: &Recorded,
    ) -> Option<(usize, bool)> {
        let (name, was_recorded) = if event.side == SERVER {
            let peer = peer.or_else(|| self.last_peer.clone())?;
            self.last_peer = Some(peer.clone());
            let name = format!("client {peer}");
            let was_recorded = recorded.clients.iter().any(|(_, client)| *client == name);
            (name, was_recorded)
        } else {
            (SERVER.to_string(), recorded.server)
        };
        Some((self.lifeline(&name), was_recorded))
    }
}

/// Which sides the events come from.
struct Recorded {
    server: bool,
    /// Each client side and its lifeline's name.
    clients: Vec<(String, String)>,
}

/// Each recorded client side with the lifeline it gets: `client ADDR` once
/// its `connect` trace said its local address, else its side name.
fn client_addresses(events: &[Event]) -> Vec<(String, String)> {
    let mut clients: Vec<(String, String)> = Vec::new();
    for event in events.iter().filter(|event| event.side != SERVER) {
        let known = clients.iter().any(|(side, _)| *side == event.side);
        if call_name(&event.text) == "connect" && !event.text.contains("failed") {
            let local = event
                .text
                .split("local ")
                .nth(1)
                .and_then(address_in)
                .map_or_else(|| event.side.clone(), |addr| format!("client {addr}"));
            clients.retain(|(side, _)| *side != event.side);
            clients.push((event.side.clone(), local));
        } else if !known {
            clients.push((event.side.clone(), event.side.clone()));
        }
    }
    clients
}

fn client_name(side: &str, recorded_clients: &[(String, String)]) -> String {
    recorded_clients
        .iter()
        .find(|(recorded, _)| recorded == side)
        .map_or_else(|| side.to_string(), |(_, name)| name.clone())
}

/// Reads the event files (one per process, from `--trace-to`) and draws
/// them as one diagram into `output`.
pub fn draw_files(inputs: &[PathBuf], output: &Path) -> anyhow::Result<()> {
    let mut events = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let text = std::fs::read_to_string(input)
            .with_context(|| format!("cannot read {}", input.display()))?;
        for mut event in text.lines().filter_map(Event::from_line) {
            if event.side != SERVER {
                // Two clients are two processes: keep their events apart.
                event.side = format!("{}#{index}", event.side);
            }
            events.push(event);
        }
    }
    let title = format!("{} processes", inputs.len());
    std::fs::write(output, svg(&events, &title))
        .with_context(|| format!("cannot write {}", output.display()))
}

const COLUMN: usize = 300;
const ROW: usize = 30;
const TOP: usize = 60;

/// Draws `events` as a standalone SVG sequence diagram.
pub fn svg(events: &[Event], title: &str) -> String {
    let layout = Layout::of(events);
    let width = COLUMN * layout.lifelines.len().max(2);
    let height = TOP + ROW * (layout.rows.len() + 1);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="12">
<title>{}</title>
<defs><marker id="head" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto"><path d="M0,0 L10,4 L0,8 z"/></marker></defs>
<rect width="100%" height="100%" fill="white"/>
"#,
        escape(title)
    );
    for (index, name) in layout.lifelines.iter().enumerate() {
        let x = center(index);
        let _ = writeln!(
            svg,
            r#"<text x="{x}" y="20" text-anchor="middle" font-weight="bold">{}</text><line x1="{x}" y1="30" x2="{x}" y2="{height}" stroke="gray" stroke-dasharray="4 4"/>"#,
            escape(name)
        );
    }
    for (index, row) in layout.rows.iter().enumerate() {
        draw_row(&mut svg, row, TOP + ROW * index);
    }
    svg.push_str("</svg>\n");
    svg
}

fn center(lifeline: usize) -> usize {
    COLUMN / 2 + COLUMN * lifeline
}

fn draw_row(svg: &mut String, row: &Row, y: usize) {
    let x = center(row.lifeline);
    if let Some(arrow) = &row.arrow {
        let (from, to) = (center(arrow.from), center(arrow.to));
        let color = match arrow.label.as_str() {
            "RST" => "red",
            label if label.starts_with("FIN") => "darkorange",
            _ => "steelblue",
        };
        let dash = if arrow.dashed {
            r#" stroke-dasharray="6 3""#
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            r#"<line x1="{from}" y1="{y}" x2="{to}" y2="{y}" stroke="{color}" stroke-width="2" marker-end="url(#head)"{dash}/><text x="{}" y="{}" text-anchor="middle" fill="{color}">{}</text>"#,
            (from + to) / 2,
            y - 4,
            escape(&arrow.label)
        );
    }
    // The call, in a box on its lifeline.
    let text = shorten(&row.text, 40);
    let width = CHAR_WIDTH * text.chars().count() + 10;
    let _ = writeln!(
        svg,
        r#"<rect x="{}" y="{}" width="{width}" height="18" rx="3" fill="whitesmoke" stroke="gray"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
        x - width / 2,
        y + 3,
        y + 16,
        escape(&text)
    );
}

/// About how wide one character of the 12-pixel monospace font is.
const CHAR_WIDTH: usize = 7;

fn shorten(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_string();
    }
    let cut: String = text.chars().take(chars - 3).collect();
    format!("{cut}...")
}

/// Text as XML allows it: the five special characters escaped, and control
/// characters (which XML forbids) shown as `?`.
fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c if c.is_control() => "?".to_string(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at_us: u128, side: &str, text: &str) -> Event {
        Event {
            at_us,
            side: side.into(),
            text: text.into(),
        }
    }

    #[test]
    fn an_event_line_round_trips() {
        let sent = event(17, "client", "write(6 bytes)");
        assert_eq!(Event::from_line(&sent.to_line()), Some(sent));
        assert_eq!(Event::from_line("not an event"), None);
    }

    #[test]
    fn calls_map_to_what_crosses_the_wire() {
        let peer = Some("127.0.0.1:5".to_string());
        assert_eq!(
            wire_of("write(127.0.0.1:5, 6 bytes)"),
            Wire::Sends {
                peer: peer.clone(),
                label: "6 bytes".into()
            }
        );
        assert_eq!(
            wire_of("read(127.0.0.1:5) -> 0 bytes"),
            Wire::Receives {
                peer,
                label: "FIN (read returns 0)".into()
            }
        );
        assert_eq!(
            wire_of("close() with SO_LINGER 0: reset"),
            Wire::Sends {
                peer: None,
                label: "RST".into()
            }
        );
        assert_eq!(wire_of("bind(127.0.0.1:5000)"), Wire::Nothing);
        assert_eq!(wire_of("close(listener)"), Wire::Nothing);
    }

    #[test]
    fn both_sides_meet_on_one_pair_of_lifelines() {
        let events = [
            event(1, "server", "accept() -> 127.0.0.1:40000"),
            event(
                0,
                "client",
                "connect(127.0.0.1:5000) -> local 127.0.0.1:40000",
            ),
            event(2, "client", "write(6 bytes)"),
            event(3, "server", "read(127.0.0.1:40000) -> 6 bytes"),
        ];
        let layout = Layout::of(&events);
        assert_eq!(layout.lifelines, ["server", "client 127.0.0.1:40000"]);
        // Sends are arrows; the receives of a recorded sender are not drawn twice.
        let arrows: Vec<_> = layout
            .rows
            .iter()
            .map(|row| row.arrow.as_ref().map(|arrow| arrow.label.as_str()))
            .collect();
        assert_eq!(
            arrows,
            [
                Some("SYN, SYN-ACK, ACK (handshake)"),
                None,
                Some("6 bytes"),
                None
            ]
        );
    }

    #[test]
    fn one_side_shows_what_it_received_as_dashed_arrows() {
        let events = [event(0, "server", "read(127.0.0.1:40000) -> 6 bytes")];
        let layout = Layout::of(&events);
        let arrow = layout.rows[0].arrow.as_ref().expect("an arrow");
        assert!(arrow.dashed);
        assert_eq!(layout.lifelines[arrow.from], "client 127.0.0.1:40000");
        assert_eq!(layout.lifelines[arrow.to], "server");
    }

    #[test]
    fn the_byte_count_is_the_result_when_there_is_one() {
        assert_eq!(bytes_in("read(up to 16384 bytes) -> 133"), Some(133));
        assert_eq!(bytes_in("read(127.0.0.1:5) -> 6 bytes"), Some(6));
        assert_eq!(
            bytes_in("write(140 bytes: the replies of one batch)"),
            Some(140)
        );
        assert_eq!(bytes_in("shutdown(Write)"), None);
    }

    #[test]
    fn a_server_call_that_names_no_peer_is_about_the_last_one_named() {
        let events = [
            event(0, "server", "accept() -> 127.0.0.1:40000"),
            event(1, "server", "write(12 bytes)"),
        ];
        let layout = Layout::of(&events);
        let arrow = layout.rows[1].arrow.as_ref().expect("an arrow");
        assert_eq!(layout.lifelines[arrow.to], "client 127.0.0.1:40000");
    }

    #[test]
    fn a_close_after_shutdown_write_sends_no_second_fin() {
        let events = [
            event(
                0,
                "client",
                "connect(127.0.0.1:5000) -> local 127.0.0.1:40000",
            ),
            event(1, "client", "shutdown(Write)"),
            event(2, "client", "close()"),
        ];
        let layout = Layout::of(&events);
        let fins = layout
            .rows
            .iter()
            .filter(|row| row.arrow.as_ref().is_some_and(|arrow| arrow.label == "FIN"))
            .count();
        assert_eq!(fins, 1);
    }

    #[test]
    fn text_is_escaped_for_xml() {
        assert_eq!(
            escape("<a & \"b\">\u{1b}"),
            "&lt;a &amp; &quot;b&quot;&gt;?"
        );
    }
}
