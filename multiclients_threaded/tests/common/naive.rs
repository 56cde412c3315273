//! Deliberately broken chat servers, for showing that `check` catches them.
//! Both write to sockets while holding the lock of the shared registry: the
//! bug this lesson's design avoids. One also echoes every line to its sender
//! and relays control characters raw.
//! Otherwise they follow the protocol, so `check` passes their other checks.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use multiclients_threaded::protocol::{
    LineBuffer, MAX_LINE_BYTES, Request, chat_line, check_name, decode_line, default_name, notice,
    parse,
};

type Room = Arc<Mutex<Vec<(u64, String, TcpStream)>>>;

/// Holds the lock while writing to every client.
pub fn holds_the_lock_while_writing(listener: TcpListener) -> anyhow::Result<()> {
    serve_all(listener, false)
}

/// Also sends each line back to its sender, and relays text raw (control
/// characters included), as a first chat server usually does.
pub fn echoes_to_the_sender(listener: TcpListener) -> anyhow::Result<()> {
    serve_all(listener, true)
}

fn serve_all(listener: TcpListener, echo: bool) -> anyhow::Result<()> {
    let room = Room::default();
    for (n, stream) in listener.incoming().enumerate() {
        let stream = stream?;
        let room = Arc::clone(&room);
        thread::spawn(move || serve(stream, n as u64 + 1, &room, echo));
    }
    Ok(())
}

/// The bug on purpose: `write_all` with the lock held. A client that does
/// not read blocks it, and with it every other thread.
fn broadcast(room: &Room, skip: Option<u64>, line: &str) {
    let mut members = room.lock().unwrap();
    for (id, _, stream) in members.iter_mut() {
        if Some(*id) != skip {
            let _ = stream.write_all(line.as_bytes());
        }
    }
}

fn tell(room: &Room, id: u64, line: &str) {
    broadcast_to(room, |other| other == id, line);
}

fn broadcast_to(room: &Room, to: impl Fn(u64) -> bool, line: &str) {
    let mut members = room.lock().unwrap();
    for (id, _, stream) in members.iter_mut() {
        if to(*id) {
            let _ = stream.write_all(line.as_bytes());
        }
    }
}

fn name_of(room: &Room, id: u64) -> String {
    let members = room.lock().unwrap();
    members
        .iter()
        .find(|m| m.0 == id)
        .map(|m| m.1.clone())
        .unwrap_or_default()
}

fn serve(stream: TcpStream, id: u64, room: &Room, echo: bool) {
    let name = default_name(id);
    broadcast(room, None, &notice(format_args!("{name} joined")));
    room.lock()
        .unwrap()
        .push((id, name, stream.try_clone().unwrap()));
    let _ = read_lines(&stream, id, room, echo);
    let gone = name_of(room, id);
    room.lock().unwrap().retain(|m| m.0 != id);
    broadcast(room, None, &notice(format_args!("{gone} left")));
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = io::copy(&mut (&stream).take(1 << 20), &mut io::sink());
}

fn read_lines(mut stream: &TcpStream, id: u64, room: &Room, echo: bool) -> io::Result<()> {
    let mut lines = LineBuffer::new(MAX_LINE_BYTES);
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        lines.extend(&buf[..n]);
        while let Some(line) = lines.next_line() {
            let Ok(raw) = line else {
                tell(room, id, &notice("line too long"));
                return Ok(());
            };
            if !act(&decode_line(&raw), id, room, echo) {
                return Ok(());
            }
        }
    }
}

/// Acts on one line; false for `/quit`.
fn act(line: &str, id: u64, room: &Room, echo: bool) -> bool {
    match parse(line) {
        Request::Say(text) => {
            let skip = if echo { None } else { Some(id) };
            let line = match echo {
                // Text as it came, control characters and all.
                true => format!("{}: {text}\n", name_of(room, id)),
                false => chat_line(&name_of(room, id), text),
            };
            broadcast(room, skip, &line);
        }
        Request::Nick(new) => rename(room, id, new),
        Request::Who => {
            let names: Vec<String> = room.lock().unwrap().iter().map(|m| m.1.clone()).collect();
            tell(
                room,
                id,
                &notice(format_args!("here: {}", names.join(", "))),
            );
        }
        Request::Quit => return false,
        Request::Unknown(_) => tell(room, id, &notice("unknown command")),
    }
    true
}

fn rename(room: &Room, id: u64, new: &str) {
    let taken = room.lock().unwrap().iter().any(|m| m.1 == new);
    if check_name(new).is_err() || taken {
        return tell(room, id, &notice("cannot rename"));
    }
    let old = name_of(room, id);
    for member in room.lock().unwrap().iter_mut().filter(|m| m.0 == id) {
        member.1 = new.to_string();
    }
    broadcast(room, None, &notice(format_args!("{old} is now {new}")));
}
